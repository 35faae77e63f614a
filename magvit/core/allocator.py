"""Keep freed memory in the process, so that re-allocating it costs no page faults (glibc).

glibc's malloc serves a block above its mmap threshold (128 KiB at first, rising with the blocks
freed, to at most 32 MiB) with fresh pages from the kernel and gives them back on free, and it
trims the heap's free top back to the kernel too. A training or decoding step frees and
allocates the same activations every step, so every step the kernel zero-fills and faults in
the same pages again. On this project's 2-core CPU VM that was a third to a half of the time
spent in the kernel, and CPU training ran at half speed (`benchmarks/allocator.py`).

`keep_freed_memory()` tells glibc to serve every block from its heaps and never trim them
(`mallopt`), so a freed block is reused as it is. The price: the process keeps the memory of its
peak. The `magvit` command calls it first thing; library users may call it themselves. It
leaves malloc alone when the user chose: `MAGVIT_MALLOC=system`, any `MALLOC_*` variable or
`glibc.malloc` tunable, or an allocator in `LD_PRELOAD` (jemalloc, tcmalloc, mimalloc).
"""

from __future__ import annotations

import ctypes
import os
import platform

from magvit.errors import MagvitError

# mallopt's parameters (glibc <malloc.h>)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
CHOICES = ("keep", "system")
PRELOADED_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")
NOT_CALLED = "system (keep_freed_memory not called)"

_applied = NOT_CALLED  # what the last keep_freed_memory() did: mallopt cannot be read back


def allocator_choice() -> str:
    """`MAGVIT_MALLOC`: keep (the default) or system."""
    value = os.environ.get("MAGVIT_MALLOC", "").strip().lower() or "keep"
    if value not in CHOICES:
        raise MagvitError(f"MAGVIT_MALLOC={os.environ['MAGVIT_MALLOC']!r} is not one of "
                          f"{', '.join(CHOICES)} (keep: freed memory stays in the process; "
                          "system: malloc as the C library has it)")
    return value


def user_choice() -> str | None:
    """What the user set for malloc themselves, if anything (then magvit leaves it)."""
    for name in sorted(os.environ):
        if name.startswith("MALLOC_"):
            return name
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    preload = os.environ.get("LD_PRELOAD", "")
    for allocator in PRELOADED_ALLOCATORS:
        if allocator in preload:
            return f"LD_PRELOAD ({allocator})"
    return None


def keep_freed_memory() -> str:
    """Make glibc keep freed memory for reuse; returns a line saying what was done."""
    global _applied
    _applied = _keep_freed_memory()
    return _applied


def malloc_setting() -> str:
    """What this process's malloc does, as `keep_freed_memory` last reported (for run records)."""
    return _applied


def _keep_freed_memory() -> str:
    if allocator_choice() == "system":
        return "system (MAGVIT_MALLOC=system)"
    chosen = user_choice()
    if chosen is not None:
        return f"system ({chosen} is set)"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "system (not glibc)"
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the process's own C library
    if mallopt is None:
        return "system (no mallopt)"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; -1 as the trim threshold turns trimming off
    if mallopt(M_MMAP_MAX, 0) != 1 or mallopt(M_TRIM_THRESHOLD, -1) != 1:
        return "system (mallopt refused)"
    return "keep (glibc: no mmap blocks, no trimming)"
