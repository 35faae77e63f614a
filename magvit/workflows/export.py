"""Slim copies of stage-2 checkpoints for sharing: the weights generation needs, a `config.json`
and a model card (`README.md`), nothing else.

A training checkpoint also holds the optimiser, schedulers and RNG states (about twice the
weights); an exported bundle keeps the transformer and tokenizer weights, `bundle.json` and the
resolved experiment, and loads anywhere a checkpoint is taken.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from magvit.errors import MagvitError
from magvit.workflows.bundle import load_bundle, save_bundle
from magvit.workflows.model_card import config_json, model_card


def export_bundle(source: str | Path, target: str | Path, *, overwrite: bool = False) -> Path:
    """Write the slim bundle of `source` (a run dir or checkpoint) as the directory `target`."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise MagvitError(f"{target} is a file; give the folder to write")
    if target.exists() and not overwrite:
        raise MagvitError(f"{target} exists; choose another folder or pass --overwrite")
    bundle = load_bundle(source)
    read_from = Path(bundle.meta["path"]).resolve()
    if target.resolve() in (read_from, *read_from.parents):
        raise MagvitError(f"{target} holds the checkpoint being exported ({read_from}); writing "
                          "there would destroy it. Choose another folder")
    record = {k: v for k, v in bundle.meta.items() if k not in ("step", "path")}
    parameters = {name: sum(p.numel() for p in model.parameters())
                  for name, model in (("transformer", bundle.transformer), ("tokenizer", bundle.tokenizer))}
    extra = {"config.json": config_json(record, bundle.meta["step"], parameters),
             "README.md": model_card(bundle, target, parameters)}
    with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) as tmp:
        written = save_bundle(tmp, bundle.meta["step"], transformer=bundle.transformer,
                              tokenizer=bundle.tokenizer, record=record,
                              experiment=bundle.experiment, keep=None, extra_files=extra)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(written), str(target))
    return target
