"""Input checks shared by the decoders, and the model call with its output checked."""

from __future__ import annotations

from collections.abc import Callable

import torch

from magvit.errors import MagvitError


def check_condition(cond_tokens: torch.Tensor, cond_mask: torch.Tensor, codebook_size: int,
                    mask_id: int) -> None:
    """Shapes, dtypes and id ranges of a decoder's inputs, with a message naming the fix."""
    if cond_tokens.ndim != 2:
        raise MagvitError(
            f"cond_tokens must be a (batch, tokens) grid flattened in raster order, got shape "
            f"{tuple(cond_tokens.shape)}; flatten a (B, t, h, w) grid with .flatten(1)"
        )
    if cond_mask.shape != cond_tokens.shape or cond_mask.dtype != torch.bool:
        raise MagvitError(
            f"cond_mask must be a bool tensor shaped like cond_tokens {tuple(cond_tokens.shape)}, "
            f"got {cond_mask.dtype} {tuple(cond_mask.shape)}"
        )
    if cond_tokens.dtype not in (torch.int64, torch.int32):
        raise MagvitError(f"cond_tokens must hold integer ids, got {cond_tokens.dtype}")
    if mask_id < codebook_size:
        raise MagvitError(
            f"mask_id {mask_id} collides with codebook id range [0, {codebook_size}); "
            f"use an id >= codebook_size (the vocabulary's mask id)"
        )
    given = cond_tokens[cond_mask]
    if given.numel() and (given.min() < 0 or given.max() >= codebook_size):
        raise MagvitError(
            f"condition tokens must be codebook ids in [0, {codebook_size}), got values in "
            f"[{int(given.min())}, {int(given.max())}]; check the tokenizer's codebook_size "
            f"against the decoder's codebook_size"
        )


def check_logits(logits: torch.Tensor, expected: tuple[int, ...], codebook_size: int,
                 where: str) -> torch.Tensor:
    """The logits as float32, after checking their shape and that they hold no NaN."""
    if tuple(logits.shape[:-1]) != expected or logits.shape[-1] != codebook_size:
        raise MagvitError(
            f"{where}: logits_fn returned shape {tuple(logits.shape)}, expected "
            f"{(*expected, codebook_size)} (logits over the codebook only); if the model's "
            f"codebook differs, set the decoder's codebook_size"
        )
    logits = logits.float()
    # max propagates NaN: one reduction, where isnan().any() writes a bool per logit first (5x
    # slower on a CPU at a decoding step's millions of logits)
    if torch.isnan(logits.amax()):
        raise MagvitError(f"{where}: the model returned NaN logits; the checkpoint or its "
                          f"precision is broken (try fp32)")
    return logits


def guided_logits(logits_fn: Callable[[torch.Tensor], torch.Tensor], tokens: torch.Tensor,
                  codebook_size: int, where: str, guidance_scale: float = 0.0,
                  uncond_logits_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  uncond_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """`logits + s * (logits - uncond_logits)` (classifier-free guidance; s = 0: plain logits).
    A logits_fn with `with_unconditional(tokens, uncond_tokens)` gives both in one call."""
    uncond_tokens = tokens if uncond_tokens is None else uncond_tokens
    both = getattr(logits_fn, "with_unconditional", None)
    if guidance_scale != 0 and both is not None:
        logits, uncond = both(tokens, uncond_tokens)
        logits = check_logits(logits, tuple(tokens.shape), codebook_size, where)
    else:
        logits = check_logits(logits_fn(tokens), tuple(tokens.shape), codebook_size, where)
        if guidance_scale == 0:
            return logits
        uncond = uncond_logits_fn(uncond_tokens)
    uncond = check_logits(uncond, tuple(tokens.shape), codebook_size, f"{where} (unconditional)")
    return logits + guidance_scale * (logits - uncond)


def check_guidance(guidance_scale: float, uncond_logits_fn: object) -> None:
    if guidance_scale != 0 and uncond_logits_fn is None:
        raise MagvitError(
            f"guidance_scale = {guidance_scale} needs uncond_logits_fn (the model with the "
            f"unconditional class); pass one, or set guidance_scale = 0"
        )
