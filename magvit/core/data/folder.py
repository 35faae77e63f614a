"""A folder of videos, one sub-folder per class (the UCF-101 layout), as a clip dataset.

```
root/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi
root/Archery/...
```

Classes are the sub-folders in sorted order (label = position); videos directly under the root
are unlabelled (-1). Optional split lists (`train_list`, `eval_list`, UCF-101's
`trainlist01.txt` format: a path relative to the root per line, anything after it ignored) pick
the videos of each split; without one a split uses every video. Training items are one random
clip per video (random window x random crop, reseeded per epoch); evaluation items are every
video x `eval_windows` fixed windows x `eval_crops` fixed crops (Appendix B.3).
"""

from __future__ import annotations

from pathlib import Path

import attrs
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from magvit.core.data import clips
from magvit.core.data.seeding import item_generator
from magvit.core.data.unreadable import UnreadableFiles
from magvit.core.video_io import UnreadableVideoError, probe_video, read_video
from magvit.errors import InvalidValue, MagvitError

VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".gif", ".mpg", ".mpeg", ".flv", ".wmv",
    ".ogv", ".3gp", ".ts",
})


def find_videos(root: str | Path) -> list[Path]:
    """Every file under `root` (recursively) whose suffix is a video suffix, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise MagvitError(f"dataset folder {root} does not exist or is not a folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def class_names(root: str | Path) -> list[str]:
    """The class sub-folders of `root`: those holding at least one video, sorted."""
    return sorted({p.relative_to(root).parts[0] for p in find_videos(root)
                   if len(p.relative_to(root).parts) > 1})


@attrs.frozen
class VideoEntry:
    path: Path
    label: int
    frames: int


def _positive(_instance, attribute, value):
    if value <= 0:
        raise InvalidValue(attribute.name, f"must be positive, got {value}")


@attrs.define(kw_only=True)
class VideoFolder:
    """Config of the `video_folder` dataset; `make(split, seed)` builds the torch Dataset."""

    path: str
    frames: int = attrs.field(default=16, validator=_positive)
    resolution: int = attrs.field(default=128, validator=_positive)
    stride: int = attrs.field(default=1, validator=_positive)
    train_list: str = ""
    eval_list: str = ""
    eval_windows: int = attrs.field(default=1, validator=_positive)
    eval_crops: int = attrs.field(default=1, validator=_positive)
    skip_unreadable: bool = False
    # The number of classes, when known (UCF-101: 101): sizes the model without the data on disk.
    # 0 counts the class sub-folders.
    classes: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    @property
    def num_classes(self) -> int:
        return self.classes or len(class_names(self.path))

    def make(self, split: str, seed: int = 0) -> VideoClips:
        if split not in ("train", "eval"):
            raise MagvitError(f"unknown split {split!r} for video_folder {self.path}; use 'train' or 'eval'")
        listing = self.train_list if split == "train" else self.eval_list
        unreadable = UnreadableFiles(self.skip_unreadable)
        entries = index_videos(self.path, listing, unreadable)
        return VideoClips(self, entries, split, seed, unreadable)


def index_videos(root: str | Path, listing: str, unreadable: UnreadableFiles) -> list[VideoEntry]:
    """Probe the videos of a split (all, or those in the `listing` file) for their frame counts."""
    root = Path(root)
    classes = {name: label for label, name in enumerate(class_names(root))}
    paths = _listed(root, listing) if listing else find_videos(root)
    if not paths:
        raise MagvitError(f"no video files under {root} (looked for {', '.join(sorted(VIDEO_SUFFIXES))})")
    entries = []
    for path in tqdm(paths, desc=f"indexing {root.name}", unit="video", leave=False, disable=None):
        try:
            frames = probe_video(path).frames
        except UnreadableVideoError as exc:
            unreadable.handle(str(path), exc)
            continue
        parts = path.relative_to(root).parts
        entries.append(VideoEntry(path, classes.get(parts[0], -1) if len(parts) > 1 else -1, frames))
    unreadable.warn_summary(len(paths), str(root))
    if not entries:
        raise MagvitError(f"none of the {len(paths)} videos under {root} can be read")
    return entries


def _listed(root: Path, listing: str) -> list[Path]:
    list_path = Path(listing) if Path(listing).is_absolute() else root / listing
    if not list_path.is_file():
        raise MagvitError(f"split list {list_path} does not exist")
    lines = [line.split()[0] for line in list_path.read_text().splitlines() if line.strip()]
    return [root / line for line in lines]


class VideoClips(Dataset):
    """Clips cut from indexed videos; item `i` is `{"video": (3, T, R, R), "label": int}`."""

    def __init__(self, config: VideoFolder, entries: list[VideoEntry], split: str, seed: int,
                 unreadable: UnreadableFiles):
        self.config, self.entries, self.split, self.seed = config, entries, split, seed
        self.unreadable = unreadable
        self.epoch = 0
        self.clips_per_video = 1 if split == "train" else config.eval_windows * config.eval_crops

    def __len__(self) -> int:
        return len(self.entries) * self.clips_per_video

    def set_epoch(self, epoch: int) -> None:
        """Training clips are drawn from (seed, epoch, index): a new epoch, new windows and crops."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} out of range for {len(self)} {self.split} clips")
        for attempt in range(len(self.entries)):
            video_index = (index // self.clips_per_video + attempt) % len(self.entries)
            entry = self.entries[video_index]
            try:
                return {"video": self._clip(entry, index), "label": entry.label}
            except UnreadableVideoError as exc:
                self.unreadable.handle(str(entry.path), exc)  # raises unless skipping
        raise MagvitError(f"no video of {self.config.path} can be read")

    def _clip(self, entry: VideoEntry, index: int) -> torch.Tensor:
        cfg = self.config
        if self.split == "train":
            g = item_generator("video_folder", self.seed, self.epoch, index)
            video = self._read(entry, clips.random_window(entry.frames, cfg.frames, cfg.stride, g))
            top, left = clips.random_crop(*video.shape[-2:], cfg.resolution, g)
        else:
            window, crop = divmod(index % self.clips_per_video, cfg.eval_crops)
            starts = clips.uniform_windows(entry.frames, cfg.frames, cfg.stride, cfg.eval_windows)
            video = self._read(entry, starts[window])
            top, left = clips.uniform_crops(*video.shape[-2:], cfg.resolution, cfg.eval_crops)[crop]
        return clips.crop(video, top, left, cfg.resolution).contiguous()

    def _read(self, entry: VideoEntry, start: int) -> torch.Tensor:
        """Frames from `start`, short side resized to the resolution, padded to full length."""
        cfg = self.config
        video = read_video(entry.path, frames=cfg.frames, stride=cfg.stride, start=start,
                           resolution=cfg.resolution, crop=False)
        return clips.pad_frames(video, cfg.frames)
