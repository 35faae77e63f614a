"""Built-in decoders: `commit` (Algorithm 1), `maskgit` and `autoregressive` (Table 6 baselines).

Each is an attrs config whose fields are its keys; `decode(logits_fn, cond_tokens, cond_mask,
generator=None, uncond_logits_fn=None)` returns `(B, N)` codebook ids (SPEC §3). A decoder whose
class sets `causal = True` gets the transformer run causally (next-token logits) from the
pipeline. The decoding itself lives in `magvit.core.decoding`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import torch

from magvit.api import ScheduleComponent, as_component, at_least, finite, hookimpl
from magvit.core.decoding import autoregressive_decode, commit_decode, maskgit_decode


def _as_schedule(value: Any) -> ScheduleComponent:
    """A schedule name or table given in Python (`schedule="exp"`) becomes a component."""
    return as_component("schedules", value, "decoder schedule")


def _mask_id_above_codebook(instance, _attribute, value):
    if value is not None and value < instance.codebook_size:
        raise ValueError(
            f"mask_id {value} collides with the codebook ids [0, {instance.codebook_size}); "
            f"use an id >= codebook_size, or leave it unset"
        )


@attrs.define(kw_only=True)
class _Sampling:
    """Keys every built-in decoder takes."""

    top_k: int = attrs.field(default=0, validator=at_least(0))
    guidance_scale: float = attrs.field(default=0.0, validator=finite)  # negative: away from the class
    codebook_size: int = attrs.field(default=1024, validator=at_least(1))
    mask_id: int | None = attrs.field(default=None, validator=_mask_id_above_codebook)

    def _common(self) -> dict[str, Any]:
        mask_id = self.codebook_size if self.mask_id is None else self.mask_id
        return dict(top_k=self.top_k, guidance_scale=self.guidance_scale,
                    codebook_size=self.codebook_size, mask_id=mask_id)


@attrs.define(kw_only=True)
class _Parallel(_Sampling):
    """Keys of the K-step parallel decoders. `temperature` scales the Gumbel noise on the
    confidence (annealed to 0 over the steps); sampling is from the untempered softmax."""

    steps: int = attrs.field(default=12, validator=at_least(1))
    schedule: ScheduleComponent = attrs.field(
        factory=lambda: _as_schedule("cosine"), converter=_as_schedule
    )
    temperature: float = attrs.field(default=4.5, validator=at_least(0))

    def _parallel(self) -> dict[str, Any]:
        return dict(steps=self.steps, gamma=self.schedule.build(), temperature=self.temperature,
                    **self._common())


@attrs.define(kw_only=True)
class Commit(_Parallel):
    """COMMIT decoding: condition tokens z̃ start the decode and are refined with the rest."""

    def decode(self, logits_fn, cond_tokens: torch.Tensor, cond_mask: torch.Tensor,
               generator: torch.Generator | None = None, uncond_logits_fn=None,
               progress: bool = False) -> torch.Tensor:
        return commit_decode(logits_fn, cond_tokens, cond_mask, generator=generator,
                             uncond_logits_fn=uncond_logits_fn, progress=progress,
                             **self._parallel())


@attrs.define(kw_only=True)
class MaskGIT(_Parallel):
    """MaskGIT latent masking: condition tokens are kept as given, never refined."""

    def decode(self, logits_fn, cond_tokens: torch.Tensor, cond_mask: torch.Tensor,
               generator: torch.Generator | None = None, uncond_logits_fn=None,
               progress: bool = False) -> torch.Tensor:
        return maskgit_decode(logits_fn, cond_tokens, cond_mask, generator=generator,
                              uncond_logits_fn=uncond_logits_fn, progress=progress,
                              **self._parallel())


@attrs.define(kw_only=True)
class Autoregressive(_Sampling):
    """Raster order, one token per step; condition tokens are fed where the scan meets them.
    `temperature` is the sampling temperature (0 = argmax). `kv_cache` uses the incremental
    protocol when the logits_fn offers it, else every step runs the full sequence."""

    causal: ClassVar[bool] = True  # the pipeline runs the transformer causally for this decoder
    temperature: float = attrs.field(default=1.0, validator=at_least(0))
    kv_cache: bool = True

    def decode(self, logits_fn, cond_tokens: torch.Tensor, cond_mask: torch.Tensor,
               generator: torch.Generator | None = None, uncond_logits_fn=None,
               progress: bool = False) -> torch.Tensor:
        return autoregressive_decode(
            logits_fn, cond_tokens, cond_mask, temperature=self.temperature,
            kv_cache=self.kv_cache, generator=generator, uncond_logits_fn=uncond_logits_fn,
            progress=progress, **self._common(),
        )


@hookimpl
def magvit_register_decoders(registry):
    registry.add("commit", Commit)
    registry.add("maskgit", MaskGIT)
    registry.add("autoregressive", Autoregressive)
