"""Built-in quantizers for the tokenizers: `vq` (the paper's), `lfq` (MAGVIT-v2), `fsq`.

A tokenizer section picks one with `quantizer = { kind = "lfq", bits = 14 }`; without one the
tokenizer keeps the paper's VQ made from its own fields. A field left unset here (None) takes
the tokenizer's value of the same name, so `{ kind = "vq" }` is exactly the default.
"""

from __future__ import annotations

import math

import attrs

from magvit import api
from magvit.core.tokenizer.fsq import MAX_CODES, FiniteScalarQuantizer
from magvit.core.tokenizer.lfq import MAX_BITS, LookupFreeQuantizer
from magvit.core.tokenizer.quantizer import VectorQuantizer

_non_negative = api.at_least(0.0)


@attrs.define(kw_only=True)
class VQConfig:
    codebook_size: int | None = attrs.field(default=None, validator=api.at_least(2))
    embedding_dim: int | None = attrs.field(default=None, validator=api.at_least(1))
    commitment_cost: float | None = attrs.field(default=None, validator=_non_negative)
    codebook_cost: float | None = attrs.field(default=None, validator=_non_negative)
    entropy_weight: float | None = attrs.field(default=None, validator=_non_negative)
    entropy_temperature: float | None = attrs.field(default=None, validator=api.positive)


# The paper's B values, for a `vq` built on its own (a tokenizer fills unset fields from itself).
_PAPER = VQConfig(codebook_size=1024, embedding_dim=256, commitment_cost=0.25, codebook_cost=1.0,
                  entropy_weight=0.1, entropy_temperature=0.01)


def vq(config: VQConfig) -> VectorQuantizer:
    """Nearest of a learned codebook (paper, SPEC §5); unset fields come from the tokenizer."""
    c = {f.name: getattr(config, f.name) if getattr(config, f.name) is not None else getattr(_PAPER, f.name)
         for f in attrs.fields(VQConfig)}
    return VectorQuantizer(c["codebook_size"], c["embedding_dim"], c["commitment_cost"],
                           c["codebook_cost"], c["entropy_weight"], c["entropy_temperature"])


@attrs.define(kw_only=True)
class LFQConfig:
    bits: int = attrs.field(default=14, validator=api.in_range(1, MAX_BITS))  # codebook 2^bits
    commitment_cost: float = attrs.field(default=0.25, validator=_non_negative)
    entropy_weight: float = attrs.field(default=0.1, validator=_non_negative)
    diversity: float = attrs.field(default=1.0, validator=_non_negative)  # weight of codebook usage
    entropy_temperature: float = attrs.field(default=0.01, validator=api.positive)
    entropy_group_bits: int = attrs.field(default=8, validator=api.in_range(1, 16))
    scale: float = attrs.field(default=1.0, validator=api.positive)


def lfq(config: LFQConfig) -> LookupFreeQuantizer:
    """Lookup-free quantization (MAGVIT-v2): one bit per latent channel, 2^bits codes."""
    return LookupFreeQuantizer(**attrs.asdict(config))


def _levels(_instance, attribute, value) -> None:
    if not value or any(n < 2 for n in value):
        raise api.InvalidValue(attribute.name, f"must be one or more ints >= 2, got {list(value)}")
    if math.prod(value) > MAX_CODES:
        raise api.InvalidValue(attribute.name, f"gives {math.prod(value)} codes; at most {MAX_CODES}")


@attrs.define(kw_only=True)
class FSQConfig:
    levels: tuple[int, ...] = attrs.field(default=(8, 5, 5, 5), validator=_levels)


def fsq(config: FSQConfig) -> FiniteScalarQuantizer:
    """Finite scalar quantization: per-channel levels, codebook = their product."""
    return FiniteScalarQuantizer(config.levels)


vq.Config, lfq.Config, fsq.Config = VQConfig, LFQConfig, FSQConfig


@api.hookimpl
def magvit_register_quantizers(registry):
    registry.add("vq", vq)
    registry.add("lfq", lfq)
    registry.add("fsq", fsq)
