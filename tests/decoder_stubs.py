"""Stand-in models for decoder tests: logits functions with known answers."""

from __future__ import annotations

import torch


class GridStub:
    """Strongly prefers `target (B, N)` at every position, whatever the input.

    It also offers the KV-cache protocol (its logits do not depend on the past), and records
    every input it sees, so tests can count [MASK] ids per step.
    """

    def __init__(self, target: torch.Tensor, codebook_size: int, strength: float = 30.0):
        self.target, self.codebook_size, self.strength = target, codebook_size, strength
        self.inputs: list[torch.Tensor] = []

    def _logits(self, target: torch.Tensor) -> torch.Tensor:
        return self.strength * torch.nn.functional.one_hot(target, self.codebook_size).float()

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        self.inputs.append(tokens.clone())
        return self._logits(self.target)

    def start(self, batch_size: int):
        state = {"length": 0}
        return state, self._logits(self.target[:, 0])

    def step(self, state, tokens: torch.Tensor) -> torch.Tensor:
        self.inputs.append(tokens.clone())
        first = state["length"] + 1
        state["length"] += tokens.shape[1]
        nxt = self.target[:, first:first + tokens.shape[1]]
        pad = tokens.shape[1] - nxt.shape[1]  # the last token has no successor
        logits = self._logits(nxt)
        return torch.cat([logits, logits.new_zeros(logits.shape[0], pad, self.codebook_size)], 1)


class MarkovStub:
    """A causal toy model: the next token's logits depend on the previous token only.

    As a full-sequence logits_fn, `logits[:, i]` is computed from `tokens[:, i - 1]` (a start
    token for i = 0), so it ignores [MASK]s after position i. With `start`/`step` it is the same
    model behind a "KV cache". Moderate logits keep sampling random.
    """

    def __init__(self, codebook_size: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(codebook_size + 1, codebook_size, generator=g)  # row C = start
        self.codebook_size = codebook_size
        self.full_calls = self.steps = 0

    def _next(self, previous: torch.Tensor) -> torch.Tensor:
        return self.table[previous.clamp(max=self.codebook_size)]

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        self.full_calls += 1
        start = torch.full_like(tokens[:, :1], self.codebook_size)
        return self._next(torch.cat([start, tokens[:, :-1]], dim=1))

    def start(self, batch_size: int):
        return {}, self._next(torch.full((batch_size,), self.codebook_size))

    def step(self, state, tokens: torch.Tensor) -> torch.Tensor:
        self.steps += 1
        return self._next(tokens)


class WithoutCache:
    """Hides a stub's `start`/`step`, leaving only the full-sequence call."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, tokens):
        return self.fn(tokens)
