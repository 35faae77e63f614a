"""Finite scalar quantization (Mentzer et al. 2023): each latent channel rounded to a few levels.

Channel i is bounded with a shifted tanh to `levels[i]` values, rounded (straight-through) and
scaled to [-1, 1]; the id is the mixed-radix number of the per-channel digits (channel 0 the
least significant), so the codebook is implicit and holds `prod(levels)` codes. There is no
codebook to learn and no auxiliary loss. Runs in fp32, also under autocast.
"""

from __future__ import annotations

import math

import torch

from magvit.core.tokenizer.quantizer import Quantizer, from_rows, perplexity, to_rows
from magvit.core.training.precision import full_precision
from magvit.errors import MagvitError

MAX_CODES = 2**24


class FiniteScalarQuantizer(Quantizer):
    def __init__(self, levels: tuple[int, ...] = (8, 5, 5, 5)):
        super().__init__()
        levels = tuple(int(n) for n in levels)
        if not levels or any(n < 2 for n in levels):
            raise MagvitError(f"fsq: levels must be one or more ints >= 2, got {list(levels)}")
        if math.prod(levels) > MAX_CODES:
            raise MagvitError(f"fsq: levels {list(levels)} give {math.prod(levels)} codes; at most {MAX_CODES}")
        self.levels, self.dim, self.codebook_size = levels, len(levels), math.prod(levels)
        count = torch.tensor(levels, dtype=torch.float32)
        basis = [math.prod(levels[:i]) for i in range(len(levels))]
        self.register_buffer("count", count, persistent=False)
        self.register_buffer("basis", torch.tensor(basis), persistent=False)
        self.register_buffer("half_width", torch.floor(count / 2), persistent=False)
        self._init_usage()

    def _bounded(self, rows: torch.Tensor) -> torch.Tensor:
        """Each channel squashed into an interval that rounds to exactly `levels[i]` integers."""
        half = (self.count - 1) * (1 + 1e-3) / 2
        offset = torch.where(self.count % 2 == 0, 0.5, 0.0)
        return torch.tanh(rows + torch.atanh(offset / half)) * half - offset

    def _digits(self, rows: torch.Tensor) -> torch.Tensor:
        return (torch.round(self._bounded(rows)) + self.half_width).long()

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = z.shape
        with full_precision(z.device):
            return (self._digits(to_rows(z)) * self.basis).sum(-1).reshape(b, t, h, w)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        digits = (codes.unsqueeze(-1) // self.basis) % self.count.long()   # (B, t, h, w, D)
        return ((digits.float() - self.half_width) / self.half_width).movedim(-1, 1)

    def nearest_codes(self, vectors: torch.Tensor) -> torch.Tensor:
        """Each channel of a code-vector-space point rounded to its nearest level (no bound)."""
        b, _, t, h, w = vectors.shape
        with full_precision(vectors.device):
            digits = torch.round(to_rows(vectors).float() * self.half_width) + self.half_width
            digits = torch.minimum(digits.clamp(min=0), self.count - 1).long()
            return (digits * self.basis).sum(-1).reshape(b, t, h, w)

    def code_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        return -torch.ones_like(self.count), (self.count - 1 - self.half_width) / self.half_width

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with full_precision(z.device):
            rows = to_rows(z)
            bounded = self._bounded(rows)
            rounded = bounded + (torch.round(bounded) - bounded).detach()
            q = rounded / self.half_width
            codes = ((torch.round(bounded) + self.half_width).long() * self.basis).sum(-1)
        b, _, t, h, w = z.shape
        codes = codes.reshape(b, t, h, w)
        loss = torch.zeros((), device=z.device)
        aux = {"quantizer_loss": loss, "codes": codes, "perplexity": perplexity(codes, self.codebook_size)}
        return from_rows(q, z), aux
