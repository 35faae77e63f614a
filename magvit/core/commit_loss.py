"""The COMMIT training loss (paper Eq. 3/4): weighted cross-entropy over every latent position.

Each example's loss is `Σᵢ CEᵢ·wᵢ / Σᵢ wᵢ` over its N latent tokens, where the weights from
`commit_mask` cover the refine, mask and reconstruct terms alike (or only the masked tokens, for
the MTM ablation). Label smoothing spreads ε of the target mass uniformly over the codebook.
Computed in float32 whatever the autocast dtype. A factorised head's logits (a tuple, one per
codebook factor) give the sum of the digits' cross-entropies: exactly the CE of the code under
the product of their softmaxes, without building the full vocabulary (smoothing is per digit).
"""

from __future__ import annotations

import torch

from magvit.core.losses.smoothed_cross_entropy import smoothed_cross_entropy
from magvit.core.training.precision import full_precision
from magvit.core.transformer.bert import code_digits

LABEL_SMOOTHING = 1e-4


def per_example_commit_loss(
    logits: torch.Tensor | tuple[torch.Tensor, ...],
    targets: torch.Tensor,
    weights: torch.Tensor,
    *,
    label_smoothing: float = LABEL_SMOOTHING,
) -> torch.Tensor:
    """logits (B, N, C) or a tuple of (B, N, K_f), targets (B, N) int, weights (B, N) -> (B,)
    weighted mean CE per example."""
    parts = tuple(logits) if isinstance(logits, (tuple, list)) else (logits,)
    if any(p.shape[:2] != targets.shape for p in parts) or targets.shape != weights.shape:
        raise ValueError(
            f"logits {[tuple(p.shape) for p in parts]}, targets {tuple(targets.shape)} and weights "
            f"{tuple(weights.shape)} must agree on (batch, positions)"
        )
    digits = code_digits(targets, tuple(p.shape[-1] for p in parts)) if len(parts) > 1 else [targets]
    with full_precision(parts[0].device):
        ce = sum(smoothed_cross_entropy(p.flatten(0, 1), d.flatten(), label_smoothing)
                 for p, d in zip(parts, digits)).view(targets.shape)
        weights = weights.float()
        total = weights.sum(dim=1)
        if bool((total <= 0).any()):
            raise ValueError("every example needs at least one position with a positive weight")
        return (ce * weights).sum(dim=1) / total


def commit_loss(logits, targets, weights, *, label_smoothing: float = LABEL_SMOOTHING):
    """The batch mean of `per_example_commit_loss`."""
    return per_example_commit_loss(logits, targets, weights, label_smoothing=label_smoothing).mean()

