"""A tiny random-weight model bundle (tokenizer + transformer) for generation tests.

Clips are 8x16x16, which the tiny 3D-VQ turns into 4x4x4 = 64 tokens from a 512-code book.
"""

from __future__ import annotations

import types
from pathlib import Path

import torch

import magvit
from magvit.core.tokens import Vocabulary
from magvit.registry.components import structure_component
from magvit.registry.experiment import (
    Experiment,
    TokenizerComponent,
    TransformerComponent,
    validate_experiment,
)

CLIP = (8, 16, 16)
LATENT = (4, 4, 4)
TASKS = ("fp", "cg", "opv", "cfp")


def model_configs(vocab: Vocabulary) -> tuple[dict, dict]:
    tokenizer = {"kind": "vq3d", "preset": "tiny"}
    transformer = {"kind": "bert", "preset": "tiny", "vocab_size": vocab.size,
                   "num_positions": vocab.prefix_length + 64,
                   "codebook_size": vocab.codebook_size, "dropout": 0.0, "attention_dropout": 0.0}
    return tokenizer, transformer


def tiny_models(vocab: Vocabulary, seed: int = 0):
    torch.manual_seed(seed)
    regs = magvit.registries()
    tokenizer, transformer = model_configs(vocab)
    return (regs.tokenizers.create(tokenizer.pop("kind"), **tokenizer).eval(),
            regs.transformers.create(transformer.pop("kind"), **transformer).eval())


def tiny_bundle(experiment: Experiment | None = None, seed: int = 0,
                tasks: tuple[str, ...] = TASKS) -> types.SimpleNamespace:
    """A Bundle-like object (the fields `load_bundle` returns) with random weights."""
    vocab = Vocabulary(512, num_classes=3, task_names=tasks)
    tokenizer, transformer = tiny_models(vocab, seed)
    return types.SimpleNamespace(
        transformer=transformer, tokenizer=tokenizer, vocab=vocab, task_names=tasks,
        experiment=experiment or Experiment(), meta={"clip_shape": list(CLIP)},
    )


def random_clip(batch: int | None = None, seed: int = 0) -> torch.Tensor:
    shape = (3, *CLIP) if batch is None else (batch, 3, *CLIP)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def save_tiny_bundle(run_dir: Path, experiment: dict | None = None, seed: int = 0) -> Path:
    """Write the tiny bundle as a stage-2 checkpoint in `run_dir`, as training would."""
    from magvit.workflows.bundle import bundle_record, save_bundle

    exp = validate_experiment(experiment or {})
    bundle = tiny_bundle(exp, seed)
    tokenizer, transformer = model_configs(bundle.vocab)
    record = bundle_record(
        experiment=exp, vocab=bundle.vocab, task_names=TASKS, latent_shape=LATENT, clip_shape=CLIP,
        transformer=structure_component(transformer, TransformerComponent),
        tokenizer=structure_component(tokenizer, TokenizerComponent),
    )
    return save_bundle(run_dir, 1, transformer=bundle.transformer, tokenizer=bundle.tokenizer,
                       record=record, experiment=exp)
