"""The ten built-in tasks of the paper (Appendix B.1) and the `Task` base class.

A task says which pixels of a clip are given (`pixel_mask`), pads the rest with its padding
plugin (`condition`), and which latent tokens get a condition token when masked
(`latent_mask`): by default every token whose supervoxel holds a given pixel. The moving
regions of OPD and IPD are placed on the latent grid directly, as the authors' release does,
which is what gives Table 12's 50% and 25% masked tokens.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

import magvit
from magvit.core import regions
from magvit.core.masking import latent_mask_from_pixels
from magvit.errors import MagvitError
from magvit.plugins.paddings import Edge, Interpolate, Zero
from magvit.registry.components import Component

PaddingComponent = Component.of("paddings")


def padding(name: str, factory) -> attrs.Attribute:
    return attrs.field(factory=lambda: PaddingComponent(name, factory()))


def at_least(minimum: int):
    def check(_instance, attribute, value):
        if value < minimum:
            raise ValueError(f"{attribute.name} must be >= {minimum}, got {value}")

    return check


def fraction(_instance, attribute, value):
    if not 0 < value <= 1:
        raise ValueError(f"{attribute.name} is a fraction of the frame in (0, 1], got {value}")


class Task:
    """Base of every task; subclasses set `name` and define `pixel_mask`."""

    name: ClassVar[str]
    needs_class: ClassVar[bool] = False
    has_condition: ClassVar[bool] = True
    padding: PaddingComponent

    def pixel_mask(self, shape: tuple[int, int, int]) -> torch.Tensor:
        """(T, H, W) bool, True on the given pixels of a T x H x W clip."""
        raise NotImplementedError

    def latent_mask(self, latent_shape, factors=(4, 8, 8)) -> torch.Tensor:
        """(t, h, w) bool, True where a masked token takes its condition token."""
        clip = tuple(n * f for n, f in zip(latent_shape, factors))
        return latent_mask_from_pixels(self.pixel_mask(clip), factors)

    def condition(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The padded condition video (same shape as `video`) and the (T, H, W) pixel mask."""
        mask = self._video_mask(video)
        return self.padding.build()(video, mask), mask

    def _video_mask(self, video: torch.Tensor) -> torch.Tensor:
        """The pixel mask for `video`, after checking that it is a clip or a batch of clips."""
        if video.dim() not in (4, 5) or video.shape[-4] != 3:
            raise MagvitError(f"task {self.name}: expected a video (B, 3, T, H, W), got {tuple(video.shape)}")
        return self.pixel_mask(tuple(video.shape[-3:])).to(video.device)


@attrs.define
class FramePrediction(Task):
    """FP: the first `cond_frames` frames are given; the rest repeat the last of them."""

    name: ClassVar[str] = "fp"
    cond_frames: int = attrs.field(default=1, validator=at_least(1))
    padding: PaddingComponent = padding("edge", Edge)

    def pixel_mask(self, shape):
        return regions.first_last_frames(shape, self.cond_frames, 0)


@attrs.define
class ClassFramePrediction(FramePrediction):
    """CFP: frame prediction with a class label."""

    name: ClassVar[str] = "cfp"
    needs_class: ClassVar[bool] = True


@attrs.define
class FrameInterpolation(Task):
    """FI: first and last frames given; the middle interpolates linearly between them."""

    name: ClassVar[str] = "fi"
    first_frames: int = attrs.field(default=1, validator=at_least(1))
    last_frames: int = attrs.field(default=1, validator=at_least(1))
    padding: PaddingComponent = padding("interpolate", Interpolate)

    def pixel_mask(self, shape):
        return regions.first_last_frames(shape, self.first_frames, self.last_frames)


@attrs.define
class CentralOutpainting(Task):
    """OPC: a centred box of `height` x `width` (fractions of the frame) is given."""

    name: ClassVar[str] = "opc"
    height: float = attrs.field(default=0.5, validator=fraction)
    width: float = attrs.field(default=0.5, validator=fraction)
    padding: PaddingComponent = padding("edge", Edge)

    def pixel_mask(self, shape):
        return regions.centred_box(shape, self.height, self.width)


@attrs.define
class VerticalOutpainting(Task):
    """OPV: a centred vertical strip of `width` is given."""

    name: ClassVar[str] = "opv"
    width: float = attrs.field(default=0.5, validator=fraction)
    padding: PaddingComponent = padding("edge", Edge)

    def pixel_mask(self, shape):
        return regions.centred_box(shape, 1.0, self.width)


@attrs.define
class HorizontalOutpainting(Task):
    """OPH: a centred horizontal strip of `height` is given."""

    name: ClassVar[str] = "oph"
    height: float = attrs.field(default=0.5, validator=fraction)
    padding: PaddingComponent = padding("edge", Edge)

    def pixel_mask(self, shape):
        return regions.centred_box(shape, self.height, 1.0)


class MovingRegionTask(Task):
    """A region that moves over time, placed on the latent grid directly (not by supervoxel)."""

    def latent_mask(self, latent_shape, factors=(4, 8, 8)):
        return self.pixel_mask(tuple(latent_shape))


@attrs.define
class DynamicOutpainting(MovingRegionTask):
    """OPD: a vertical strip of `width` moving across the frame is given."""

    name: ClassVar[str] = "opd"
    width: float = attrs.field(default=0.5, validator=fraction)
    direction: regions.Direction = "left_to_right"
    padding: PaddingComponent = padding("zero", Zero)

    def pixel_mask(self, shape):
        return regions.moving_box(shape, 1.0, self.width, self.direction)


@attrs.define
class CentralInpainting(Task):
    """IPC: everything but a centred box of `height` x `width` is given."""

    name: ClassVar[str] = "ipc"
    height: float = attrs.field(default=0.5, validator=fraction)
    width: float = attrs.field(default=0.5, validator=fraction)
    padding: PaddingComponent = padding("zero", Zero)

    def pixel_mask(self, shape):
        return ~regions.centred_box(shape, self.height, self.width)


@attrs.define
class DynamicInpainting(MovingRegionTask):
    """IPD: everything but a vertically centred box moving across the frame is given."""

    name: ClassVar[str] = "ipd"
    height: float = attrs.field(default=0.5, validator=fraction)
    width: float = attrs.field(default=0.5, validator=fraction)
    direction: regions.Direction = "left_to_right"
    padding: PaddingComponent = padding("zero", Zero)

    def pixel_mask(self, shape):
        return ~regions.moving_box(shape, self.height, self.width, self.direction)


@attrs.define
class ClassGeneration(Task):
    """CG: only a class label; no pixel is given."""

    name: ClassVar[str] = "cg"
    needs_class: ClassVar[bool] = True
    has_condition: ClassVar[bool] = False

    def pixel_mask(self, shape):
        return torch.zeros(shape, dtype=torch.bool)

    def condition(self, video):
        return torch.zeros_like(video), self._video_mask(video)


BUILTIN_TASKS = (
    FramePrediction, FrameInterpolation, CentralOutpainting, VerticalOutpainting,
    HorizontalOutpainting, DynamicOutpainting, CentralInpainting, DynamicInpainting,
    ClassGeneration, ClassFramePrediction,
)


@magvit.hookimpl
def magvit_register_tasks(registry):
    for task in BUILTIN_TASKS:
        registry.add(task.name, task)
