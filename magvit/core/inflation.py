"""Inflating 2D conv kernels (and whole 2D tokenizer checkpoints) to 3D (paper §3.1).

central: the 2D kernel in the temporal centre slice of a zero 3D kernel; average: the 2D kernel
divided by kT in every slice. Both give the 2D layer's output on a video that does not move.
Layouts are PyTorch's: (O, I, kH, kW) -> (O, I, kT, kH, kW).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch

from magvit.errors import MagvitError

Inflate = Callable[[torch.Tensor, int], torch.Tensor]


def check_kernel(weight: torch.Tensor, kt: int) -> None:
    if weight.dim() != 4 or kt < 1:
        raise MagvitError(
            f"inflation needs a 2D conv weight (O, I, kH, kW) and kT >= 1, got "
            f"{tuple(weight.shape)} and kT={kt}"
        )


def inflate_central(weight: torch.Tensor, kt: int) -> torch.Tensor:
    check_kernel(weight, kt)
    out = weight.new_zeros(*weight.shape[:2], kt, *weight.shape[2:])
    out[:, :, kt // 2] = weight
    return out


def inflate_average(weight: torch.Tensor, kt: int) -> torch.Tensor:
    check_kernel(weight, kt)
    return (weight / kt).unsqueeze(2).expand(-1, -1, kt, -1, -1).contiguous()


@attrs.define
class InflationReport:
    """What `inflate_state_dict` did with each parameter, by name."""

    inflated: list[str] = attrs.Factory(list)
    copied: list[str] = attrs.Factory(list)
    mismatched: dict[str, str] = attrs.Factory(dict)  # name -> "2D shape vs 3D shape"
    missing: list[str] = attrs.Factory(list)  # in the 3D model only: left as initialised
    unused: list[str] = attrs.Factory(list)  # in the 2D checkpoint only

    @property
    def complete(self) -> bool:
        """Every 3D parameter came from the 2D checkpoint."""
        return not (self.mismatched or self.missing)

    def __str__(self) -> str:
        lines = [f"inflated {len(self.inflated)}, copied {len(self.copied)}"]
        lines += [f"  shape mismatch: {name} ({why})" for name, why in self.mismatched.items()]
        lines += [f"  not in the 2D checkpoint: {name}" for name in self.missing]
        lines += [f"  unused from the 2D checkpoint: {name}" for name in self.unused]
        return "\n".join(lines)


def inflate_state_dict(
    state_2d: dict[str, torch.Tensor],
    target_3d_state: dict[str, torch.Tensor],
    inflate: Inflate | None = None,
) -> tuple[dict[str, torch.Tensor], InflationReport]:
    """A 3D state dict filled from a 2D one.

    Parameters with equal names and shapes are copied; a 2D kernel (O, I, kH, kW) whose 3D
    counterpart is (O, I, kT, kH, kW) is inflated with `inflate` (a function `(weight, kT) ->
    weight`, such as an `inflations` plugin; default: central); everything else keeps the target's value
    and is listed in the report.
    """
    inflate = inflate or inflate_central
    report = InflationReport()
    state_3d = {name: value.clone() for name, value in target_3d_state.items()}
    for name, target in target_3d_state.items():
        source = state_2d.get(name)
        if source is None:
            report.missing.append(name)
        elif source.shape == target.shape:
            state_3d[name] = source.detach().clone().to(target.dtype)
            report.copied.append(name)
        elif source.dim() == 4 and target.dim() == 5 and target.shape[:2] + target.shape[3:] == source.shape:
            state_3d[name] = inflate(source.detach(), target.shape[2]).to(target.dtype)
            report.inflated.append(name)
        else:
            report.mismatched[name] = f"{tuple(source.shape)} vs {tuple(target.shape)}"
    report.unused = [name for name in state_2d if name not in target_3d_state]
    return state_3d, report
