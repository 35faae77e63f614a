"""The clips a model is scored on: held-out clips of its own training data, a folder of videos,
or the user's files, at the model's clip size."""

from __future__ import annotations

from pathlib import Path

import torch

from magvit.errors import MagvitError
from magvit.workflows.pipeline import Pipeline


def held_out_clips(pipe: Pipeline, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` clips of the eval split of the model's own training data. A dataset
    whose config sizes its eval split (`eval_clips`, as `synthetic` does) is widened to `count`
    clips when it has fewer: such clips are drawn per index from the eval split's own seeds, so
    the first ones stay the same and none of them is a training clip."""
    data = pipe.bundle.experiment.data
    if data is None:
        raise MagvitError("this model's experiment names no [data]; pass --input videos instead")
    size = getattr(data.config, "eval_clips", None)
    widen = {"eval_clips": count} if isinstance(size, int) and size < count else {}
    dataset = data.build(**widen).make("eval", seed=seed)
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    videos = torch.stack([item["video"] for item in items]).to(pipe.device)
    labels = torch.tensor([item["label"] for item in items], device=pipe.device)
    return videos, labels


def input_clips(pipe: Pipeline, paths: list[Path], label: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The user's videos at the model's clip size (short side resized, centre crop)."""
    videos = torch.stack([pipe.load_video(p) for p in paths]).to(pipe.device)
    return videos, torch.full((len(paths),), label, device=pipe.device)


def folder_clips(pipe: Pipeline, path: str | Path, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` clips of the eval split of a folder of videos (one sub-folder per
    class), cut and resized to the model's clip."""
    from magvit.registry import registries

    frames, height, _ = pipe.clip_shape
    dataset = registries().datasets.create("video_folder", path=str(path), frames=frames,
                                           resolution=height).make("eval", seed=seed)
    if not len(dataset):
        raise MagvitError(f"{path} has no clip of {frames} frames to evaluate on")
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    videos = torch.stack([item["video"] for item in items]).to(pipe.device)
    return videos, torch.tensor([max(0, int(item["label"])) for item in items], device=pipe.device)
