"""Autoregressive decoding (paper Table 6 baseline): one token per step in raster order.

Condition positions are fed, not sampled: when the raster scan reaches a position inside the
condition region it takes z̃ there, so the model continues from the real condition. Runs of
positions that are condition tokens in every row are fed in one model call.

With `kv_cache` and a logits_fn that offers the incremental protocol (`protocols.py`) each step
appends one token to the cache. Otherwise each step calls logits_fn on the whole sequence
(decided tokens, [MASK] after them) and reads the logits at the current position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from tqdm.auto import tqdm

from magvit.core.decoding.checks import check_condition, check_guidance, check_logits
from magvit.core.decoding.protocols import is_incremental
from magvit.core.decoding.sampling import sample_tokens


def autoregressive_decode(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    cond_tokens: torch.Tensor,
    cond_mask: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    guidance_scale: float = 0.0,
    codebook_size: int = 1024,
    mask_id: int = 1024,
    kv_cache: bool = True,
    generator: torch.Generator | None = None,
    uncond_logits_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """`(B, N)` codebook ids, decided left to right."""
    steps = AutoregressiveSteps(
        logits_fn, cond_tokens, cond_mask, temperature=temperature, top_k=top_k,
        guidance_scale=guidance_scale, codebook_size=codebook_size, mask_id=mask_id,
        kv_cache=kv_cache, generator=generator, uncond_logits_fn=uncond_logits_fn,
    )
    total = cond_tokens.shape[-1]
    with tqdm(total=total, desc="decoding", unit="token", disable=not progress) as bar:
        for decided in steps:
            bar.update(decided - bar.n)
    return steps.tokens


class AutoregressiveSteps(Iterator[int]):
    """The decode as an iterator: each `next()` decides one more position (or one run of
    condition positions) and yields how many are decided; `.tokens` is the grid so far, with
    `mask_id` where nothing is decided yet. Benchmarks time a few steps with it.
    """

    def __init__(self, logits_fn, cond_tokens, cond_mask, *, temperature=1.0, top_k=0,
                 guidance_scale=0.0, codebook_size=1024, mask_id=1024, kv_cache=True,
                 generator=None, uncond_logits_fn=None):
        check_condition(cond_tokens, cond_mask, codebook_size, mask_id)
        check_guidance(guidance_scale, uncond_logits_fn)
        self.models = [logits_fn] + ([uncond_logits_fn] if guidance_scale != 0 else [])
        self.cached = kv_cache and all(is_incremental(m) for m in self.models)
        self.cond_tokens, self.cond_mask = cond_tokens.long(), cond_mask
        self.tokens = torch.full_like(self.cond_tokens, mask_id)
        self.sample = dict(generator=generator, temperature=temperature, top_k=top_k)
        self.guidance_scale, self.codebook_size = guidance_scale, codebook_size
        self.decided = 0
        self.states: list = []
        self.next_logits: list[torch.Tensor] = []  # cached path: logits for position `decided`

    def __next__(self) -> int:
        n = self.tokens.shape[-1]
        if self.decided >= n:
            raise StopIteration
        start = self.decided
        if self.cached and not self.states:
            batch = self.tokens.shape[0]
            started = [m.start(batch) for m in self.models]
            self.states = [s for s, _ in started]
            self.next_logits = [self._checked(lg, (batch,)) for _, lg in started]
        end = self._condition_run_end(start)
        if end > start:  # every row is condition here: feed z̃, no sampling
            self.tokens[:, start:end] = self.cond_tokens[:, start:end]
        else:
            end = start + 1
            sampled = sample_tokens(self._logits_at(start), **self.sample)
            given = self.cond_mask[:, start]
            self.tokens[:, start] = torch.where(given, self.cond_tokens[:, start], sampled)
        self.decided = end
        if self.cached and end < n:
            fed = self.tokens[:, start:end]
            self.next_logits = [self._checked(m.step(s, fed), tuple(fed.shape))[:, -1]
                                for m, s in zip(self.models, self.states)]
        return end

    def _condition_run_end(self, start: int) -> int:
        """End of the run of positions from `start` that are condition in every row."""
        all_given = self.cond_mask[:, start:].all(dim=0)
        if not all_given[0]:
            return start
        not_given = (~all_given).nonzero()
        return start + (int(not_given[0]) if len(not_given) else len(all_given))

    def _logits_at(self, position: int) -> torch.Tensor:
        if self.cached:
            logits = self.next_logits
        else:
            seq = tuple(self.tokens.shape)
            logits = [self._checked(m(self.tokens), seq)[:, position] for m in self.models]
        if len(logits) == 1:
            return logits[0]
        cond, uncond = logits
        return cond + self.guidance_scale * (cond - uncond)

    def _checked(self, logits: torch.Tensor, expected: tuple[int, ...]) -> torch.Tensor:
        where = f"autoregressive step {self.decided + 1}/{self.tokens.shape[-1]}"
        return check_logits(logits, expected, self.codebook_size, where)

