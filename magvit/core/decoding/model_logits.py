"""A token transformer seen through the decoders' protocols (`protocols.py`).

The transformer reads `[prefix] + latent` (the prefix is `[prompt, class]` or `[class]`) and
returns logits over the codebook at every position. `PrefixedLogits` hides the prefix:

- bidirectional (COMMIT, MaskGIT): `fn(latent)` returns the logits at the latent positions;
- causal (autoregressive): `fn(latent)[:, i]` is read at sequence position `prefix + i - 1`,
  the one that sees exactly the prefix and latent tokens before `i`; `start`/`step` give the
  same logits from the transformer's KV cache (`new_kv_cache`, `forward_cached`).
"""

from __future__ import annotations

import torch
from torch import nn


class PrefixedLogits:
    def __init__(self, transformer: nn.Module, prefix: torch.Tensor, causal: bool = False):
        self.transformer, self.prefix, self.causal = transformer, prefix, causal

    def __call__(self, latent: torch.Tensor) -> torch.Tensor:
        p = self.prefix.shape[1]
        # Logits leave in fp32 whatever the transformer ran in: softmax, Gumbel noise and the
        # schedule's ranking are computed in fp32 by the decoders.
        if not self.causal:
            return self.transformer(torch.cat([self.prefix, latent], dim=1))[:, p:].float()
        sequence = torch.cat([self.prefix, latent[:, :-1]], dim=1)
        return self.transformer(sequence, causal=True)[:, p - 1:].float()

    # -- the KV-cache protocol (used by the autoregressive decoder when causal) ---------------
    def start(self, batch_size: int):
        if batch_size != self.prefix.shape[0]:
            raise ValueError(f"prefix has batch {self.prefix.shape[0]}, asked for {batch_size}")
        cache = self.transformer.new_kv_cache(batch_size, self.transformer.config.num_positions)
        return cache, self.transformer.forward_cached(self.prefix, cache)[:, -1].float()

    def step(self, cache, tokens: torch.Tensor) -> torch.Tensor:
        return self.transformer.forward_cached(tokens, cache).float()


class GuidedPair:
    """Classifier-free guidance in one batched forward. Called, it is the conditional logits_fn;
    `uncond` is the unconditional one; `with_unconditional(tokens, uncond_tokens)` runs both
    prefixes in one forward of batch 2B and returns both logits, which `guided_logits` uses
    when the logits_fn offers it. Bidirectional models only."""

    def __init__(self, transformer: nn.Module, cond_prefix: torch.Tensor, uncond_prefix: torch.Tensor):
        if cond_prefix.shape != uncond_prefix.shape:
            raise ValueError(f"prefixes differ in shape: {tuple(cond_prefix.shape)} and {tuple(uncond_prefix.shape)}")
        self.transformer, self.cond_prefix, self.uncond_prefix = transformer, cond_prefix, uncond_prefix

    def _run(self, prefix: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return self.transformer(torch.cat([prefix, latent], dim=1))[:, prefix.shape[1]:].float()

    def __call__(self, latent: torch.Tensor) -> torch.Tensor:
        return self._run(self.cond_prefix, latent)

    def uncond(self, latent: torch.Tensor) -> torch.Tensor:
        return self._run(self.uncond_prefix, latent)

    def with_unconditional(self, latent: torch.Tensor, uncond_latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = latent.shape[0]
        both = self._run(torch.cat([self.cond_prefix, self.uncond_prefix]),
                         torch.cat([latent, uncond_latent]))                  # (2B, N, C)
        return both[:b], both[b:]
