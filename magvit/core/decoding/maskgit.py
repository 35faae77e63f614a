"""MaskGIT decoding with latent masking (paper Table 6 baseline).

Condition tokens are given as they are: known from the start, never re-masked and never
refined. Only the other positions are generated, and the schedule counts only them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from magvit.core.decoding.checks import check_condition, check_guidance
from magvit.core.decoding.iterative import Schedule, iterative_decode


def maskgit_decode(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    cond_tokens: torch.Tensor,
    cond_mask: torch.Tensor,
    *,
    steps: int = 12,
    gamma: Schedule,
    temperature: float = 4.5,
    top_k: int = 0,
    guidance_scale: float = 0.0,
    codebook_size: int = 1024,
    mask_id: int = 1024,
    generator: torch.Generator | None = None,
    uncond_logits_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """`(B, N)` codebook ids: `cond_tokens` where `cond_mask`, generated elsewhere."""
    check_condition(cond_tokens, cond_mask, codebook_size, mask_id)
    check_guidance(guidance_scale, uncond_logits_fn)
    cond_tokens = cond_tokens.long()
    unknown = ~cond_mask
    tokens = torch.where(unknown, mask_id, cond_tokens)
    return iterative_decode(
        logits_fn, tokens, unknown, torch.full_like(tokens, mask_id), unknown.sum(dim=-1),
        steps=steps, gamma=gamma, temperature=temperature, top_k=top_k,
        codebook_size=codebook_size, mask_id=mask_id, guidance_scale=guidance_scale,
        uncond_logits_fn=uncond_logits_fn, generator=generator, progress=progress,
    )
