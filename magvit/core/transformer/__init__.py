"""The stage-2 token transformer and its attention backends."""

from magvit.core.transformer.bert import PRESETS, Bert, BertConfig, KVCache, parameter_count

__all__ = ["PRESETS", "Bert", "BertConfig", "KVCache", "parameter_count"]
