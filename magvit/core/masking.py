"""COMMIT masking (paper Eq. 2-4): which tokens are masked, what they become, and the loss weights.

A masked token becomes its condition token z~ where the task's latent condition mask is True and
[MASK] elsewhere; an unmasked token keeps its target z. The count rule is the release's:
n = clip(floor(N * clip(ratio, 1e-6, 1)), lower, upper), computed in float32. Exactly n tokens
are masked per example: the n lowest scores, ties broken by position (the release's
`score <= cutoff` would mask every tied token).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch

from magvit.errors import MagvitError

MIN_RATIO = 1e-6
LOSS_TERMS = ("mask", "refine", "recons")


def latent_mask_from_pixels(pixel_mask: torch.Tensor, factors: tuple[int, int, int],
                            causal: bool = False) -> torch.Tensor:
    """(T, H, W) bool -> (T/ft, H/fh, W/fw) bool: True where the token's supervoxel holds any
    condition pixel. For a causal tokenizer (T = 1 + k·ft) the first latent frame is the first
    frame alone and the others cover ft frames each: (1 + k, H/fh, W/fw)."""
    if pixel_mask.dim() != 3:
        raise MagvitError(f"pixel mask must be (T, H, W), got shape {tuple(pixel_mask.shape)}")
    if causal and factors[0] > 1:  # as if the first frame were repeated ft - 1 times before it
        first = pixel_mask[:1].expand(factors[0] - 1, -1, -1)
        pixel_mask = torch.cat([first, pixel_mask])
    (T, H, W), (ft, fh, fw) = pixel_mask.shape, factors
    if T % ft or H % fh or W % fw:
        raise MagvitError(
            f"clip size {T}x{H}x{W} is not divisible by the tokenizer factors {tuple(factors)}; "
            "choose frames and resolution that are multiples of them"
        )
    blocks = pixel_mask.reshape(T // ft, ft, H // fh, fh, W // fw, fw)
    return blocks.any(dim=5).any(dim=3).any(dim=1)


def num_masked(n_total: int, ratio, lower: int = 1, upper=None):
    """How many of `n_total` tokens a mask ratio masks: clip(floor(N * ratio), lower, upper).

    `ratio` is a float or a tensor (then the result is an int64 tensor); `upper` (default
    `n_total`) may be a per-example tensor. The product is taken in float32 like the release.
    """
    r = torch.as_tensor(ratio, dtype=torch.float32)
    if not torch.isfinite(r).all():
        raise ValueError(f"mask ratio must be finite, got {ratio}")
    n = torch.floor(torch.tensor(float(n_total)) * r.clamp(MIN_RATIO, 1.0)).long()
    upper = n_total if upper is None else upper
    n = torch.minimum(n.clamp_min(lower), torch.as_tensor(upper, dtype=torch.long))
    return n if isinstance(ratio, torch.Tensor) else int(n)


def sample_mask_ratio(
    batch: int, schedule: Callable, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-example training mask ratio gamma(U[0, 1)), float32 of shape (batch,)."""
    progress = torch.rand(batch, generator=generator, dtype=torch.float32)
    return schedule(progress)


@attrs.frozen
class CommitBatch:
    """One COMMIT-corrupted batch, all (B, N): model inputs, targets, loss weights, and which
    tokens were masked."""

    inputs: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor
    should_mask: torch.Tensor


def lowest_scores_mask(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(B, N) bool: True at each row's `counts[b]` lowest scores, ties broken by position."""
    order = torch.argsort(scores, dim=1, stable=True)
    positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, positions)
    return rank < counts.to(scores.device).view(-1, 1)


def loss_weights(weight_mode: str, should_mask: torch.Tensor, cond_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 4 weights as float32: `weight_mode` joins the terms to train with '+': `mask`
    (masked to [MASK]), `refine` (masked to a condition token), `recons` (unmasked)."""
    terms = weight_mode.split("+")
    unknown = sorted(set(terms) - set(LOSS_TERMS))
    if unknown or not terms:
        raise MagvitError(
            f"weight_mode {weight_mode!r} has unknown term(s) {unknown}; join terms from "
            f"{', '.join(LOSS_TERMS)} with '+', e.g. 'mask+refine+recons'"
        )
    selected = {
        "mask": should_mask & ~cond_mask,
        "refine": should_mask & cond_mask,
        "recons": ~should_mask,
    }
    weights = torch.zeros(should_mask.shape, dtype=torch.bool, device=should_mask.device)
    for term in terms:
        weights = weights | selected[term]
    return weights.float()


def commit_mask(
    tokens: torch.Tensor,
    cond_tokens: torch.Tensor,
    cond_mask: torch.Tensor,
    ratio,
    *,
    mask_id: int,
    scores: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    weight_mode: str = "mask+refine+recons",
    upper_limit=None,
) -> CommitBatch:
    """Corrupt target tokens (B, N) with the COMMIT mask of Eq. 2.

    `cond_mask` (B, N) bool (or broadcastable) marks tokens that get z~ when masked. `ratio` is
    the mask ratio per example (B,) or one shared float. `scores` (B, N) make the mask
    deterministic; otherwise they are drawn U[0, 1) from `generator`. `upper_limit` caps the
    masked count (int or (B,)).
    """
    if tokens.dim() != 2 or cond_tokens.shape != tokens.shape:
        raise MagvitError(
            f"tokens and cond_tokens must both be (B, N), got {tuple(tokens.shape)} and "
            f"{tuple(cond_tokens.shape)}"
        )
    batch, n_total = tokens.shape
    if scores is None:
        scores = torch.rand(batch, n_total, generator=generator).to(tokens.device)
    counts = num_masked(n_total, torch.as_tensor(ratio, dtype=torch.float32), 1, upper_limit)
    if counts.numel() not in (1, batch):
        raise MagvitError(f"ratio and upper_limit need 1 or {batch} values, got {counts.numel()}")
    should_mask = lowest_scores_mask(scores, counts.reshape(-1).expand(batch))
    cond_mask = cond_mask.to(torch.bool).expand_as(tokens)
    masked_value = torch.where(cond_mask, cond_tokens, torch.full_like(tokens, mask_id))
    inputs = torch.where(should_mask, masked_value, tokens)
    weights = loss_weights(weight_mode, should_mask, cond_mask)
    return CommitBatch(inputs=inputs, targets=tokens, weights=weights, should_mask=should_mask)
