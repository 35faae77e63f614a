"""A sigmoid mask schedule, registered through magvit's `magvit_register_schedules` hook."""

from __future__ import annotations

import math

import attrs
import torch

import magvit


@attrs.define
class Sigmoid:
    """gamma(r) = (s(r) - s(1)) / (s(0) - s(1)) with s(r) = sigmoid(sharpness * (0.5 - r))."""

    sharpness: float = attrs.field(default=10.0)

    @sharpness.validator
    def _positive(self, _attribute, value):
        if value <= 0:
            raise ValueError(f"sharpness must be > 0, got {value}")

    def __call__(self, r):
        tensor = torch.as_tensor(r, dtype=torch.float32)
        s = torch.sigmoid(self.sharpness * (0.5 - tensor))
        s0, s1 = (1 / (1 + math.exp(-self.sharpness * v)) for v in (0.5, -0.5))
        ratio = ((s - s1) / (s0 - s1)).clamp(1e-6, 1.0)
        return ratio if isinstance(r, torch.Tensor) else float(ratio)


@magvit.hookimpl
def magvit_register_schedules(registry):
    registry.add("sigmoid", Sigmoid)
