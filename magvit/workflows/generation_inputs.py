"""Checks of what a `Pipeline` or a `generate` call is given: numeric options and class
labels. Each refuses what it cannot use exactly (a bool, a float) with a message that names the
option and its range, rather than rounding it."""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from magvit.errors import MagvitError


def whole_number(value: Any, name: str, minimum: int, meaning: str) -> int:
    """`value` when it is an int (not a bool) of at least `minimum`; `meaning` says what it counts."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MagvitError(f"{name} must be a whole number of at least {minimum} ({meaning}), got {value!r}")
    return value


def seed_number(value: Any) -> int:
    """`value` when it is a whole number (not a bool) that a torch generator takes: a 64-bit seed."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not -2**63 <= value < 2**64:
        raise MagvitError(f"seed must be a whole number from -2**63 to 2**64 - 1, got {value!r}")
    return int(value)


def non_negative_number(value: Any, name: str, meaning: str) -> float:
    """`value` as a float when it is a finite int or float (not a bool) of at least 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise MagvitError(f"{name} must be a number of at least 0 ({meaning}), got {value!r}")
    return float(value)


def class_labels(label: Any, num_classes: int) -> torch.Tensor:
    """`label` (a number, a list, a tensor, a numpy array or scalar) as a flat long tensor of
    classes in [0, num_classes), -1 being the unconditional class."""
    if hasattr(label, "reshape") and hasattr(label, "tolist"):  # a tensor, an array or a numpy scalar
        values = label.reshape(-1).tolist()
    else:
        values = list(label) if isinstance(label, (list, tuple, range)) else [label]
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Integral)
           or not -1 <= v < num_classes]
    if bad:
        raise MagvitError(f"class label(s) {bad} are not classes of this model: give whole "
                          f"numbers from 0 to {num_classes - 1} ({num_classes} classes; -1: no class), one "
                          "for all clips or one each (--class N)")
    return torch.tensor([int(v) for v in values], dtype=torch.long)
