"""Writing outputs safely: under a temporary name renamed into place, with the user's umask, and
without leaving behind folders a failed write created."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give `path` (and, for a folder, everything in it) the mode a plain `open`/`mkdir` would:
    temporary files and folders are created private (0600/0700) by `tempfile` and some writers."""
    mask = current_umask()
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        item.chmod((0o777 if item.is_dir() else 0o666) & ~mask)


def make_parents(path: Path) -> list[Path]:
    """Create the missing folders above `path`; return those created, outermost first."""
    created = []
    for folder in reversed(path.parents):
        try:
            folder.mkdir()
        except FileExistsError:  # there already, or made meanwhile by another writer
            continue
        created.append(folder)
    return created


def remove_if_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix) to write; on success it replaces
    `path`, on failure it is removed along with any folder this call created."""
    path = Path(path)
    created = make_parents(path)
    # A name of this writer's own (process and thread): writers racing on one output would
    # otherwise tear each other's file or find it already renamed.
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}-{threading.get_ident()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_if_empty(created)
        raise
    apply_umask(path)
