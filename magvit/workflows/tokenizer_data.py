"""The clips a tokenizer checkpoint was trained on, against the clips a stage-2 run will use.

A transformer learns the tokens of its own clips; a tokenizer trained on other clips (larger
shapes, another palette) gives it tokens it was never made for, and nothing fails. Stage 2 is
allowed to do that on purpose, so `TransformerStage` prints these differences as a warning
rather than refusing.
"""

from __future__ import annotations

from pathlib import Path

import attrs

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from magvit.core.training.checkpoint import resolve_checkpoint
from magvit.errors import MagvitError
from magvit.registry.experiment import Experiment, validate_experiment
from magvit.weights import resolve_model_path

# how many clips (or class folders) there are, not how they are drawn: a stage may use more or fewer
SIZE_KEYS = ("train_clips", "eval_clips", "classes")


def trained_data(checkpoint: str | Path):
    """The `[data]` section (a validated component) saved with a checkpoint, or None when the
    checkpoint records none (or cannot be read: loading it reports that)."""
    try:
        path = resolve_checkpoint(resolve_model_path(checkpoint))
        raw = tomllib.loads((Path(path) / "config.resolved.toml").read_text(encoding="utf-8"))
        return validate_experiment({"data": raw["data"]}, str(path)).data if "data" in raw else None
    except (MagvitError, OSError, tomllib.TOMLDecodeError):
        return None


def _fields(config) -> dict:
    return attrs.asdict(config) if attrs.has(type(config)) else dict(vars(config))


def data_differences(exp: Experiment) -> list[str]:
    """`data.KEY: HERE here, THERE in the tokenizer's run` for every key that draws the clips
    differently from the clips `tokenizer.checkpoint` was trained on; [] when they match or the
    checkpoint records no data."""
    checkpoint = getattr(exp.tokenizer.config, "checkpoint", "")
    trained = trained_data(checkpoint) if checkpoint else None
    if trained is None or exp.data is None:
        return []
    if trained.kind != exp.data.kind:
        return [f"data.kind: {exp.data.kind!r} here, {trained.kind!r} in the tokenizer's run"]
    here, there = _fields(exp.data.config), _fields(trained.config)
    return [f"data.{key}: {here.get(key)!r} here, {there.get(key)!r} in the tokenizer's run"
            for key in sorted(set(here) | set(there))
            if key not in SIZE_KEYS and here.get(key) != there.get(key)]


def data_warning(exp: Experiment) -> str | None:
    """The warning stage 2 prints when its clips are not drawn like its tokenizer's."""
    differences = data_differences(exp)
    if not differences:
        return None
    return (f"warning: stage 2 trains on other clips than its tokenizer "
            f"(tokenizer.checkpoint = {exp.tokenizer.config.checkpoint!r}): {'; '.join(differences)}. "
            "Set the same [data] as the tokenizer's run unless that is what you want.")
