"""`magvit train tokenizer EXP`: stage 1, the VQ tokenizer (SPEC §5).

Reads `[data]`, `[tokenizer]` (preset + overrides, optional `init` from a 2D checkpoint),
`[train]` and `[losses]`; runs `TrainLoop` (progress bar, atomic checkpoints, exact `--resume`,
DDP under `torchrun`). The checkpoint's `ema` weights are the tokenizer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs
import torch

import magvit
from magvit.core.tokenizer.config import TokenizerConfig
from magvit.core.tokenizer.loading import (
    freeze_codes,
    inflate_state,
    load_tokenizer_weights,
    take_codes,
    take_decoder,
    tokenizer_state,
)
from magvit.core.training import (
    TrainLoop,
    cleanup,
    load_checkpoint,
    load_weights,
    seed_everything,
    setup_distributed,
)
from magvit.errors import MagvitError
from magvit.registry.components import Component
from magvit.registry.experiment import (
    Experiment,
    experiment_dict,
    experiment_toml,
    write_resolved_config,
)
from magvit.weights import resolve_model_path
from magvit.workflows.preflight import check_experiment
from magvit.workflows.resume_checks import resume_check, resumes
from magvit.workflows.tokenizer_losses import tokenizer_losses
from magvit.workflows.tokenizer_stage import TokenizerStage


def _require(exp: Experiment, section: str) -> Any:
    value = getattr(exp, section)
    if value is None:
        raise MagvitError(
            f"{exp.source or 'the experiment'} has no [{section}] section; stage-1 training needs "
            f"[{section}] kind = ... (see `magvit config show tiny-tokenizer`)"
        )
    return value


def build_tokenizer(component: Component, *, resume: bool = False) -> torch.nn.Module:
    """The tokenizer of `[tokenizer]`: inflated from a 2D checkpoint when `init` asks for it; with
    `codes_from`, a trained tokenizer's (EMA) encoder and quantizer, frozen, and with `keep_decoder`
    its decoder to train on (a resumed run has them in its own checkpoint, and freezes them
    again)."""
    model = component.build()
    init = getattr(component.config, "init", None)
    if init is not None and init.checkpoint and not resume:
        inflate = magvit.registries().inflations.create(init.kind)
        inflate_state(model, load_weights(init.checkpoint), inflate, init.checkpoint)
    codes_from = getattr(component.config, "codes_from", "")
    if codes_from:
        if resume:
            freeze_codes(model)
        else:
            source = str(resolve_model_path(codes_from))
            state = tokenizer_state(source)
            take_codes(model, state, source)
            if getattr(component.config, "keep_decoder", False):
                take_decoder(model, state, source)
    return model


def train(exp: Experiment, run_dir: Path, resume: bool = False) -> Path:
    resuming = resumes(run_dir, resume)  # from a checkpoint: init and codes_from are in it
    check_experiment(exp, "tokenizer", resuming=resuming)
    tokenizer, data = _require(exp, "tokenizer"), _require(exp, "data")
    losses = tokenizer_losses(exp.losses)
    ctx = setup_distributed(exp.run.device)
    try:
        seed_everything(exp.run.seed)  # same initial weights on every rank
        dataset = data.build()
        stage = TokenizerStage(
            build_tokenizer(tokenizer, resume=resuming), dataset.make("train", exp.run.seed), losses,
            exp.train, ctx=ctx, seed=exp.run.seed, precision=exp.run.precision,
            eval_data=dataset.make("eval", exp.run.seed) if exp.train.eval_every else None,
            keep_media=bool(exp.run.media_every),
        )
        seed_everything(exp.run.seed, ctx.rank)
        if ctx.is_main:
            write_resolved_config(exp, run_dir)
        loop = TrainLoop(
            run_dir, total_steps=exp.train.steps, checkpoint_every=exp.train.checkpoint_every,
            log_every=exp.train.log_every, ctx=ctx, desc=f"tokenizer {exp.run.name}",
            files={"config.resolved.toml": experiment_toml(exp, with_plugins=True)},
            eval_every=exp.train.eval_every,
            check_resume=resume_check(exp, "tokenizer"),
            loggers=None if exp.run.loggers is None else [logger.build() for logger in exp.run.loggers],
            run_config=experiment_dict(exp),
            media_every=exp.run.media_every,
        )
        last = loop.run(stage, resume=resume)
    finally:
        cleanup(ctx)
    if ctx.is_main:
        print(f"tokenizer checkpoint: {last}", file=sys.stderr)
    return last


def load_tokenizer(component_or_config: Component | TokenizerConfig | None = None,
                   checkpoint: str | Path = "") -> torch.nn.Module:
    """A tokenizer in eval mode with a checkpoint's (EMA) weights.

    With no config, the `[tokenizer]` section saved in the checkpoint's resolved config is used,
    so `load_tokenizer(checkpoint="runs/tiny-tokenizer")` is enough.
    """
    checkpoint = resolve_model_path(checkpoint) if checkpoint else checkpoint
    if component_or_config is None:
        component_or_config = tokenizer_component_of(checkpoint)
    if isinstance(component_or_config, TokenizerConfig):
        from magvit.core.tokenizer.vq3d import VQ3D

        model = VQ3D(attrs.evolve(component_or_config, checkpoint=""))
    else:
        model = component_or_config.build(checkpoint="")
    if checkpoint:
        load_tokenizer_weights(model, str(checkpoint))
    return model.eval()


def trained_experiment(checkpoint: str | Path) -> Experiment:
    """The `[run]`, `[data]` and `[tokenizer]` sections a checkpoint was trained with."""
    import tomllib

    from magvit.registry.experiment import validate_experiment

    ckpt = load_checkpoint(resolve_model_path(checkpoint))
    text = ckpt.files.get("config.resolved.toml")
    if text is None:
        raise MagvitError(f"checkpoint {ckpt.path} has no config.resolved.toml; pass the experiment too")
    raw = {k: v for k, v in tomllib.loads(text).items() if k in ("tokenizer", "data", "run")}
    exp = validate_experiment(raw, str(ckpt.path))
    if exp.tokenizer is None:
        raise MagvitError(f"checkpoint {ckpt.path} was not trained with a [tokenizer] section")
    return exp


def tokenizer_component_of(checkpoint: str | Path) -> Component:
    """The `[tokenizer]` section a checkpoint was trained with."""
    return trained_experiment(checkpoint).tokenizer
