"""Per-item random generators that depend only on their keys, never on worker or call order.

A data item's randomness is a pure function of (seed, epoch, index, ...), so DataLoader workers,
DDP ranks and a resumed run all see the same clip for the same index.
"""

from __future__ import annotations

import hashlib

import torch


def item_seed(*keys: int | str) -> int:
    """A 63-bit seed mixed from `keys` (blake2b, so nearby keys give unrelated seeds)."""
    digest = hashlib.blake2b(repr(keys).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def item_generator(*keys: int | str) -> torch.Generator:
    return torch.Generator().manual_seed(item_seed(*keys))
