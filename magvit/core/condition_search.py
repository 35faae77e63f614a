"""Keep, of several generated candidates per clip, the one that best reproduces the given pixels.

A task's condition video shows pixels the model must keep; the transformer sees them only
through the tokenizer's tokens, which may drop what decides the rest of the clip (on the
synthetic clips, one frame's tokens lose the shape kind, and the kind fixes the direction of
motion). The decoder draws every pixel from the tokens around it, so a candidate whose generated
tokens continue the clip the wrong way also redraws the given pixels less faithfully. Scoring
candidates by their mean squared error over the given pixels therefore reads the missing
information back from the condition, and never from a ground truth. fp32 throughout.
"""

from __future__ import annotations

import torch

from magvit.errors import MagvitError


def given_pixel_error(video: torch.Tensor, condition: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
    """`(B,)` fp32: the mean squared error of `video (B, 3, T, H, W)` against `condition` over
    the pixels where `pixel_mask (T, H, W)` holds."""
    given = pixel_mask.to(video.device)
    if not bool(given.any()):
        raise MagvitError("the task gives no pixels, so there is nothing to score candidates by")
    diff = (video.float() - condition.float().to(video.device)) ** 2   # (B, 3, T, H, W)
    return diff[:, :, given].mean(dim=(1, 2))                          # (B, 3, given) -> (B,)


def best_candidates(errors: torch.Tensor) -> torch.Tensor:
    """`(B,)` the index of the lowest error in each row of `errors (B, N)`; ties go to the
    first. A NaN error is refused rather than ranked (it would win or lose by accident)."""
    if errors.dim() != 2 or errors.shape[1] < 1:
        raise MagvitError(f"expected errors shaped (clips, candidates), got {tuple(errors.shape)}")
    if not bool(torch.isfinite(errors).all()):
        raise MagvitError("a candidate's error over the given pixels is not finite; the decoded "
                          "candidates hold NaN or infinite pixels")
    return errors.argmin(dim=1)
