"""Built-in transformer `bert`: a preset (tiny, B, L, H) plus overrides, sized to a vocabulary.

`vocab_size`, `num_positions` and `codebook_size` default to the UCF-101 multi-task layout
(1024 codes + 101 classes + 1 unconditional + [MASK] + 10 task prompts = 1137 ids; 2 + 1024
positions); training and generation set them from the experiment's vocabulary.
"""

from __future__ import annotations

from typing import Literal

import attrs

from magvit.api import AttentionComponent, default_component, hookimpl
from magvit.core.transformer import PRESETS, Bert, BertConfig


@attrs.define(kw_only=True)
class BertPluginConfig:
    preset: Literal["tiny", "B", "L", "H"] = "B"
    num_layers: int | None = None
    hidden: int | None = None
    mlp: int | None = None
    heads: int | None = None
    dropout: float = 0.1
    attention_dropout: float = 0.1
    attention: AttentionComponent = default_component("attentions", "sdpa")
    vocab_size: int = 1137
    num_positions: int = 1026
    codebook_size: int = 1024
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
