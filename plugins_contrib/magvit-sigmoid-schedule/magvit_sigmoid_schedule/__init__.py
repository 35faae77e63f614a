"""A sigmoid mask schedule, registered through magvit's `magvit_register_schedules` hook.

Written against `magvit.api`, the one module a plugin imports from magvit.
"""

from __future__ import annotations

import attrs
import torch

from magvit import api


@attrs.define
class Sigmoid:
    """gamma(r) = (s(r) - s(1)) / (s(0) - s(1)) with s(r) = sigmoid(sharpness * (0.5 - r))."""

    sharpness: float = attrs.field(default=10.0, validator=api.positive)

    def __call__(self, r):
        s = torch.sigmoid(self.sharpness * (0.5 - api.as_progress(r)))  # float32, like every schedule
        s0, s1 = torch.sigmoid(torch.tensor([0.5, -0.5]) * self.sharpness)
        return api.ratio_like((s - s1) / (s0 - s1), r)  # clipped to [1e-6, 1]; a float for a float


@api.hookimpl
def magvit_register_schedules(registry):
    registry.add("sigmoid", Sigmoid)
