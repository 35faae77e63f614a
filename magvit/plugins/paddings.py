"""Built-in padding functions `(video, pixel_mask) -> padded video` (see magvit.core.padding)."""

from __future__ import annotations

import attrs
import torch

from magvit.api import check_mask, hookimpl, pad_video


@attrs.define
class Edge:
    """Each missing pixel copies the nearest given one, axis by axis (T, then H, then W)."""

    def __call__(self, video: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
        return pad_video(video, pixel_mask, "nearest")


@attrs.define
class Interpolate:
    """Linear between the given pixels on either side (FI: between first and last frame),
    copied beyond the ends; axis by axis (T, then H, then W)."""

    def __call__(self, video: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
        return pad_video(video, pixel_mask, "linear")


@attrs.define
class Zero:
    def __call__(self, video: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
        check_mask(video, pixel_mask)
        return torch.where(pixel_mask.to(video.device, torch.bool), video, torch.zeros_like(video))


@hookimpl
def magvit_register_paddings(registry):
    registry.add("edge", Edge)
    registry.add("interpolate", Interpolate)
    registry.add("zero", Zero)
