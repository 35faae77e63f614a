"""What a decoder calls: the model seen as a function from tokens to logits.

Every decoder takes a plain `LogitsFn`: any callable from input tokens `(B, N)` (codebook ids,
the [MASK] id, or condition tokens) to logits `(B, N, codebook_size)` over the codebook only.
A stub in a test is as good as a transformer.

The autoregressive decoder can also use an `IncrementalLogitsFn`, an object that keeps a KV
cache. Its convention is the causal "next token" one:

- `start(batch_size) -> (state, logits (B, C))`: a fresh cache holding the model's prefix
  (task prompt, class) and the distribution of the first latent token;
- `step(state, tokens (B, S)) -> logits (B, S, C)`: appends `tokens` to the cache (the state
  is updated in place); `logits[:, j]` is the distribution of the token that follows
  `tokens[:, j]`.

The full-sequence view of the same model (used without the cache) reads `logits[:, i]` as the
distribution of token `i` given the tokens before it, so both paths sample the same tokens.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


class LogitsFn(Protocol):
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class IncrementalLogitsFn(Protocol):
    def start(self, batch_size: int) -> tuple[Any, torch.Tensor]: ...

    def step(self, state: Any, tokens: torch.Tensor) -> torch.Tensor: ...


def is_incremental(logits_fn: object) -> bool:
    """Whether `logits_fn` offers the KV-cache protocol (`start` and `step`)."""
    return isinstance(logits_fn, IncrementalLogitsFn)
