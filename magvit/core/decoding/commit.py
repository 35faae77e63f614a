"""COMMIT decoding (paper Algorithm 1): condition tokens are a starting point, refined too.

Every position starts unknown; condition positions show z̃ and the rest [MASK]. The schedule
counts all N tokens, and the output is the last step's samples, so the condition region is
re-predicted like everything else.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from magvit.core.decoding.checks import check_condition, check_guidance
from magvit.core.decoding.iterative import Schedule, iterative_decode


def commit_decode(
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
    """`(B, N)` codebook ids generated from `cond_tokens` where `cond_mask` is True."""
    check_condition(cond_tokens, cond_mask, codebook_size, mask_id)
    check_guidance(guidance_scale, uncond_logits_fn)
    cond_tokens = cond_tokens.long()
    fill = torch.where(cond_mask, cond_tokens, mask_id)
    batch, n = cond_tokens.shape
    return iterative_decode(
        logits_fn, fill, torch.ones_like(cond_mask), fill,
        torch.full((batch,), n, device=cond_tokens.device),
        steps=steps, gamma=gamma, temperature=temperature, top_k=top_k,
        codebook_size=codebook_size, mask_id=mask_id, guidance_scale=guidance_scale,
        uncond_logits_fn=uncond_logits_fn, generator=generator, progress=progress,
    )
