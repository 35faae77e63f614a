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

import attrs

from magvit.core.tokenizer.loading import (
    DECODER_ONLY_FIELDS,
    code_differences,
    code_settings_differ,
)
from magvit.errors import MagvitError
from magvit.workflows.bundle import (
    Bundle,
    class_reader_record,
    load_bundle,
    save_bundle,
    self_contained_tokenizer,
)
from magvit.workflows.model_card import config_json, model_card
from magvit.workflows.train_tokenizer import load_tokenizer, tokenizer_component_of


def with_tokenizer(bundle: Bundle, checkpoint: str | Path) -> Bundle:
    """`bundle` with the tokenizer of a stage-1 `checkpoint` that encodes exactly its tokens (one
    trained with `codes_from` on the bundle's tokenizer): a better decoder for the same model."""
    component = tokenizer_component_of(checkpoint)
    tokenizer = load_tokenizer(component, checkpoint)
    old = bundle.meta["tokenizer"]
    new = component.to_dict()
    settings = code_settings_differ(old, new)
    if settings:
        raise MagvitError(
            f"--tokenizer {checkpoint}: its [tokenizer] settings differ from the bundle's in "
            f"{', '.join(f'{k} ({old.get(k)!r} -> {new.get(k)!r})' for k in settings)}; only "
            f"{', '.join(DECODER_ONLY_FIELDS)} may differ, or the tokens would"
        )
    differ = code_differences(bundle.tokenizer, tokenizer)
    if differ:
        raise MagvitError(
            f"--tokenizer {checkpoint}: its encoder and quantizer are not the bundle's ({len(differ)} "
            f"tensors differ, e.g. {differ[0]}), so it would encode other tokens; train it with "
            "[tokenizer] codes_from = the bundle's tokenizer run"
        )
    meta = {**bundle.meta, "tokenizer": self_contained_tokenizer(component).to_dict(),
            "tokenizer_source": str(checkpoint)}
    # The experiment's [tokenizer] now names these weights, as a stage-2 run's does.
    loaded = type(component)(component.kind, attrs.evolve(component.config, checkpoint=str(checkpoint),
                                                          codes_from=""))
    experiment = attrs.evolve(bundle.experiment, tokenizer=loaded)
    return attrs.evolve(bundle, tokenizer=tokenizer.requires_grad_(False), meta=meta, experiment=experiment)


def with_class_reader(bundle: Bundle, path: str | Path) -> Bundle:
    """`bundle` with the class reader saved at `path` (a shape classifier file, made by
    `python -m magvit.workflows.shape_classifier`) for the class search: it must be trained on the
    bundle's classes, frames and resolution, so its class ids are the transformer's."""
    from magvit.workflows.shape_classifier import check_matches, load_shape_classifier

    classes = bundle.vocab.num_classes
    if classes < 2:
        raise MagvitError(f"--class-reader {path}: this model has {classes} class(es), so there is no class "
                          "to read; a class reader serves models trained with classes")
    reader = load_shape_classifier(path)
    data = bundle.experiment.data.build() if bundle.experiment.data is not None else None
    if data is not None and all(hasattr(data, name) for name in ("num_classes", "frames", "resolution")):
        check_matches(reader.config, data, source=f"class reader {path}")
    if reader.num_classes != classes:
        raise MagvitError(f"--class-reader {path}: it reads {reader.num_classes} classes but the model has "
                          f"{classes}; train it on the model's data")
    meta = {**bundle.meta, "class_reader": class_reader_record(reader)}
    return attrs.evolve(bundle, class_reader=reader.requires_grad_(False), meta=meta)


def export_bundle(source: str | Path, target: str | Path, *, overwrite: bool = False,
                  tokenizer: str | Path | None = None, class_reader: str | Path | None = None) -> Path:
    """Write the slim bundle of `source` (a run dir or checkpoint) as the directory `target`;
    with `tokenizer`, that stage-1 checkpoint's decoder replaces the bundle's (`with_tokenizer`);
    with `class_reader`, that classifier file becomes the bundle's class reader
    (`with_class_reader`; else the source's own, if it has one, is kept)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise MagvitError(f"{target} is a file; give the folder to write")
    if target.exists() and not overwrite:
        raise MagvitError(f"{target} exists; choose another folder or pass --overwrite")
    bundle = load_bundle(source)
    if tokenizer is not None:
        bundle = with_tokenizer(bundle, tokenizer)
    if class_reader is not None:
        bundle = with_class_reader(bundle, class_reader)
    read_from = Path(bundle.meta["path"]).resolve()
    if target.resolve() in (read_from, *read_from.parents):
        raise MagvitError(f"{target} holds the checkpoint being exported ({read_from}); writing "
                          "there would destroy it. Choose another folder")
    # `runtime` stays in checkpoint.json, where the training checkpoint had it.
    record = {k: v for k, v in bundle.meta.items() if k not in ("step", "path", "runtime")}
    parameters = {name: sum(p.numel() for p in model.parameters())
                  for name, model in (("transformer", bundle.transformer), ("tokenizer", bundle.tokenizer),
                                      ("class_reader", bundle.class_reader)) if model is not None}
    extra = {"config.json": config_json(record, bundle.meta["step"], parameters),
             "README.md": model_card(bundle, target, parameters)}
    with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) as tmp:
        written = save_bundle(tmp, bundle.meta["step"], transformer=bundle.transformer,
                              tokenizer=bundle.tokenizer, record=record,
                              experiment=bundle.experiment, keep=None, extra_files=extra,
                              class_reader=bundle.class_reader, runtime=bundle.meta.get("runtime"))
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(written), str(target))
    return target
