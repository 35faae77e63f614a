"""Built-in mask schedules: progress r in [0, 1] -> share of tokens to mask, in [1e-6, 1].

Every schedule is evaluated in float32, like the authors' JAX release: with cosine, 12 steps and
1024 tokens the count after step 7 is 511 there (cos(float32(pi/2) * float32(2/3)) = 0.49999997),
not the 512 that float64 gives. The clip to [1e-6, 1] is the release's; read 1e-6 as zero.
`num_tokens` is the N of the log and exp schedules (tokens that can be masked).
"""

from __future__ import annotations

import math

import attrs
import torch

from magvit.api import MIN_RATIO, InvalidValue, as_progress, hookimpl, positive, ratio_like

__all__ = ["MIN_RATIO", "Cosine", "Exp", "Linear", "Log", "Pow"]


@attrs.define
class Cosine:
    def __call__(self, r):
        return ratio_like(torch.cos(as_progress(r) * torch.tensor(math.pi / 2, dtype=torch.float32)), r)


@attrs.define
class Linear:
    """The release's `uniform` schedule: 1 - r."""

    def __call__(self, r):
        return ratio_like(1.0 - as_progress(r), r)


@attrs.define
class Pow:
    """1 - r**power (the release's `pow2`, `pow3`, ...)."""

    power: float = attrs.field(default=2.0, validator=positive)

    def __call__(self, r):
        return ratio_like(1.0 - as_progress(r) ** self.power, r)


def _at_least_two(_instance, attribute, value):
    if value < 2:
        raise InvalidValue(attribute.name, f"must be >= 2 (the number of maskable tokens), got {value}")


@attrs.define
class Log:
    """-log2(r) / log2(N): infinite at r = 0, clipped to 1."""

    num_tokens: int = attrs.field(default=1024, validator=_at_least_two)

    def __call__(self, r):
        log2_n = torch.log2(torch.tensor(float(self.num_tokens)))
        return ratio_like(-torch.log2(as_progress(r)) / log2_n, r)


@attrs.define
class Exp:
    """1 - 2**(-log2(N) * (1 - r)); note gamma(0) = 1 - 1/N, not 1."""

    num_tokens: int = attrs.field(default=1024, validator=_at_least_two)

    def __call__(self, r):
        log2_n = torch.log2(torch.tensor(float(self.num_tokens)))
        return ratio_like(1.0 - torch.exp2(-log2_n * (1.0 - as_progress(r))), r)


@hookimpl
def magvit_register_schedules(registry):
    registry.add("cosine", Cosine)
    registry.add("linear", Linear)
    registry.add("pow", Pow)
    registry.add("log", Log)
    registry.add("exp", Exp)
