"""Tokens remembered per clip, so a fixed clip is encoded once per task instead of every step.

Keys are dataset indices, so item i must be the same clip whenever it is read: true of the
`synthetic` dataset, and of any dataset behind `stage2_data.WithIndex` (which freezes the clips
of epoch 0). Tokens are kept on the CPU in the narrowest integer type (`token_dtype`: 256 tokens of a
512-code tokenizer cost 512 bytes).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from magvit.core.tokens import token_dtype


class TokenMemo:
    def __init__(self, codebook_size: int):
        self._dtype = token_dtype(codebook_size)
        self._store: dict[tuple[str, int], torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._store)

    def tokens(
        self, kind: str, indices: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """(B, N) tokens of clips `indices` for `kind` ("target" or a task name); `compute(rows)`
        encodes the rows of the batch that are not remembered yet and returns (len(rows), N)."""
        keys = [(kind, int(i)) for i in indices.tolist()]
        missing = [row for row, key in enumerate(keys) if key not in self._store]
        if missing:
            fresh = compute(torch.tensor(missing)).cpu()
            for row, tokens in zip(missing, fresh):
                self._store[keys[row]] = tokens.to(self._dtype)
        return torch.stack([self._store[key] for key in keys]).long()
