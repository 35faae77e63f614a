"""The `rewind` task: the last frames are given, the earlier ones are generated.

Written against `magvit.api`, the one module a plugin imports from magvit.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from magvit import api


@attrs.define
class Rewind(api.Task):
    """Backward frame prediction: condition on the last `cond_frames` frames."""

    name: ClassVar[str] = "rewind"
    cond_frames: int = attrs.field(default=1, validator=api.at_least(1))
    padding: api.PaddingComponent = api.padding("edge")

    def pixel_mask(self, shape):
        return api.regions.first_last_frames(shape, 0, self.cond_frames)


@api.hookimpl
def magvit_register_tasks(registry):
    registry.add("rewind", Rewind)
