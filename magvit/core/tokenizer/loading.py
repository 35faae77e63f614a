"""Loading tokenizer weights: a trained checkpoint, or a 2D-VQ checkpoint inflated to 3D."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from magvit.errors import MagvitError


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise MagvitError(
            f"tokenizer weights in {source} do not fit this model (missing "
            f"{result.missing_keys[:4]}, unexpected {result.unexpected_keys[:4]}); set the "
            "[tokenizer] preset and overrides the checkpoint was trained with"
        )


def load_tokenizer_weights(model: nn.Module, checkpoint: str) -> None:
    """Load a run's weights into `model`, the EMA weights when the checkpoint has them."""
    from magvit.core.training.checkpoint import load_weights

    try:
        load_state(model, load_weights(checkpoint, group="ema", fallback="model"), checkpoint)
    except RuntimeError as exc:  # shape mismatch
        raise MagvitError(
            f"tokenizer weights in {checkpoint} do not fit this model: {str(exc).splitlines()[-1]}; "
            "set the [tokenizer] preset and overrides the checkpoint was trained with"
        ) from None


@torch.no_grad()
def inflate_state(model: nn.Module, state_2d: dict[str, torch.Tensor],
                  inflate: Callable[[torch.Tensor, int], torch.Tensor], source: str) -> None:
    """Copy a 2D-VQ state into a 3D model; conv kernels `(O, I, 1, k, k)` become `(O, I, kT, k, k)`.

    `inflate(weight_2d (O, I, kH, kW), kT)` is an `inflations` plugin (central or average).
    """
    target = model.state_dict()
    state = {}
    for name, value in state_2d.items():
        want = target.get(name)
        if want is not None and value.dim() == 5 and want.shape != value.shape:
            if value.shape[2] != 1 or want.shape[:2] + want.shape[3:] != value.shape[:2] + value.shape[3:]:
                raise MagvitError(
                    f"cannot inflate {name} from {source}: its kernel {tuple(value.shape)} is not "
                    f"the 2D form (O, I, 1, k, k) of {tuple(want.shape)}; train the vq2d model "
                    "with the same preset and overrides"
                )
            value = inflate(value[:, :, 0], want.shape[2])
        state[name] = value
    load_state(model, state, source)
