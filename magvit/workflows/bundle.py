"""The stage-2 checkpoint as a self-contained bundle: everything generation needs, nothing else.

A bundle is an ordinary training checkpoint directory (see `magvit.core.training.checkpoint`)
with two weights groups, `model` (the transformer) and `tokenizer` (the frozen tokenizer's
weights, embedded), and two files: `bundle.json` (vocabulary and prompt ids, the tasks, the
transformer and tokenizer configs, the latent and clip shapes) and `config.resolved.toml` (the
experiment). `load_bundle` rebuilds both models from it without reading any other file.

An exported bundle may also hold a class reader (`magvit export --class-reader FILE`): a small
frame classifier that the class search asks which classes to try (`magvit.core.class_reader`),
as a third weights group, `class_reader`, with its config, training data and held-out accuracy
under `class_reader` in `bundle.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from magvit.core.shape_classifier import ShapeClassifier, ShapeClassifierConfig
from magvit.core.tokens import Vocabulary
from magvit.core.training.checkpoint import load_weights, resolve_checkpoint, save_checkpoint
from magvit.errors import MagvitError
from magvit.registry.components import structure_component
from magvit.registry.converter import Problems
from magvit.registry.experiment import (
    Experiment,
    TokenizerComponent,
    TransformerComponent,
    experiment_toml,
    validate_experiment,
    without_run_record,
)
from magvit.registry.toml_files import read_toml
from magvit.weights import resolve_model_path

BUNDLE_FILE = "bundle.json"
CONFIG_FILE = "config.resolved.toml"
FORMAT = "magvit-transformer-bundle/1"
# Tokenizer config fields that point at weights outside the bundle; cleared when rebuilding.
EXTERNAL_WEIGHT_FIELDS = {"checkpoint": "", "init": None, "codes_from": ""}


@attrs.frozen
class Bundle:
    transformer: nn.Module
    tokenizer: nn.Module
    vocab: Vocabulary
    task_names: tuple[str, ...]  # the tasks trained, in prompt order when there are prompts
    experiment: Experiment
    meta: dict[str, Any]  # the bundle.json record, plus `step`, `path` and checkpoint.json's `runtime`
    class_reader: ShapeClassifier | None = None  # reads classes from given pixels (class search)


def self_contained_tokenizer(component: TokenizerComponent) -> TokenizerComponent:
    """The tokenizer's config with its external weight sources cleared (the bundle has them)."""
    cleared = {k: v for k, v in EXTERNAL_WEIGHT_FIELDS.items() if hasattr(component.config, k)}
    return type(component)(component.kind, attrs.evolve(component.config, **cleared))


def bundle_record(
    *,
    experiment: Experiment,
    transformer: TransformerComponent,
    tokenizer: TokenizerComponent,
    vocab: Vocabulary,
    task_names: tuple[str, ...],
    latent_shape: tuple[int, int, int],
    clip_shape: tuple[int, int, int],
    tokenizer_source: str = "",
) -> dict[str, Any]:
    """The `bundle.json` content. `transformer` carries its derived sizes (vocab, positions)."""
    return {
        "format": FORMAT,
        "vocabulary": vocab.to_dict(),
        "prompt_ids": {name: vocab.prompt_id(name) for name in vocab.task_names},
        "task_names": list(task_names),
        "latent_shape": list(latent_shape),
        "clip_shape": list(clip_shape),
        "transformer": transformer.to_dict(),
        "tokenizer": self_contained_tokenizer(tokenizer).to_dict(),
        "tokenizer_source": tokenizer_source,
        "experiment_name": experiment.run.name,
    }


def bundle_files(record: dict[str, Any], experiment: Experiment) -> dict[str, str]:
    return {
        BUNDLE_FILE: json.dumps(record, indent=2) + "\n",
        CONFIG_FILE: experiment_toml(experiment, with_plugins=True),
    }


