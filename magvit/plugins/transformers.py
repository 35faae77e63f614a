"""Built-in transformer `bert`: a preset (tiny, B, L, H) plus overrides, sized to a vocabulary.

`vocab_size`, `num_positions` and `codebook_size` default to the UCF-101 multi-task layout
(1024 codes + 101 classes + 1 unconditional + [MASK] + 10 task prompts = 1137 ids; 2 + 1024
positions); training and generation set them from the experiment's vocabulary.
"""

from __future__ import annotations

from typing import Literal

import attrs

from magvit.api import AttentionComponent, at_least, default_component, hookimpl, in_range
from magvit.core.transformer import PRESETS, Bert, BertConfig


@attrs.define(kw_only=True)
class BertPluginConfig:
    preset: Literal["tiny", "B", "L", "H"] = "B"
    # overrides of the preset's sizes (None: the preset's)
    num_layers: int | None = attrs.field(default=None, validator=at_least(1))
    hidden: int | None = attrs.field(default=None, validator=at_least(1))
    mlp: int | None = attrs.field(default=None, validator=at_least(1))
    heads: int | None = attrs.field(default=None, validator=at_least(1))
    dropout: float = attrs.field(default=0.1, validator=in_range(0.0, 1.0, high_open=True))
    attention_dropout: float = attrs.field(default=0.1, validator=in_range(0.0, 1.0, high_open=True))
    attention: AttentionComponent = default_component("attentions", "sdpa")
    vocab_size: int = attrs.field(default=1137, validator=at_least(2))
    num_positions: int = attrs.field(default=1026, validator=at_least(1))
    codebook_size: int = attrs.field(default=1024, validator=at_least(1))
    # MAGVIT-v2's factorised head for large codebooks, e.g. [512, 512] for 2^18 codes: one
    # output per digit (1024) instead of per code (262,144); product = the codebook size
    codebook_factors: tuple[int, ...] = ()

    def model_config(self) -> BertConfig:
        layers, hidden, mlp, heads = PRESETS[self.preset]
        return BertConfig(
            num_layers=self.num_layers or layers,
            hidden=self.hidden or hidden,
            mlp=self.mlp or mlp,
            heads=self.heads or heads,
            vocab_size=self.vocab_size,
            num_positions=self.num_positions,
            codebook_size=self.codebook_size,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            codebook_factors=tuple(self.codebook_factors),
        )


def bert(config: BertPluginConfig) -> Bert:
    return Bert(config.model_config(), config.attention.build())


bert.Config = BertPluginConfig


@hookimpl
def magvit_register_transformers(registry):
    registry.add("bert", bert)
