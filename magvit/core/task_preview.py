"""A picture of a task: the clip's frames above what the task gives the model.

Top row: the clip. Bottom row: the padded condition video, with padding pixels tinted and
darkened and the edge of the given region outlined in green.
"""

from __future__ import annotations

import torch

PADDING_TINT = torch.tensor([0.55, 0.15, 0.55]).view(3, 1, 1, 1)
OUTLINE = torch.tensor([0.1, 1.0, 0.2]).view(3, 1, 1, 1)
GAP = 2


def region_outline(mask: torch.Tensor) -> torch.Tensor:
    """(T, H, W) bool: given pixels with a non-given 4-neighbour in the same frame."""
    padded = torch.nn.functional.pad(mask.float().unsqueeze(1), (1, 1, 1, 1), value=1.0).bool()
    inside = (padded[:, :, :-2, 1:-1] & padded[:, :, 2:, 1:-1]
              & padded[:, :, 1:-1, :-2] & padded[:, :, 1:-1, 2:]).squeeze(1)
    return mask & ~inside


def preview_image(video: torch.Tensor, padded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(3, 2H + GAP, T(W + GAP) - GAP) image in [0, 1] from a clip (3, T, H, W), its padded
    condition video and the (T, H, W) pixel mask."""
    given = mask.unsqueeze(0)
    shown = torch.where(given, padded, 0.45 * padded + 0.55 * PADDING_TINT)
    shown = torch.where(region_outline(mask).unsqueeze(0), OUTLINE.expand_as(shown), shown)
    rows = [video.clamp(0, 1), shown.clamp(0, 1)]
    _, frames, height, width = video.shape
    image = torch.ones(3, 2 * height + GAP, frames * (width + GAP) - GAP)
    for r, row in enumerate(rows):
        for t in range(frames):
            top, left = r * (height + GAP), t * (width + GAP)
            image[:, top:top + height, left:left + width] = row[:, t]
    return image
