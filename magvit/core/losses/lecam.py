"""LeCam regularization (Tseng et al. 2021): keep discriminator logits near each other's EMA.

`relu(real - ema_fake)² + relu(ema_real - fake)²` on the mean real and fake logits, where the
EMAs track the mean logits over training (paper: on; authors' release: off by default).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def lecam_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor, ema_real: torch.Tensor,
               ema_fake: torch.Tensor) -> torch.Tensor:
    real_pred, fake_pred = real_pred.float(), fake_pred.float()
    return (F.relu(real_pred - ema_fake).pow(2).mean() + F.relu(ema_real - fake_pred).pow(2).mean())


class LeCam(nn.Module):
    """The regularizer with its EMA state (buffers, so checkpoints and DDP carry them)."""

    def __init__(self, decay: float = 0.999):
        super().__init__()
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))

    def forward(self, real_logits: torch.Tensor, fake_logits: torch.Tensor,
                across_ranks: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """The loss on this batch; the EMAs follow the mean over `across_ranks` (DDP) if given."""
        real, fake = real_logits.float().mean(), fake_logits.float().mean()
        with torch.no_grad():
            means = torch.stack([real, fake]).detach()
            if across_ranks is not None:
                means = across_ranks(means)
            self.ema_real.lerp_(means[0], 1 - self.decay)
            self.ema_fake.lerp_(means[1], 1 - self.decay)
        return lecam_loss(real, fake, self.ema_real, self.ema_fake)
