"""Condition regions of the ten tasks as boolean masks over a (T, H, W) grid (True = given).

The same functions place regions on pixel grids and on latent token grids. Sizes are fractions
of the frame, so regions scale with any clip: a centred span of fraction 1/2 is
[S/4, 3S/4) (pixels [32, 96) of 128, tokens [4, 12) of 16). A moving span starts at
round(linspace(0, S - length, T)) in frame t, with numpy's half-to-even rounding like the
authors' release: latent columns 0, 3, 5, 8 for a 4x16x16 grid.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from magvit.errors import MagvitError

Direction = Literal["left_to_right", "right_to_left"]


def span_length(size: int, fraction: float) -> int:
    length = math.floor(size * fraction + 1e-9)
    if not 1 <= length <= size:
        raise MagvitError(
            f"a region of fraction {fraction} of {size} cells is {length} cells; "
            "use a fraction in (0, 1] that covers at least one cell"
        )
    return length


def centred_span(size: int, fraction: float) -> tuple[int, int]:
    length = span_length(size, fraction)
    start = (size - length) // 2
    return start, start + length


def moving_starts(size: int, length: int, frames: int, direction: Direction) -> list[int]:
    """Start of a span of `length` cells sliding across `size` cells over `frames` frames."""
    starts = np.round(np.linspace(0, size - length, frames)).astype(int).tolist()
    return starts if direction == "left_to_right" else [size - length - s for s in starts]


def first_last_frames(shape: tuple[int, int, int], first: int, last: int) -> torch.Tensor:
    frames = shape[0]
    if first + last >= frames:
        raise MagvitError(
            f"{first + last} condition frame(s) leave nothing to generate in a {frames}-frame "
            "clip; give fewer condition frames"
        )
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[:first] = True
    mask[frames - last:] = True
    return mask


def centred_box(shape: tuple[int, int, int], height: float, width: float) -> torch.Tensor:
    """A box of `height` x `width` (fractions) in the frame centre, in every frame."""
    _, rows, cols = shape
    (top, bottom), (left, right) = centred_span(rows, height), centred_span(cols, width)
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[:, top:bottom, left:right] = True
    return mask


def moving_box(shape: tuple[int, int, int], height: float, width: float, direction: Direction) -> torch.Tensor:
    """A vertically centred box of `height` x `width` that slides across the frame over time."""
    frames, rows, cols = shape
    top, bottom = centred_span(rows, height)
    length = span_length(cols, width)
    mask = torch.zeros(shape, dtype=torch.bool)
    for frame, start in enumerate(moving_starts(cols, length, frames, direction)):
        mask[frame, top:bottom, start:start + length] = True
    return mask
