"""The `rewind` task: the last frames are given, the earlier ones are generated."""

from __future__ import annotations

from typing import ClassVar

import attrs

import magvit
from magvit.core import regions
from magvit.plugins.paddings import Edge
from magvit.plugins.tasks import PaddingComponent, Task, at_least, padding


@attrs.define
class Rewind(Task):
    """Backward frame prediction: condition on the last `cond_frames` frames."""

    name: ClassVar[str] = "rewind"
    cond_frames: int = attrs.field(default=1, validator=at_least(1))
    padding: PaddingComponent = padding("edge", Edge)

    def pixel_mask(self, shape):
        return regions.first_last_frames(shape, 0, self.cond_frames)


@magvit.hookimpl
def magvit_register_tasks(registry):
    registry.add("rewind", Rewind)
