"""Capture and restore every random number generator a training step may draw from.

Exact resume needs the generators exactly where they were: Python's `random`, NumPy's global
generator, torch's CPU generator and, when present, every CUDA device's generator. The captured
state holds only lists, ints and tensors, so it loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def mix_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part: `mix_seed(seed, epoch)`, `mix_seed(seed, rank)`.

    Hashing (rather than `seed + epoch`) keeps nearby seeds from sharing streams.
    """
    text = ":".join(str(int(p)) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); each rank gets its own stream."""
    s = mix_seed(seed, rank) if rank else seed
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def capture_rng_state() -> dict:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available():
        # A run resumed on fewer GPUs restores the devices it has.
        for device, device_state in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, device)
