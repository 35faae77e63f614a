"""The thread policy of every command: --threads, else OMP_NUM_THREADS, else the usable cores
shared among torchrun's local processes; idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE)
unless the user chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from magvit.cli.main import main
from magvit.core import threads
from magvit.errors import MagvitError


def test_thread_count_order(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert threads.thread_count() == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    assert threads.thread_count() == 2  # 8 cores among 3 processes
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert threads.thread_count() == 5
    assert threads.thread_count(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "two")
    with pytest.raises(MagvitError, match="OMP_NUM_THREADS='two' is not a whole number of threads"):
        threads.thread_count()
    monkeypatch.setenv("OMP_NUM_THREADS", "0")
    with pytest.raises(MagvitError, match="OMP_NUM_THREADS='0': give at least 1 thread"):
        threads.thread_count()


def test_usable_cores_follow_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert threads.usable_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert threads.usable_cores() == 6  # no affinity masks on this platform


def test_the_threads_option_sets_torch_threads(capsys):
    before = torch.get_num_threads()
    try:
        assert main(["--threads", "2", "experiments", "list"]) == 0
        assert torch.get_num_threads() == 2
        assert main(["--threads", "1", "experiments", "list"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert main(["--threads", "0", "experiments", "list"]) == 2
    assert "argument --threads: must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_command_sets_a_passive_wait_policy_before_torch_loads(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = ("import sys, os; import magvit.cli.main; "
            "print('torch' in sys.modules, os.environ['OMP_WAIT_POLICY'])")
    # `import magvit.cli.main` loads torch; the policy must be in the environment by then
    script = ("import os, sys\n"
              "import magvit.cli\n"
              "assert 'torch' not in sys.modules\n"
              f"exec({code!r})\n")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", expected]
