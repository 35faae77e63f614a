"""The tokenizer's config: a preset name plus overrides of any of its fields (SPEC §5)."""

from __future__ import annotations

import attrs

from magvit.core.tokenizer.presets import PRESETS, Architecture, resolve
from magvit.core.validators import at_least, finite, positive


def _known_preset(_instance, _attribute, value: str) -> None:
    if value not in PRESETS:
        raise ValueError(f"unknown preset {value!r}; choose one of {', '.join(PRESETS)}")


@attrs.define(kw_only=True)
class InflationInit:
    """Initialise a 3D tokenizer from a 2D (vq2d) checkpoint by inflating its conv kernels."""

    kind: str = "central"  # an `inflations` plugin: "central" (paper) or "average"
    checkpoint: str = ""


@attrs.define(kw_only=True)
class TokenizerConfig:
    preset: str = attrs.field(default="B", validator=_known_preset)
    checkpoint: str = ""  # weights to load (the EMA group when there is one)
    # Overrides of the preset (None = the preset's value); see `presets.Architecture`.
    base_channels: int | None = attrs.field(default=None, validator=at_least(1))
    channel_multipliers: tuple[int, ...] | None = None
    temporal_downsample: tuple[bool, ...] | None = None
    num_res_blocks: int | None = attrs.field(default=None, validator=at_least(0))
    embedding_dim: int | None = attrs.field(default=None, validator=at_least(1))
    codebook_size: int | None = attrs.field(default=None, validator=at_least(2))
    padding: str | None = None
    disc_channels: int | None = attrs.field(default=None, validator=at_least(1))
    disc_multipliers: tuple[int, ...] | None = None
    causal: bool | None = None  # MAGVIT-v2 causal 3D CNN: clips of 1 + k·ft frames
    norm: str | None = None  # "group" (clip statistics), "frame" or "channel"; causal: "frame"
    local: bool | None = None  # the encoder's token sees its own patch (+ a few pixels)
    local_time: bool | None = None  # ... and its own frames (+ one either side); needs local
    # the decoder's base width (None: base_channels) and ResBlocks per level (None: num_res_blocks)
    decoder_channels: int | None = attrs.field(default=None, validator=at_least(1))
    decoder_res_blocks: int | None = attrs.field(default=None, validator=at_least(1))
    decoder_local: bool | None = None  # a pixel depends on its own token (+ 1 pixel around it)
    # ... and the tokens this many away (its first conv)
    decoder_context: int | None = attrs.field(default=None, validator=at_least(0))
    decoder_local_time: bool | None = None  # ... and its own latent frame; needs decoder_local
    downsample: str | None = None  # the encoder's: "pool" (average) or "conv" (learned, same block)
    # Quantizer loss weights (SPEC §5) and the entropy penalty's softmax temperature.
    commitment_cost: float = attrs.field(default=0.25, validator=[finite, at_least(0)])
    codebook_cost: float = attrs.field(default=1.0, validator=[finite, at_least(0)])
    entropy_weight: float = attrs.field(default=0.1, validator=[finite, at_least(0)])
    entropy_temperature: float = attrs.field(default=0.01, validator=[finite, positive])
    init: InflationInit | None = None
    # Stage 1 from a trained tokenizer's encoder and quantizer, frozen: the tokens stay exactly
    # its tokens (a stage-2 model trained on them still applies) and only the decoder trains.
    codes_from: str = ""
    # With codes_from: the decoder starts from that tokenizer's decoder as well (it must have the
    # same decoder settings), to train it further; False: a fresh decoder.
    keep_decoder: bool = False

    def architecture(self) -> Architecture:
        overrides = {f.name: getattr(self, f.name) for f in attrs.fields(Architecture)}
        if self.causal and self.norm is None:  # clip-wide statistics would break causality
            overrides["norm"] = "frame"
        return resolve(self.preset, **overrides)
