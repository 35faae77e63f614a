"""`magvit export`: a slim bundle that generates exactly what the training checkpoint does."""

from __future__ import annotations

import torch
from generation_fixtures import random_clip, save_tiny_bundle

from magvit.cli.main import main
from magvit.core.training.checkpoint import save_checkpoint
from magvit.pipeline import Pipeline
from magvit.workflows.bundle import load_bundle


def test_export_keeps_weights_and_drops_training_state(tmp_path):
    source = save_tiny_bundle(tmp_path / "run")
    # a training checkpoint carries optimiser state beside the weights
    bundle = load_bundle(source)
    big = torch.zeros(1000, 1000)
    fat = save_checkpoint(tmp_path / "fat", 7, weights={"model": bundle.transformer.state_dict(),
                                                         "tokenizer": bundle.tokenizer.state_dict()},
                          state={"optimizer": {"moments": big}},
                          files={f.name: f.read_text() for f in source.iterdir()
                                 if f.suffix in (".json", ".toml") and f.name != "checkpoint.json"},
                          meta={"bundle": "magvit-transformer-bundle/1"})
    assert main(["export", str(fat), str(tmp_path / "slim")]) == 0
    slim = tmp_path / "slim"
    assert sorted(f.name for f in slim.iterdir()) == [
        "bundle.json", "checkpoint.json", "config.resolved.toml", "model.safetensors",
        "state.pt", "tokenizer.safetensors"]
    assert (slim / "state.pt").stat().st_size < 10_000 < (fat / "state.pt").stat().st_size
    a = Pipeline.from_checkpoint(fat).generate("fp", random_clip(), seed=3)
    b = Pipeline.from_checkpoint(slim).generate("fp", random_clip(), seed=3)
    assert torch.equal(a.tokens, b.tokens)
    assert load_bundle(slim).meta["step"] == 7


def test_export_refuses_to_overwrite(tmp_path, capsys):
    source = save_tiny_bundle(tmp_path / "run")
    (tmp_path / "out").mkdir()
    assert main(["export", str(source), str(tmp_path / "out")]) == 2
    assert "exists; choose another folder or pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(source), str(tmp_path / "out"), "--overwrite"]) == 0
