"""Where `magvit eval` takes its clips from, one batch at a time (nothing sits in memory but
the batch): the model's held-out clips or a folder (the same clips every fold, new seeds), or a
protocol's run through a dataset (fold f: clips f·samples .. (f+1)·samples - 1).

A source maps a global clip index to a clip, says which clips form the real distribution of a
fold (`real_parts`: index lists and how often each counts, so a small evaluation set cycled
100 times is extracted once) and the cache key of those statistics.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from magvit.errors import MagvitError
from magvit.workflows.eval_protocols import Protocol


def centre_resize(video: torch.Tensor, size: int) -> torch.Tensor:
    """`(B, 3, T, H, W)` -> centre square crop, bilinear resize to `size` x `size` (the K600
    protocol's 128 -> 64)."""
    b, c, t, h, w = video.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    frames = video[..., top:top + side, left:left + side].transpose(1, 2).reshape(b * t, c, side, side)
    if side != size:
        frames = F.interpolate(frames.float(), size=(size, size), mode="bilinear", align_corners=False,
                               antialias=True)
    return frames.reshape(b, t, c, size, size).transpose(1, 2).clamp(0, 1)


class TensorClips:
    """Fixed clips (the model's held-out split, or a folder's first clips): every fold scores
    the same clips with other seeds."""

    def __init__(self, videos: torch.Tensor, labels: torch.Tensor, key: dict[str, Any]):
        self.videos, self.labels, self.key = videos, labels, key
        self.samples = len(videos)

    def index(self, fold: int, j: int) -> int:
        return j

    def clip_id(self, index: int) -> int:
        return index

    def clips(self, indices: list[int], has_condition: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        return self.videos[indices], self.labels[indices]

    def real_parts(self, fold: int, has_condition: bool = True) -> list[tuple[list[int], int]]:
        return [(list(range(self.samples)), 1)]

    def real_key(self, fold: int, has_condition: bool = True) -> dict[str, Any]:
        return dict(self.key)

    def for_features(self, video: torch.Tensor) -> torch.Tensor:
        return video


class ProtocolClips:
    """A protocol's clips from a folder of videos, read when a batch needs them."""

    def __init__(self, protocol: Protocol, path: str, device, seed: int, samples: int | None = None):
        self.protocol, self.path, self.device, self.seed = protocol, str(path), device, seed
        self.samples = samples or protocol.samples
        self._datasets: dict[str, Any] = {}

    def _dataset(self, split: str):
        if split not in self._datasets:
            from magvit.registry import registries

            p = self.protocol
            config = dict(path=self.path, frames=p.frames, resolution=p.resolution)
            if split == "eval":
                config.update(eval_windows=p.windows, eval_crops=p.crops)
            dataset = registries().datasets.create("video_folder", **config).make(split, seed=self.seed)
            if not len(dataset):
                raise MagvitError(f"{self.path} has no {split} clip of {p.frames} frames for protocol {p.name}")
            self._datasets[split] = dataset
        return self._datasets[split]

    def index(self, fold: int, j: int) -> int:
        return fold * self.samples + j

    def clip_id(self, index: int, has_condition: bool = True) -> int:
        """Which evaluation clip a global index shows (eval split: it cycles)."""
        split = self.protocol.split_for(has_condition)
        return index % len(self._dataset(split)) if split == "eval" else index

    def clips(self, indices: list[int], has_condition: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        split = self.protocol.split_for(has_condition)
        dataset = self._dataset(split)
        items = []
        for g in indices:
            if split == "train":  # random clips: a new pass over the videos draws new windows
                dataset.set_epoch(g // len(dataset))
            items.append(dataset[g % len(dataset)])
        videos = torch.stack([item["video"] for item in items]).to(self.device)
        labels = torch.tensor([max(0, int(item["label"])) for item in items], device=self.device)
        return videos, labels

    def real_parts(self, fold: int, has_condition: bool = True) -> list[tuple[list[int], int]]:
        split = self.protocol.split_for(has_condition)
        start, count = fold * self.samples, self.samples
        if split == "train":  # every clip of the fold is its own random draw
            return [(list(range(start, start + count)), 1)]
        n = len(self._dataset(split))  # fixed windows x crops: clip g is clip g % n
        times, extra = divmod(count, n)
        parts = [(list(range(n)), times)] if times else []
        if extra:
            parts.append((sorted((start + j) % n for j in range(extra)), 1))
        return parts

    def real_key(self, fold: int, has_condition: bool = True) -> dict[str, Any]:
        split = self.protocol.split_for(has_condition)
        return {"protocol": self.protocol.name, "data": self.path, "split": split, "seed": self.seed,
                "frames": self.protocol.frames, "resolution": self.protocol.resolution,
                "eval_resolution": self.protocol.eval_resolution, "windows": self.protocol.windows,
                "crops": self.protocol.crops}

    def for_features(self, video: torch.Tensor) -> torch.Tensor:
        size = self.protocol.eval_resolution
        return video if size is None else centre_resize(video, size)
