"""Built-in 2D -> 3D kernel inflations: `inflate(weight (O, I, kH, kW), kt) -> (O, I, kT, kH, kW)`."""

from __future__ import annotations

import attrs
import torch

from magvit.api import hookimpl
from magvit.core.inflation import inflate_average, inflate_central


@attrs.define
class Central:
    """The 2D kernel in the temporal centre slice, zeros elsewhere."""

    def __call__(self, weight: torch.Tensor, kt: int) -> torch.Tensor:
        return inflate_central(weight, kt)


@attrs.define
class Average:
    """The 2D kernel divided by kT, in every temporal slice."""

    def __call__(self, weight: torch.Tensor, kt: int) -> torch.Tensor:
        return inflate_average(weight, kt)


@hookimpl
def magvit_register_inflations(registry):
    registry.add("central", Central)
    registry.add("average", Average)
