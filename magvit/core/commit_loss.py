"""The COMMIT training loss (paper Eq. 3/4): weighted cross-entropy over every latent position.

Each example's loss is `Σᵢ CEᵢ·wᵢ / Σᵢ wᵢ` over its N latent tokens, where the weights from
`commit_mask` cover the refine, mask and reconstruct terms alike (or only the masked tokens, for
the MTM ablation). Label smoothing spreads ε of the target mass uniformly over the codebook.
Computed in float32 whatever the autocast dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from magvit.core.training.precision import full_precision

LABEL_SMOOTHING = 1e-4


def per_example_commit_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    *,
    label_smoothing: float = LABEL_SMOOTHING,
) -> torch.Tensor:
    """logits (B, N, C), targets (B, N) int, weights (B, N) -> (B,) weighted mean CE per example."""
    if logits.shape[:2] != targets.shape or targets.shape != weights.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)}, targets {tuple(targets.shape)} and weights "
            f"{tuple(weights.shape)} must agree on (batch, positions)"
        )
    with full_precision(logits.device):
        ce = F.cross_entropy(
            logits.float().flatten(0, 1), targets.flatten(), reduction="none",
            label_smoothing=label_smoothing,
        ).view(targets.shape)
        weights = weights.float()
        total = weights.sum(dim=1)
        if bool((total <= 0).any()):
            raise ValueError("every example needs at least one position with a positive weight")
        return (ce * weights).sum(dim=1) / total


def commit_loss(logits, targets, weights, *, label_smoothing: float = LABEL_SMOOTHING):
    """The batch mean of `per_example_commit_loss`."""
    return per_example_commit_loss(logits, targets, weights, label_smoothing=label_smoothing).mean()

