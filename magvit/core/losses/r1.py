"""R1 gradient penalty: `cost · E[|∇ₓ D(x)|²]` on real clips (cost 10 in the paper)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def r1_penalty(discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
               cost: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(penalty, real logits): one discriminator pass serves both the penalty and the loss."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(real)
    (grad,) = torch.autograd.grad(logits.float().sum(), real, create_graph=True)
    return cost * grad.float().pow(2).flatten(1).sum(1).mean(), logits
