"""`keep_freed_memory`: glibc serves large blocks from its heap and keeps what is freed, unless
the user chose malloc's behaviour (MAGVIT_MALLOC=system, MALLOC_* variables, glibc tunables,
a preloaded allocator)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
import torch

from magvit.core import allocator
from magvit.errors import MagvitError

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# A child process: optionally keep freed memory, then allocate, fill and free a 32 MiB tensor 20
# times, and report the blocks mmap served it and the page faults of the last 10 cycles.
CHILD = r"""
import ctypes, json, resource, sys
import torch
from magvit.core.allocator import keep_freed_memory

done = keep_freed_memory() if sys.argv[1] == "keep" else "untouched"

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
faults, mmapped = 0, []
for cycle in range(20):
    before, blocks = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, mallinfo2().hblks
    block = torch.ones(8 * 2**20)  # 32 MiB, every page written
    mmapped.append(mallinfo2().hblks - blocks)
    del block
    if cycle >= 10:
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"done": done, "mmapped": max(mmapped), "faults": faults}))
"""


def run_child(mode: str) -> dict:
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}  # no MALLOC_* from the caller
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_kept_memory_is_reused_without_page_faults():
    untouched, kept = run_child("system"), run_child("keep")
    assert kept["done"] == "keep (glibc: no mmap blocks, no trimming)"
    assert untouched["mmapped"] >= 1  # glibc's default serves a 32 MiB block by mmap ...
    assert kept["mmapped"] == 0  # ... kept memory serves it from the heap
    # fresh pages fault in every cycle (8,192 a cycle at 4 KiB, fewer with huge pages); the kept
    # block is the same memory each time once the heap has settled (0 faults measured)
    assert kept["faults"] < 100, kept
    assert untouched["faults"] > 10 * max(kept["faults"], 10), (untouched, kept)


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("MALLOC_") or name in ("MAGVIT_MALLOC", "GLIBC_TUNABLES", "LD_PRELOAD"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(allocator.platform, "system", lambda: "Darwin")  # mallopt never runs here
    monkeypatch.setattr(allocator, "_applied", allocator._applied)  # this worker's record restored
    return monkeypatch


def test_the_users_choice_is_left_alone(clean_env):
    assert allocator.keep_freed_memory() == "system (not glibc)"
    clean_env.setenv("MAGVIT_MALLOC", " System ")
    assert allocator.keep_freed_memory() == "system (MAGVIT_MALLOC=system)"
    clean_env.setenv("MAGVIT_MALLOC", "keep")
    clean_env.setenv("MALLOC_ARENA_MAX", "2")
    assert allocator.keep_freed_memory() == "system (MALLOC_ARENA_MAX is set)"
    clean_env.delenv("MALLOC_ARENA_MAX")
    clean_env.setenv("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX2")  # not malloc's: no choice
    assert allocator.user_choice() is None
    clean_env.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0")
    assert allocator.keep_freed_memory() == "system (GLIBC_TUNABLES is set)"
    clean_env.delenv("GLIBC_TUNABLES")
    clean_env.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    assert allocator.keep_freed_memory() == "system (LD_PRELOAD (jemalloc) is set)"


def test_a_bad_choice_names_the_variable_and_the_choices(clean_env):
    clean_env.setenv("MAGVIT_MALLOC", "jemalloc")
    with pytest.raises(MagvitError, match=r"MAGVIT_MALLOC='jemalloc' is not one of keep, system"):
        allocator.keep_freed_memory()


def test_the_command_reports_a_bad_choice_without_a_traceback(clean_env, capsys):
    from magvit.cli.main import main

    clean_env.setenv("MAGVIT_MALLOC", "fast")
    assert main(["tasks", "list"]) == 2
    err = capsys.readouterr().err
    assert "magvit: error: MAGVIT_MALLOC='fast' is not one of keep, system" in err
    assert "Traceback" not in err


def test_what_was_done_is_remembered_for_run_records(clean_env, monkeypatch):
    monkeypatch.setattr(allocator, "_applied", allocator.NOT_CALLED)
    assert allocator.malloc_setting() == "system (keep_freed_memory not called)"
    monkeypatch.setenv("MAGVIT_MALLOC", "system")  # leaves this worker's malloc as it is
    assert allocator.keep_freed_memory() == allocator.malloc_setting() == "system (MAGVIT_MALLOC=system)"


def test_a_training_run_records_the_commands_threads_and_malloc(tmp_path):
    from magvit.cli.main import main
    from magvit.core.training.checkpoint import checkpoint_manifest

    threads = torch.get_num_threads()
    run = tmp_path / "tok"
    try:
        assert main(["--threads", "1", "train", "tokenizer", "tiny-tokenizer", "--output-dir", str(run),
                     "--set", "train.steps=1", "--set", "train.warmup_steps=0", "--set", "data.train_clips=4",
                     "--set", "data.eval_clips=2", "--set", "train.batch_size=2"]) == 0
    finally:
        torch.set_num_threads(threads)  # the command set this worker's threads
    runtime = checkpoint_manifest(run)["meta"]["runtime"]
    assert runtime["threads"] == 1
    assert runtime["malloc"] == allocator.malloc_setting()
    kept = GLIBC and allocator.allocator_choice() == "keep" and allocator.user_choice() is None
    assert runtime["malloc"].startswith("keep (" if kept else "system (")
    assert runtime["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
