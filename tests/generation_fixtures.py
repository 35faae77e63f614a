"""A tiny random-weight model bundle (tokenizer + transformer) for generation tests.

Clips are 8x16x16, which the tiny 3D-VQ turns into 4x4x4 = 64 tokens from a 512-code book.
"""

from __future__ import annotations

import types

import torch

import magvit
from magvit.core.tokens import Vocabulary
from magvit.registry.experiment import Experiment

CLIP = (8, 16, 16)
LATENT = (4, 4, 4)
TASKS = ("fp", "cg", "opv", "cfp")


def tiny_models(vocab: Vocabulary, seed: int = 0):
    torch.manual_seed(seed)
    regs = magvit.registries()
    tokenizer = regs.tokenizers.create("vq3d", preset="tiny").eval()
    transformer = regs.transformers.create(
        "bert", preset="tiny", vocab_size=vocab.size, num_positions=vocab.prefix_length + 64,
        codebook_size=vocab.codebook_size, dropout=0.0, attention_dropout=0.0,
    ).eval()
    return tokenizer, transformer


def tiny_bundle(experiment: Experiment | None = None, seed: int = 0) -> types.SimpleNamespace:
    """A Bundle-like object (the fields `load_bundle` returns) with random weights."""
    vocab = Vocabulary(512, num_classes=3, task_names=TASKS)
    tokenizer, transformer = tiny_models(vocab, seed)
    return types.SimpleNamespace(
        transformer=transformer, tokenizer=tokenizer, vocab=vocab, task_names=TASKS,
        experiment=experiment or Experiment(), meta={"clip_shape": list(CLIP)},
    )


def random_clip(batch: int | None = None, seed: int = 0) -> torch.Tensor:
    shape = (3, *CLIP) if batch is None else (batch, 3, *CLIP)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))
