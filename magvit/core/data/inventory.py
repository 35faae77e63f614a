"""What a folder of videos holds: counts per class, frames, sizes, rates, codecs, broken files.

Each file is opened, its first frame decoded and its video packets counted (no full decode), so
a corrupt, truncated or codec-less file shows up here before a training run meets it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import attrs
from tqdm import tqdm

from magvit.core.data.folder import find_videos
from magvit.core.video_io import UnreadableVideoError, VideoInfo, probe_video


@attrs.define
class Inventory:
    root: str
    videos: list[VideoInfo] = attrs.Factory(list)
    unreadable: dict[str, str] = attrs.Factory(dict)  # path -> reason
    class_counts: Counter = attrs.Factory(Counter)  # class sub-folder -> readable videos

    @property
    def total(self) -> int:
        return len(self.videos) + len(self.unreadable)

    def to_dict(self) -> dict:
        frames = [v.frames for v in self.videos]
        return {
            "path": self.root,
            "videos": self.total,
            "readable": len(self.videos),
            "classes": dict(sorted(self.class_counts.items())),
            "frames": {
                "min": min(frames, default=0), "max": max(frames, default=0),
                "mean": round(sum(frames) / len(frames), 2) if frames else 0, "total": sum(frames),
            },
            "resolutions": _counts(f"{v.width}x{v.height}" for v in self.videos),
            "fps": _counts(f"{v.fps:g}" for v in self.videos),
            "codecs": _counts(v.codec for v in self.videos),
            "unreadable": [{"path": p, "error": e} for p, e in sorted(self.unreadable.items())],
        }


def _counts(values) -> dict[str, int]:
    return dict(Counter(values).most_common())


def inspect_videos(path: str | Path, progress: bool = True) -> Inventory:
    """Probe one video file or every video under a folder; never raises for a broken file."""
    path = Path(path)
    paths = [path] if path.is_file() else find_videos(path)
    inventory = Inventory(str(path))
    for file in tqdm(paths, desc="inspecting", unit="video", disable=not progress or None):
        try:
            inventory.videos.append(probe_video(file, count_frames=True))
        except UnreadableVideoError as exc:
            inventory.unreadable[str(file)] = str(exc)
            continue
        parts = file.relative_to(path).parts if path.is_dir() else ()
        if len(parts) > 1:
            inventory.class_counts[parts[0]] += 1
    return inventory
