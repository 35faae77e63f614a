"""Ultrawide outpainting (paper Fig. 17): a strip widened by repeated vertical outpainting, one
`Pipeline.generate` call per round."""

from __future__ import annotations

import torch

from magvit.errors import MagvitError
from magvit.workflows.pipeline import Labels, Pipeline


def outpaint_ultrawide(pipeline: Pipeline, strip: torch.Tensor, repeats: int, *, task: str = "opv",
                       seed: int = 0, label: Labels = None, progress: bool = False) -> torch.Tensor:
    """Widen a `(3, T, H, w)` strip by repeating vertical outpainting on both sides (paper
    Fig. 17): each round places the outermost known columns in the task's condition strip and
    keeps the columns generated beyond them. Returns `(3, T, H, w + 2 * repeats * added)`."""
    frames, height, width = pipeline.clip_shape
    mask = pipeline.task(task).pixel_mask(pipeline.clip_shape)
    columns = mask[0].any(dim=0).nonzero().flatten()
    left, right = (int(columns[0]), int(columns[-1]) + 1) if len(columns) else (0, 0)  # the strip [left, right)
    strip_mask = torch.zeros_like(mask)
    strip_mask[..., left:right] = True
    if not len(columns) or left == 0 or right == width or not torch.equal(mask, strip_mask):
        raise MagvitError(
            f"task {task!r} does not give a vertical strip with room on both sides, so outpainting "
            "cannot widen anything; --ultrawide needs a vertical outpainting task such as opv"
        )
    known = right - left
    if strip.dim() != 4 or tuple(strip.shape[:3]) != (3, frames, height) or strip.shape[-1] < known:
        raise MagvitError(
            f"ultrawide outpainting needs a strip shaped (3, {frames}, {height}, >= {known}), got "
            f"{tuple(strip.shape)}; crop the input to the model's height and frame count"
        )
    panorama = strip.to(pipeline.device, torch.float32)
    for round_ in range(repeats):
        windows = torch.zeros(2, 3, frames, height, width, device=pipeline.device)
        windows[0, ..., left:right] = panorama[..., -known:]  # grows to the right
        windows[1, ..., left:right] = panorama[..., :known]  # grows to the left
        out = pipeline.generate(task, windows, label=label, seed=seed + round_,
                                progress=progress).video
        panorama = torch.cat([out[1, ..., :left], panorama, out[0, ..., right:]], dim=-1)
    return panorama