def save_bundle(
    run_dir: str | Path,
    step: int,
    *,
    transformer: nn.Module,
    tokenizer: nn.Module,
    record: dict[str, Any],
    experiment: Experiment,
    state: dict | None = None,
    keep: int | None = 3,
    extra_files: dict[str, str] | None = None,
    class_reader: nn.Module | None = None,
    runtime: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle as `run_dir/checkpoints/step-XXXXXXXX/` (atomically); return its path.
    With `class_reader`, `record` must describe it (`class_reader_record`); `runtime` (threads,
    CPU kernels, malloc of the process that trained it) goes into `checkpoint.json`'s meta."""
    weights = {"model": transformer.state_dict(), "tokenizer": tokenizer.state_dict()}
    if (class_reader is None) != ("class_reader" not in record):
        raise ValueError("a bundle's class reader and its bundle.json entry come together")
    if class_reader is not None:
        weights["class_reader"] = class_reader.state_dict()
    return save_checkpoint(
        run_dir, step,
        weights=weights,
        state=state or {},
        files={**bundle_files(record, experiment), **(extra_files or {})},
        meta={"bundle": FORMAT, **({"runtime": runtime} if runtime else {})},
        keep=keep,
    )


def class_reader_record(reader: ShapeClassifier) -> dict[str, Any]:
    """The `bundle.json` entry of a class reader: its config, the data config it trained on and
    its held-out accuracy."""
    return {"config": reader.config.to_dict(), "data": getattr(reader, "trained_on", None) or {},
            "held_out_accuracy": getattr(reader, "held_out_accuracy", None)}


def _load_class_reader(entry: dict, path: Path) -> ShapeClassifier:
    try:
        reader = ShapeClassifier(ShapeClassifierConfig.from_dict(entry["config"]))
    except (KeyError, TypeError) as exc:
        raise MagvitError(f"bundle {path} has an unreadable class reader config ({exc})") from None
    _load_into(reader, load_weights(path, "class_reader", fallback=None), "class reader", path)
    reader.trained_on, reader.held_out_accuracy = entry.get("data"), entry.get("held_out_accuracy")
    return reader


def _read_text(path: Path, name: str) -> str:
    try:
        return (path / name).read_text(encoding="utf-8")
    except OSError:
        raise MagvitError(
            f"{path} has no {name}: it is not a stage-2 (transformer) checkpoint; give the run "
            "directory or checkpoint written by `magvit train transformer`"
        ) from None


def read_bundle_record(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint folder `path` resolves to and its `bundle.json`, format checked."""
    path = resolve_checkpoint(resolve_model_path(path))
    record = json.loads(_read_text(path, BUNDLE_FILE))
    if record.get("format") != FORMAT:
        raise MagvitError(f"{path / BUNDLE_FILE} has format {record.get('format')!r}, expected {FORMAT!r}")
    return path, record


def _component(data: dict, cls, what: str, path: Path):
    try:
        return structure_component(dict(data), cls)
    except Problems as exc:
        problems = "; ".join(f"{what}.{p}: {m}" if p else f"{what}: {m}" for p, m in exc.problems)
        raise MagvitError(f"bundle {path} cannot be rebuilt: {problems}") from None


def _load_into(model: nn.Module, weights: dict[str, torch.Tensor], what: str, path: Path) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise MagvitError(f"{what} weights in {path} do not fit the recorded config: {exc}") from None


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> Bundle:
    """Rebuild the transformer and tokenizer (eval mode, on `device`) from a stage-2 checkpoint.

    `path` is a run directory, its `checkpoints/last`, or a step directory.
    """
    path, record = read_bundle_record(path)
    _read_text(path, CONFIG_FILE)  # a clear message when it is missing
    raw = without_run_record(read_toml(path / CONFIG_FILE))
    experiment = validate_experiment(raw, str(path / CONFIG_FILE))
    transformer = _component(record["transformer"], TransformerComponent, "transformer", path).build()
    tokenizer = _component(record["tokenizer"], TokenizerComponent, "tokenizer", path).build()
    _load_into(transformer, load_weights(path, "model", fallback=None), "transformer", path)
    _load_into(tokenizer, load_weights(path, "tokenizer", fallback=None), "tokenizer", path)
    reader = _load_class_reader(record["class_reader"], path) if "class_reader" in record else None
    manifest = json.loads(_read_text(path, "checkpoint.json"))
    runtime = manifest.get("meta", {}).get("runtime")
    return Bundle(
        transformer=transformer.to(device).eval(),
        tokenizer=tokenizer.to(device).eval().requires_grad_(False),
        vocab=Vocabulary.from_dict(record["vocabulary"]),
        task_names=tuple(record["task_names"]),
        experiment=experiment,
        meta={**record, "step": int(manifest["step"]), "path": str(path),
              **({"runtime": runtime} if runtime else {})},
        class_reader=None if reader is None else reader.to(device).eval().requires_grad_(False),
    )
