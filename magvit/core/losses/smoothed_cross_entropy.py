"""Label-smoothed cross-entropy with a one-pass backward, for stage 2's wide output head.

The same value as `F.cross_entropy(logits, targets, reduction="none", label_smoothing=eps)`:
with the target mass (1 - eps) on the true code and eps / C spread over all C codes,

    CE = -(1 - eps) log p_target - (eps / C) Σ_c log p_c,   p = softmax(z),
    dCE/dz = p - (1 - eps) onehot(target) - eps / C.

Why not torch's: autograd builds that gradient from separate pieces (the log-softmax backward,
the smoothing term's broadcast, the NLL's zero-filled scatter, their sum), each a full pass over
the (positions, codes) logits. With the tiny transformer's 4,375 codes those passes were a third
of a CPU training step; here the backward writes the gradient in place in one buffer. Always
computed in fp32 (fp64 for fp64 logits) whatever the logits' dtype; the gradient is returned in the logits' dtype.
"""

from __future__ import annotations

import torch


class _SmoothedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, eps: float) -> torch.Tensor:
        compute = torch.promote_types(logits.dtype, torch.float32)  # fp32, or fp64 for fp64
        log_probs = torch.log_softmax(logits.to(compute), dim=-1)  # (N, C)
        loss = -(1.0 - eps) * log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
        if eps:
            loss = loss - (eps / log_probs.shape[-1]) * log_probs.sum(dim=-1)
        ctx.save_for_backward(log_probs, targets)
        ctx.eps, ctx.dtype = eps, logits.dtype
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        log_probs, targets = ctx.saved_tensors
        eps = ctx.eps
        out = log_probs.exp()  # softmax(z), a fresh buffer the rest of the gradient is written into
        if eps:
            out.sub_(eps / out.shape[-1])
        out.scatter_add_(1, targets.unsqueeze(1), out.new_full((len(targets), 1), -(1.0 - eps)))
        out.mul_(grad.to(out.dtype).unsqueeze(1))
        return out.to(ctx.dtype), None, None


def smoothed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                           label_smoothing: float = 0.0) -> torch.Tensor:
    """(N, C) logits, (N,) int targets -> (N,) fp32 (fp64 for fp64 logits) per-position label-smoothed cross-entropy."""
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(
            f"logits must be (N, C) and targets (N,), got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if targets.numel():
        low, high = (int(v) for v in targets.aminmax())
        if low < 0 or high >= logits.shape[1]:
            raise ValueError(f"targets must lie in [0, {logits.shape[1]}), got values from {low} to {high}")
    return _SmoothedCrossEntropy.apply(logits, targets.long(), float(label_smoothing))
