"""The codebook entropy penalty of the quantizer (SPEC §5; authors' `entropy_loss`).

`affinity` is `-distance` to every code. The loss is the mean per-token entropy (each token
should pick one code confidently) minus the entropy of the average assignment (the batch should
spread over many codes), so minimising it fights codebook collapse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def separated_entropy(affinity: torch.Tensor, temperature: float = 0.01,
                      loss_type: str = "softmax") -> tuple[torch.Tensor, torch.Tensor]:
    """(sample_entropy, avg_entropy) of the code assignment, computed in fp32."""
    logits = affinity.float().reshape(-1, affinity.shape[-1]) / temperature
    probs = logits.softmax(-1)
    log_probs = F.log_softmax(logits, -1)
    if loss_type == "argmax":  # hard one-hot forward, softmax gradient
        onehot = F.one_hot(logits.argmax(-1), logits.shape[-1]).to(probs.dtype)
        target = probs + (onehot - probs).detach()
    elif loss_type == "softmax":
        target = probs
    else:
        raise ValueError(f"entropy loss_type must be 'softmax' or 'argmax', got {loss_type!r}")
    avg_probs = target.mean(0)
    avg_entropy = -(avg_probs * torch.log(avg_probs + 1e-5)).sum()
    sample_entropy = -(target * log_probs).sum(-1).mean()
    return sample_entropy, avg_entropy


def entropy_loss(affinity: torch.Tensor, temperature: float = 0.01,
                 loss_type: str = "softmax") -> torch.Tensor:
    sample, avg = separated_entropy(affinity, temperature, loss_type)
    return sample - avg
