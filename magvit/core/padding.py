"""Filling the non-condition pixels of a video, one axis at a time.

`mask` (T, H, W) marks the given pixels of `video` (..., T, H, W). A pass along one axis fills
each missing pixel from the given (or already filled) pixels on its line along that axis:
`nearest` copies the closest one (ties go to the earlier), `linear` interpolates between the
closest ones on either side and copies beyond the ends. Passes over T, then H, then W give
edge padding for boxes and strips (the clamp of numpy's mode="edge") and FI's interpolation
v0 + (v_last - v0) * k / (L + 1) between first and last frame.
"""

from __future__ import annotations

from typing import Literal

import torch

from magvit.errors import MagvitError

Fill = Literal["nearest", "linear"]


def _neighbours(filled: torch.Tensor, dim: int):
    """Index of the closest filled cell at-or-before and at-or-after each cell along `dim`."""
    length = filled.shape[dim]
    shape = [1, 1, 1]
    shape[dim] = length
    index = torch.arange(length, device=filled.device).view(shape).expand_as(filled)
    before = torch.where(filled, index, -1).cummax(dim).values
    after = torch.where(filled, index, length).flip(dim).cummin(dim).values.flip(dim)
    return index, before, after, before >= 0, after < length


def fill_along(video: torch.Tensor, filled: torch.Tensor, dim: int, fill: Fill):
    """One pass along mask axis `dim` (0 = T, 1 = H, 2 = W); returns (video, filled)."""
    index, before, after, has_before, has_after = _neighbours(filled, dim)
    length = filled.shape[dim]
    vdim = video.dim() - 3 + dim

    def take(source: torch.Tensor) -> torch.Tensor:
        return video.gather(vdim, source.clamp(0, length - 1).expand_as(video))

    reachable = has_before | has_after
    if fill == "nearest":
        use_before = has_before & (~has_after | (index - before <= after - index))
        out = take(torch.where(use_before, before, after))
    else:
        low, high = take(torch.where(has_before, before, after)), take(torch.where(has_after, after, before))
        span = (after - before).clamp_min(1)
        fraction = torch.where(has_before & has_after, (index - before) / span, 0.0).to(video.dtype)
        out = low + (high - low) * fraction
    return torch.where(reachable, out, video), reachable


def pad_video(video: torch.Tensor, mask: torch.Tensor, fill: Fill) -> torch.Tensor:
    """Fill every non-condition pixel axis by axis (T, H, W); pixels no pass reaches (an empty
    mask) become 0. Condition pixels are returned bit for bit."""
    check_mask(video, mask)
    mask = mask.to(device=video.device, dtype=torch.bool)
    out, filled = video, mask
    for dim in range(3):
        out, filled = fill_along(out, filled, dim, fill)
    out = torch.where(filled, out, torch.zeros((), dtype=video.dtype, device=video.device))
    return torch.where(mask, video, out)


def check_mask(video: torch.Tensor, mask: torch.Tensor) -> None:
    if video.dim() < 4 or tuple(mask.shape) != tuple(video.shape[-3:]):
        raise MagvitError(
            f"padding needs a video (..., 3, T, H, W) and a (T, H, W) mask, got "
            f"{tuple(video.shape)} and {tuple(mask.shape)}"
        )
