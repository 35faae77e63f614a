"""Fit generated tokens to the pixels a task was given, through the tokenizer's decoder.

The transformer picks tokens; the decoder draws every pixel from a neighbourhood of them, so a
generated token beside the given region changes given pixels too, and the padded clip's own
tokens z̃ are only the encoder's guess. This moves the code vectors of the whole grid for
`steps` Adam steps, starting from the generated tokens, to lower

    mean over the given pixels of (decoded - given)^2
        + anchor * mean over the other pixels of (decoded - first decode)^2

per clip, then snaps every position to its nearest code. The first term keeps what the task gave;
the second keeps what the transformer generated where nothing was given. A clip keeps its
original tokens unless the snapped ones lower that objective, so the fit never makes one worse.
It reads only the given pixels of `condition` (the padded clip the model was shown), never a
ground truth. Autograd runs on the decoder alone, under the caller's autocast; the objective is
fp32.
"""

from __future__ import annotations

import torch

from magvit.errors import MagvitError

STEPS = 10  # what `Pipeline` runs by default: 2 s for 16 clips of the default model on 2 cores
LR = 0.1  # Adam's step in code-vector units (FSQ levels lie 0.25 to 0.5 apart in [-1, 1])
ANCHOR = 1.0


def can_fit(tokenizer) -> bool:
    """Whether `tokenizer` has the latent path the fit needs: `decode_latent` and a quantizer
    with `lookup`, `nearest_codes` and `code_bounds` (`magvit.core.tokenizer.quantizer.Quantizer`
    gives every subclass the last two)."""
    quantizer = getattr(tokenizer, "quantizer", None)
    return callable(getattr(tokenizer, "decode_latent", None)) and all(
        callable(getattr(quantizer, name, None)) for name in ("lookup", "nearest_codes", "code_bounds"))


def _objective(decoded, condition, given, anchor_video, anchor):
    """Per clip `(B,)` fp32: given-pixel MSE + anchor * MSE to `anchor_video` elsewhere."""
    decoded, given = decoded.float(), given.expand_as(decoded)
    free = ~given
    kept = ((decoded - condition) ** 2 * given).flatten(1).sum(1) / given.flatten(1).sum(1).clamp(min=1)
    held = ((decoded - anchor_video) ** 2 * free).flatten(1).sum(1) / free.flatten(1).sum(1).clamp(min=1)
    return kept + anchor * held


def fit_to_condition(tokenizer, tokens: torch.Tensor, condition: torch.Tensor, pixel_mask: torch.Tensor, *,
                     steps: int = STEPS, lr: float = LR, anchor: float = ANCHOR) -> tuple[torch.Tensor, torch.Tensor]:
    """`tokens (B, t, h, w)` fitted to `condition (B, 3, T, H, W)` where `pixel_mask (T, H, W)`
    is True: the fitted tokens and their decoded video `(B, 3, T, H, W)` fp32 in [0, 1]. Runs
    under `torch.inference_mode` too (it leaves it for the decoder's gradients)."""
    if steps < 0:
        raise MagvitError(f"refine steps must be at least 0, got {steps}")
    if not can_fit(tokenizer):
        raise MagvitError(f"{type(tokenizer).__name__} has no latent path to refine through (decode_latent and a "
                          f"quantizer with lookup, nearest_codes and code_bounds); set refine steps to 0")
    quantizer = tokenizer.quantizer
    with torch.inference_mode(False), torch.enable_grad():
        tokens, condition = tokens.clone(), condition.clone().float()   # inference tensors -> normal ones
        given = pixel_mask.to(condition.device).clone()[None, None]     # (1, 1, T, H, W)
        start = quantizer.lookup(tokens).float().detach()               # (B, dim, t, h, w)
        with torch.no_grad():
            first = tokenizer.decode_latent(start).float().clone()  # a CUDA graph replay reuses its output
        low, high = (bound.float().to(start.device).view(1, -1, 1, 1, 1) for bound in quantizer.code_bounds())
        vectors = start.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([vectors], lr=lr)
        for _ in range(steps):
            loss = _objective(tokenizer.decode_latent(vectors), condition, given, first, anchor).sum()
            if not torch.isfinite(loss):
                raise MagvitError("the condition fit reached a non-finite loss; set refine steps to 0 "
                                  "(or check the tokenizer's weights)")
            (vectors.grad,) = torch.autograd.grad(loss, [vectors])
            optimizer.step()
            with torch.no_grad():
                vectors.clamp_(low, high)   # inside the codebook's box, where snapping loses least
        with torch.no_grad():
            fitted = quantizer.nearest_codes(vectors.detach())
            video = tokenizer.decode_latent(quantizer.lookup(fitted)).float()
            better = (_objective(video, condition, given, first, anchor)
                      < _objective(first, condition, given, first, anchor))   # (B,)
            tokens = torch.where(better[:, None, None, None], fitted, tokens)
            video = torch.where(better[:, None, None, None, None], video, first)
    return tokens, video.clamp(0, 1)
