"""The gradient norm every training step logs, and clipping to `train.grad_clip`."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def grad_norm_of(parameters: Iterable[torch.nn.Parameter], clip: float = 0.0) -> float:
    """The total L2 norm of the gradients (before clipping); with `clip > 0` they are scaled down
    to a norm of at most `clip`. Scaling by 1.0 (no clipping) leaves them bit for bit."""
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    return float(torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf")))
