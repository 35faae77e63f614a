"""Everything training would reject, found before any work starts: one validation path.

The schema (`validate_experiment`) checks each value on its own; this adds what needs several
sections or the disk: which stage the experiment is for, stage-1 `[losses]`, the clip size
against the tokenizer's downsampling, the data folder and checkpoints it names, the class labels
a task mix needs. `magvit config validate`, `magvit train` and the training workflows all call
`check_experiment`, so what one accepts the others accept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from magvit.errors import ConfigError, MagvitError
from magvit.registry import registries
from magvit.registry.experiment import Experiment, config_error
from magvit.weights import is_default

Stage = Literal["tokenizer", "transformer"]
SECTIONS: dict[str, tuple[str, ...]] = {
    "tokenizer": ("tokenizer", "data"),
    "transformer": ("data", "tokenizer", "transformer", "tasks"),
}


def stage_of(exp: Experiment) -> Stage:
    """A stage-2 experiment has a `[transformer]` section; anything else is stage 1."""
    return "transformer" if exp.transformer is not None else "tokenizer"


def _name(exp: Experiment) -> str:
    return Path(exp.source).stem if exp.source else exp.run.name


def _stage_problems(exp: Experiment, stage: Stage) -> list[str]:
    if stage not in SECTIONS:
        return [f"unknown stage {stage!r}; stages are: {', '.join(SECTIONS)}"]
    if stage == "tokenizer" and exp.transformer is not None:
        return [f"[transformer]: {_name(exp)} is a stage-2 experiment; train it with "
                f"`magvit train transformer {_name(exp)}` (stage 1 trains a [tokenizer] on [data])"]
    missing = [s for s in SECTIONS[stage] if not getattr(exp, s)]
    if stage == "transformer" and "transformer" in missing and exp.tokenizer is not None:
        return [f"[transformer]: {_name(exp)} has no [transformer] section, so it is a stage-1 "
                f"experiment; train it with `magvit train tokenizer {_name(exp)}`"]
    example = "tiny-tokenizer" if stage == "tokenizer" else "tiny"
    return [f"[{s}]: no [{s}] section; {stage} training needs it (see `magvit config show {example}`)"
            for s in missing]


def _tokenizer_factors(exp: Experiment) -> tuple[tuple[int, int, int], bool] | None:
    """The downsampling factors of the tokenizer the section builds and whether it is causal
    (on meta: no weights read)."""
    from magvit.workflows.summary import tokenizer_without_weights

    try:
        tokenizer = tokenizer_without_weights(exp.tokenizer)
        return tuple(tokenizer.factors), bool(getattr(tokenizer, "causal", False))
    except Exception:  # a config that cannot build: its own error is reported when training builds it
        return None


def _clip_problems(exp: Experiment) -> list[str]:
    data = exp.data.config
    frames, resolution = getattr(data, "frames", None), getattr(data, "resolution", None)
    built = _tokenizer_factors(exp)
    if built is None or not isinstance(frames, int) or resolution is None:
        return []
    factors, causal = built
    sizes = resolution if isinstance(resolution, (tuple, list)) else (resolution, resolution)
    problems = []
    if causal and (frames - 1) % factors[0]:
        ft = factors[0]
        problems.append(f"data.frames: a causal tokenizer takes 1 + k·{ft} frames, got {frames}; "
                        f"use {1 + max(1, (frames - 1) // ft) * ft} (or {1 + ((frames - 1) // ft + 1) * ft})")
    elif not causal and frames % factors[0]:
        problems.append(f"data.frames: {frames} is not divisible by the tokenizer's temporal "
                        f"downsampling {factors[0]}; use a multiple of {factors[0]}")
    if any(size % f for size, f in zip(sizes, factors[1:])):
        step = max(factors[1:])
        problems.append(f"data.resolution: {resolution} is not divisible by the tokenizer's spatial "
                        f"downsampling {factors[1]}x{factors[2]}; use a multiple of {step} "
                        f"(e.g. {max(step, round(sizes[0] / step) * step)})")
    return problems


def _exists(path: str) -> bool:
    return is_default(path) or Path(path).exists()


def _file_problems(exp: Experiment, stage: Stage, resuming: bool) -> list[str]:
    """The files the experiment names; a resumed run reads none of the sources a new run starts
    from (its checkpoint has those weights), so their absence does not stop it."""
    problems = []
    path = getattr(exp.data.config, "path", None)
    if isinstance(path, str) and path and not Path(path).is_dir():
        what = "is a file, not a folder" if Path(path).exists() else "does not exist"
        problems.append(f"data.path: {path!r} {what}; give the folder of videos "
                        "(one sub-folder per class), or --set data.path=...")
    checkpoint = getattr(exp.tokenizer.config, "checkpoint", "")
    if checkpoint and not _exists(checkpoint):
        hint = (f"; train it first (`magvit train tokenizer {Path(checkpoint).name}`)"
                if checkpoint.startswith("runs/") else "")
        problems.append(f"tokenizer.checkpoint: {checkpoint!r} does not exist{hint}")
    perceptual = exp.losses.get("perceptual_model") if stage == "tokenizer" else None
    weights = perceptual.get("weights") if isinstance(perceptual, dict) else None
    if isinstance(weights, str) and not Path(weights).is_file():
        problems.append(f"losses.perceptual_model.weights: {weights!r} does not exist; give the "
                        "path of the network's weights file, or remove [losses.perceptual_model]")
    init = getattr(exp.tokenizer.config, "init", None)
    if stage == "tokenizer" and init is not None:
        # the kind is the config's to get right whether or not this run reads the source
        if init.kind not in registries().inflations:
            problems.append(f"tokenizer.init.kind: {registries().inflations.unknown_name_message(init.kind)}")
        if init.checkpoint and not resuming and not _exists(init.checkpoint):
            problems.append(f"tokenizer.init.checkpoint: {init.checkpoint!r} does not exist; "
                            "give a `vq2d` run directory")
    init_from = exp.train.init_from
    if stage == "transformer" and init_from and not resuming and not _exists(init_from):
        problems.append(f"train.init_from: {init_from!r} does not exist; give a stage-2 run, "
                        "checkpoint or bundle (or `default`)")
    codes_from = getattr(exp.tokenizer.config, "codes_from", "")
    if stage == "tokenizer" and codes_from and not resuming and not _exists(codes_from):
        problems.append(f"tokenizer.codes_from: {codes_from!r} does not exist; give the stage-1 run "
                        "directory whose tokens to keep")
    if stage == "tokenizer" and getattr(exp.tokenizer.config, "keep_decoder", False) and not codes_from:
        problems.append("tokenizer.keep_decoder: takes the decoder of tokenizer.codes_from, which is "
                        "not set; set codes_from to the tokenizer to continue, or remove keep_decoder")
    return problems


def _stage1_problems(exp: Experiment) -> list[str]:
    from magvit.workflows.tokenizer_losses import tokenizer_losses

    if exp.train.init_from:
        return [f"train.init_from: {exp.train.init_from!r} starts a stage-2 run from a transformer; "
                "a tokenizer starts from other weights with tokenizer.init (a 2D VQ) or "
                "tokenizer.codes_from (a trained encoder and quantizer)"]

    try:
        tokenizer_losses(exp.losses)
    except ConfigError as exc:
        return exc.problems
    except MagvitError as exc:
        return [f"losses: {exc}"]
    return []


def _stage2_problems(exp: Experiment) -> list[str]:
    if getattr(exp.tokenizer.config, "checkpoint", None) == "":
        return ["tokenizer.checkpoint is empty: stage 2 needs a trained tokenizer. Train one with "
                "`magvit train tokenizer ...` and set tokenizer.checkpoint to its run directory"]
    needs_class = []
    for name, entry in exp.tasks.items():
        try:
            needs_class += [name] if entry.task.build().needs_class else []
        except MagvitError as exc:
            return [f"tasks.{name}: {exc}"]
    if not needs_class:
        return []
    try:
        classes = getattr(exp.data.config, "num_classes", 0)
    except Exception:  # a folder that cannot be read: reported by the file checks
        return []
    if not classes:
        return [f"tasks: task(s) {', '.join(needs_class)} need class labels, but dataset "
                f"{exp.data.kind!r} has num_classes = 0; use a labelled dataset or drop them from [tasks]"]
    return []


def experiment_problems(exp: Experiment, stage: Stage | None = None, *, files: bool = True,
                        resuming: bool = False) -> list[str]:
    """Every problem training `stage` (default: the experiment's own) would hit, as
    `key.path: message` lines; `files=False` skips the checks that read the disk, `resuming`
    (a run continued from its checkpoint, `resume_checks.resumes`) those of the sources it
    started from."""
    stage = stage or stage_of(exp)
    problems = _stage_problems(exp, stage)
    if problems:
        return problems
    problems += _clip_problems(exp)
    problems += _stage1_problems(exp) if stage == "tokenizer" else _stage2_problems(exp)
    if files:
        problems += _file_problems(exp, stage, resuming)
    return problems


def check_experiment(exp: Experiment, stage: Stage | None = None, *, files: bool = True,
                     resuming: bool = False) -> None:
    """Raise `ConfigError` listing every problem of `experiment_problems`."""
    problems = experiment_problems(exp, stage, files=files, resuming=resuming)
    if problems:
        raise config_error(problems, exp.source or None, exp.set_keys)
