"""Read a clip's likely classes from the pixels a task gives, for the class search.

The transformer sees a condition only through the tokenizer's tokens, and those may drop what
tells the classes apart (on the synthetic clips one frame's tokens keep the shape kind in about a
third of the clips, where the frame's pixels keep it in all of them). A class reader is a small
classifier of frames (`magvit.core.shape_classifier.ShapeClassifier`, trained on the training
split's clean frames) that reads the class from the given pixels themselves; the class search then
tries only its most likely classes instead of every class. It reads the condition, never a ground
truth. fp32 throughout.
"""

from __future__ import annotations

import torch
from torch import nn

from magvit.errors import MagvitError


def given_frames(padded: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
    """The frames of `padded (B, 3, T, H, W)` whose every pixel `pixel_mask (T, H, W)` gives
    (FP: the first frame); all frames when none is whole (the padded clip then stands in)."""
    whole = pixel_mask.flatten(1).all(dim=1).to(padded.device)       # (T,)
    return padded[:, :, whole] if bool(whole.any()) else padded


@torch.no_grad()
def likely_classes(reader: nn.Module, padded: torch.Tensor, pixel_mask: torch.Tensor, count: int) -> torch.Tensor:
    """`(B, count)` int64: each clip's `count` most likely classes by `reader` (most likely first;
    ties go to the lower class), read from the wholly given frames of `padded` (`given_frames`)."""
    classes = reader.num_classes
    if not 1 <= count <= classes:
        raise MagvitError(f"the class reader has {classes} classes; cannot read the {count} most likely")
    was_training = reader.training
    reader.eval()
    try:
        with torch.autocast(padded.device.type, enabled=False):
            logits = reader(given_frames(padded, pixel_mask).float()).float()     # (B, classes)
    finally:
        reader.train(was_training)
    if not bool(torch.isfinite(logits).all()):
        raise MagvitError("the class reader's scores are not finite; its weights or the given pixels hold NaN")
    # a stable sort, so equal scores keep class order
    return torch.sort(logits, dim=1, descending=True, stable=True).indices[:, :count]
