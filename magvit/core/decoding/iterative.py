"""The parallel decoding loop shared by COMMIT and MaskGIT (SPEC §4, paper Algorithm 1).

Each of the K steps predicts every unknown position at once, keeps the most confident samples
and re-masks the rest, fewer each step as the schedule `gamma` decreases. Re-masked positions
show `fill`: the condition token z̃ inside the condition region, [MASK] elsewhere. The two
decoders differ only in which positions start unknown and in the count the schedule scales.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from magvit.core.decoding.checks import guided_logits
from magvit.core.decoding.sampling import (
    gumbel_noise,
    num_to_remask,
    sample_tokens,
)
from magvit.core.masking import lowest_scores_mask
from magvit.errors import MagvitError

Schedule = Callable[[torch.Tensor], torch.Tensor]


def iterative_decode(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    tokens: torch.Tensor,
    unknown: torch.Tensor,
    fill: torch.Tensor,
    total: torch.Tensor,
    *,
    steps: int,
    gamma: Schedule,
    temperature: float,
    top_k: int,
    codebook_size: int,
    mask_id: int,
    guidance_scale: float = 0.0,
    uncond_logits_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Decode `unknown (B, N)` positions of `tokens (B, N)` in `steps` steps.

    `tokens` holds the known tokens and, at unknown positions, `fill`. `total (B,)` is the
    token count that the mask ratio multiplies. Returns the last step's samples, codebook ids.
    """
    for step in tqdm(range(steps), desc="decoding", unit="step", disable=not progress):
        where = f"decoding step {step + 1}/{steps}"
        uncond_tokens = torch.where(unknown, mask_id, tokens)  # no z̃ in the unconditional pass
        logits = guided_logits(logits_fn, tokens, codebook_size, where, guidance_scale,
                               uncond_logits_fn, uncond_tokens)
        log_probs = torch.log_softmax(logits, dim=-1)  # same softmax as the logits', computed once
        sampled = torch.where(unknown, sample_tokens(log_probs, generator, top_k=top_k, rows=unknown), tokens)
        if step == steps - 1:
            return sampled

        progress_t = torch.tensor((step + 1) / steps, dtype=torch.float32)
        ratio = torch.as_tensor(gamma(progress_t), dtype=torch.float32)
        if torch.isnan(ratio).any():
            raise MagvitError(f"{where}: the mask schedule returned NaN for progress "
                              f"{float(progress_t)}; check the schedule's config")
        n = num_to_remask(total, ratio.to(tokens.device), unknown.sum(dim=-1))

        noise = gumbel_noise(logits.shape[:-1], generator, logits.device)
        confidence = log_probs.gather(-1, sampled.unsqueeze(-1)).squeeze(-1)
        scores = confidence + temperature * (1 - progress_t) * noise
        scores = scores.masked_fill(~unknown, float("inf"))
        unknown = lowest_scores_mask(scores, n)  # exactly n, ties to the lower index
        tokens = torch.where(unknown, fill, sampled)
    return tokens  # steps == 0 cannot happen: the decoders require steps >= 1
