"""How many CPU threads a process uses, and how they wait.

Threads: `--threads N` when given, else `OMP_NUM_THREADS` (torchrun sets it to 1 per process),
else the cores this process may run on (its affinity mask, which containers and `taskset`
narrow), divided among the processes `torchrun` started on this machine.

Waiting: OpenMP's default lets idle threads spin for a while before sleeping. When another
process shares the cores, the spinning threads take turns with the real work and small
operations become 10-60 times slower. `OMP_WAIT_POLICY=PASSIVE` makes them sleep at once; it
must be in the environment before torch loads its OpenMP runtime, so the `magvit` command sets
it (unless the user did) before it imports torch (`magvit/cli/__init__.py`).
"""

from __future__ import annotations

import os

import torch

from magvit.errors import MagvitError


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise MagvitError(f"{name}={value!r} is not a whole number of threads") from None
    if number < 1:
        raise MagvitError(f"{name}={value!r}: give at least 1 thread")
    return number


def thread_count(threads: int | None = None) -> int:
    """The threads to use: `threads`, else OMP_NUM_THREADS, else the usable cores shared among
    this machine's torchrun processes (LOCAL_WORLD_SIZE)."""
    if threads is not None:
        if threads < 1:
            raise MagvitError(f"--threads must be at least 1, got {threads}")
        return threads
    from_env = _env_int("OMP_NUM_THREADS")
    if from_env is not None:
        return from_env
    local = _env_int("LOCAL_WORLD_SIZE") or 1
    return max(1, usable_cores() // local)


def apply_thread_policy(threads: int | None = None) -> dict[str, object]:
    """Set torch's intra-op threads by `thread_count`; returns what was set (for run records)."""
    count = thread_count(threads)
    torch.set_num_threads(count)
    return {"threads": count, "cores": usable_cores(),
            "wait_policy": os.environ.get("OMP_WAIT_POLICY", "(OpenMP default)")}
