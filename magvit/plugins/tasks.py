"""The ten built-in tasks of the paper (Appendix B.1), written against `magvit.api` like any
third-party task (the `Task` base class lives there). The moving
regions of OPD and IPD are placed on the latent grid directly, as the authors' release does,
which is what gives Table 12's 50% and 25% masked tokens.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from magvit.api import PaddingComponent, Task, at_least, fraction, hookimpl, padding, regions

__all__ = ["BUILTIN_TASKS", "PaddingComponent", "Task", "at_least", "fraction", "padding"]


@attrs.define
class FramePrediction(Task):
    """FP: the first `cond_frames` frames are given; the rest repeat the last of them."""

    name: ClassVar[str] = "fp"
    cond_frames: int = attrs.field(default=1, validator=at_least(1))
    padding: PaddingComponent = padding("edge")

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
    padding: PaddingComponent = padding("interpolate")

    def pixel_mask(self, shape):
        return regions.first_last_frames(shape, self.first_frames, self.last_frames)


@attrs.define
class CentralOutpainting(Task):
    """OPC: a centred box of `height` x `width` (fractions of the frame) is given."""

    name: ClassVar[str] = "opc"
    height: float = attrs.field(default=0.5, validator=fraction)
    width: float = attrs.field(default=0.5, validator=fraction)
    padding: PaddingComponent = padding("edge")

    def pixel_mask(self, shape):
        return regions.centred_box(shape, self.height, self.width)


@attrs.define
class VerticalOutpainting(Task):
    """OPV: a centred vertical strip of `width` is given."""

    name: ClassVar[str] = "opv"
    width: float = attrs.field(default=0.5, validator=fraction)
    padding: PaddingComponent = padding("edge")

    def pixel_mask(self, shape):
        return regions.centred_box(shape, 1.0, self.width)


@attrs.define
class HorizontalOutpainting(Task):
    """OPH: a centred horizontal strip of `height` is given."""

    name: ClassVar[str] = "oph"
    height: float = attrs.field(default=0.5, validator=fraction)
    padding: PaddingComponent = padding("edge")

    def pixel_mask(self, shape):
        return regions.centred_box(shape, self.height, 1.0)


class MovingRegionTask(Task):
    """A region that moves over time, placed on the latent grid directly (not by supervoxel)."""

    def latent_mask(self, latent_shape, factors=(4, 8, 8), causal=False):
        return self.pixel_mask(tuple(latent_shape))


@attrs.define
class DynamicOutpainting(MovingRegionTask):
    """OPD: a vertical strip of `width` moving across the frame is given."""

    name: ClassVar[str] = "opd"
    width: float = attrs.field(default=0.5, validator=fraction)
    direction: regions.Direction = "left_to_right"
    padding: PaddingComponent = padding("zero")

    def pixel_mask(self, shape):
        return regions.moving_box(shape, 1.0, self.width, self.direction)


@attrs.define
class CentralInpainting(Task):
    """IPC: everything but a centred box of `height` x `width` is given."""

    name: ClassVar[str] = "ipc"
    height: float = attrs.field(default=0.5, validator=fraction)
    width: float = attrs.field(default=0.5, validator=fraction)
    padding: PaddingComponent = padding("zero")

    def pixel_mask(self, shape):
        return ~regions.centred_box(shape, self.height, self.width)


@attrs.define
class DynamicInpainting(MovingRegionTask):
    """IPD: everything but a vertically centred box moving across the frame is given."""

    name: ClassVar[str] = "ipd"
    height: float = attrs.field(default=0.5, validator=fraction)
    width: float = attrs.field(default=0.5, validator=fraction)
    direction: regions.Direction = "left_to_right"
    padding: PaddingComponent = padding("zero")

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


@hookimpl
def magvit_register_tasks(registry):
    for task in BUILTIN_TASKS:
        registry.add(task.name, task)
