"""What a dataset does with a video it cannot read: stop with the file's name, or skip it.

Skipping warns once per file and keeps the names, so the summary ("skipped 1 unreadable file of
40") can be reported at the end of indexing or inspection.
"""

from __future__ import annotations

import warnings

from magvit.core.video_io import UnreadableVideoError

SKIP_HINT = "remove or re-encode it, or set skip_unreadable = true in [data] to skip such files"


class UnreadableVideoWarning(UserWarning):
    """A video was skipped because it cannot be read."""


class UnreadableFiles:
    """Unreadable videos met so far: `handle` raises or records-and-warns, by `skip`."""

    def __init__(self, skip: bool):
        self.skip = skip
        self.reasons: dict[str, str] = {}

    def handle(self, path: str, error: UnreadableVideoError) -> None:
        if not self.skip:
            raise UnreadableVideoError(f"{error}; {SKIP_HINT}") from None
        if str(path) not in self.reasons:
            self.reasons[str(path)] = str(error)
            warnings.warn(f"skipping unreadable video: {error}", UnreadableVideoWarning, stacklevel=3)

    def __len__(self) -> int:
        return len(self.reasons)

    def summary(self, total: int, where: str) -> str:
        return f"skipped {len(self)} unreadable file(s) of {total} under {where}"

    def warn_summary(self, total: int, where: str) -> None:
        if self.reasons:
            warnings.warn(self.summary(total, where), UnreadableVideoWarning, stacklevel=3)
