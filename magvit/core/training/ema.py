"""Exponential moving average of a model's weights (the tokenizer ships its EMA weights)."""

from __future__ import annotations

import torch
from torch import nn

from magvit.core.training.distributed import unwrap
from magvit.errors import MagvitError


class EMA:
    """An fp32 shadow of every parameter, `shadow = decay * shadow + (1 - decay) * param`.

    Buffers (norm statistics, counters) are copied as they are, not averaged. `state_dict()`
    has the model's own keys, tied weights included, so it loads straight into the model.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise MagvitError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow: dict[str, torch.Tensor] = {}
        self._is_param: dict[str, bool] = {}
        shared: dict[int, torch.Tensor] = {}  # tied parameters share one shadow tensor
        for name, value in unwrap(model).state_dict(keep_vars=True).items():
            is_param = isinstance(value, nn.Parameter) and value.is_floating_point()
            self._is_param[name] = is_param
            if is_param and id(value) in shared:
                self.shadow[name] = shared[id(value)]
                continue
            copy = value.detach().clone()
            self.shadow[name] = copy.float() if is_param else copy
            if is_param:
                shared[id(value)] = self.shadow[name]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        done: set[int] = set()
        for name, value in unwrap(model).state_dict(keep_vars=True).items():
            target = self.shadow[name]
            if id(target) in done:
                continue
            done.add(id(target))
            if self._is_param[name]:
                target.lerp_(value.detach().float(), 1.0 - self.decay)
            else:
                target.copy_(value.detach())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        unexpected = sorted(set(state) - set(self.shadow))
        if missing or unexpected:
            raise MagvitError(
                f"EMA weights do not match the model: missing {missing[:5]}, unexpected "
                f"{unexpected[:5]}; was the checkpoint made with a different model config?"
            )
        for name, value in state.items():
            self.shadow[name].copy_(value)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's weights with the averaged ones (cast to the model's dtypes)."""
        unwrap(model).load_state_dict(self.shadow)

    def to(self, device: torch.device | str) -> EMA:
        moved: dict[int, torch.Tensor] = {}
        for name, value in self.shadow.items():
            if id(value) not in moved:
                moved[id(value)] = value.to(device)
            self.shadow[name] = moved[id(value)]
        return self
