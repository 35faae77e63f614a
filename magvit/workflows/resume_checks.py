"""What `--resume` must refuse: a run of the other stage, or one whose model has changed since
its checkpoint (the weights would not fit, or would fit a different model)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomllib

from magvit.core.training import latest_checkpoint
from magvit.errors import MagvitError
from magvit.registry.experiment import Experiment, experiment_dict

# Sections that define the model a stage trains, and keys in them a resumed run may change.
MODEL_SECTIONS = {"tokenizer": ("tokenizer",), "transformer": ("tokenizer", "transformer", "tasks")}
MAY_CHANGE = {"checkpoint", "init", "dropout", "attention_dropout", "weight"}
# The transformer's sizes follow from the sections compared (and older runs recorded defaults).
DERIVED = {"transformer.vocab_size", "transformer.num_positions", "transformer.codebook_size"}


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            if key not in MAY_CHANGE:
                out.update(_flatten(sub, f"{prefix}.{key}"))
        return out
    return {prefix: value}


def model_changes(saved: dict[str, Any], current: dict[str, Any], stage: str) -> list[str]:
    """`key: saved -> current` for every model-defining key that differs."""
    changes = []
    for section in MODEL_SECTIONS[stage]:
        before, after = _flatten(saved.get(section, {}), section), _flatten(current.get(section, {}), section)
        for key in sorted((set(before) | set(after)) - DERIVED):
            if before.get(key) != after.get(key):
                changes.append(f"{key}: {before.get(key, '(default)')!r} in the checkpoint, "
                               f"{after.get(key, '(default)')!r} now")
    return changes


def resume_check(exp: Experiment, stage: str) -> Callable[[Any], None]:
    """A check for `TrainLoop(check_resume=...)`: raises when the checkpoint cannot continue `exp`."""

    def check(ckpt) -> None:
        text = ckpt.files.get("config.resolved.toml")
        if text is None:
            return  # written before configs were saved: the weights' shapes are checked on load
        saved = tomllib.loads(text)
        saved_stage = "transformer" if "transformer" in saved else "tokenizer"
        if saved_stage != stage:
            raise MagvitError(
                f"{ckpt.path} is a {saved_stage} (stage {1 if saved_stage == 'tokenizer' else 2}) run; "
                f"it cannot be resumed as {stage} training. Resume it with `magvit train {saved_stage} "
                "... --resume`, or give this run another --output-dir / run.name"
            )
        changes = model_changes(saved, experiment_dict(exp), stage)
        if changes:
            raise MagvitError(
                f"the model changed since {ckpt.path}, so its weights cannot continue this run:\n  "
                + "\n  ".join(changes)
                + "\nRestore those values, or start a new run (another --output-dir / run.name)"
            )

    return check


def resumes(run_dir: Path, resume: bool) -> bool:
    """Whether training `run_dir` continues from a checkpoint: `--resume` with one there (the loop
    then loads it or refuses). Such a run takes its weights from the checkpoint, so the sources a
    new run starts from (`train.init_from`, `tokenizer.init`, `tokenizer.codes_from`) are neither
    read nor checked; `--resume` in an empty folder is a new run and needs them."""
    return resume and latest_checkpoint(run_dir) is not None
