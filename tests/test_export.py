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
        "README.md", "bundle.json", "checkpoint.json", "config.json", "config.resolved.toml",
        "model.safetensors", "state.pt", "tokenizer.safetensors"]
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


def test_export_writes_a_model_card_and_config_json(tmp_path):
    import json

    source = save_tiny_bundle(tmp_path / "run")
    (tmp_path / "run" / "command.txt").write_text("magvit train transformer tiny --set train.steps=4\n")
    (tmp_path / "run" / "eval.json").write_text(json.dumps({"masked_token_ce": {"fp": 3.25, "cg": 4.5}}))
    assert main(["export", str(source), str(tmp_path / "model")]) == 0
    model = tmp_path / "model"
    config = json.loads((model / "config.json").read_text())
    bundle = load_bundle(model)
    assert config["model_type"] == "magvit" and config["step"] == bundle.meta["step"]
    assert config["task_names"] == list(bundle.task_names)
    assert config["parameters"]["transformer"] == sum(p.numel() for p in bundle.transformer.parameters())
    card = (model / "README.md").read_text()
    assert card.startswith("# ") and "Pipeline.from_pretrained" in card
    assert "| fp | 3.250 |" in card and "| cg | 4.500 |" in card
    assert "magvit train transformer tiny --set train.steps=4" in card
    assert f"| training steps | {bundle.meta['step']} " in card


def test_from_pretrained_loads_a_folder_and_a_hub_id_from_the_local_cache(tmp_path, monkeypatch):
    import shutil

    import pytest

    pytest.importorskip("huggingface_hub")
    source = save_tiny_bundle(tmp_path / "run")
    assert main(["export", str(source), str(tmp_path / "model")]) == 0
    reference = Pipeline.from_checkpoint(source).generate("fp", random_clip(), seed=5)

    from_folder = Pipeline.from_pretrained(tmp_path / "model").generate("fp", random_clip(), seed=5)
    assert torch.equal(from_folder.tokens, reference.tokens)

    # a hub cache as huggingface_hub lays it out: models--owner--name/{refs/main, snapshots/<sha>/}
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-magvit"
    shutil.copytree(tmp_path / "model", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network: the cache only
    from_hub = Pipeline.from_pretrained("someone/tiny-magvit", cache_dir=tmp_path / "hub")
    assert torch.equal(from_hub.generate("fp", random_clip(), seed=5).tokens, reference.tokens)

    from magvit.errors import MagvitError

    with pytest.raises(MagvitError, match="cannot get 'someone/missing' from the hub"):
        Pipeline.from_pretrained("someone/missing", cache_dir=tmp_path / "hub")
    with pytest.raises(MagvitError, match="neither a folder nor a hub id"):
        Pipeline.from_pretrained("not a model")


def test_export_carries_the_training_runtime_into_checkpoint_json_and_the_card(tmp_path):
    import json

    source = save_tiny_bundle(tmp_path / "run")
    bundle = load_bundle(source)
    assert "runtime" not in bundle.meta  # this fixture's checkpoint records none
    runtime = {"threads": 2, "cpu_capability": "AVX2", "malloc": "keep (glibc: no mmap blocks, no trimming)"}
    trained = save_checkpoint(tmp_path / "trained", 5, weights={"model": bundle.transformer.state_dict(),
                                                                "tokenizer": bundle.tokenizer.state_dict()},
                              state={}, files={f.name: f.read_text() for f in source.iterdir()
                                               if f.suffix in (".json", ".toml") and f.name != "checkpoint.json"},
                              meta={"bundle": "magvit-transformer-bundle/1", "runtime": runtime})
    assert load_bundle(trained).meta["runtime"] == runtime
    assert main(["export", str(trained), str(tmp_path / "slim")]) == 0
    assert main(["export", str(tmp_path / "slim"), str(tmp_path / "again")]) == 0
    for folder in (tmp_path / "slim", tmp_path / "again"):
        manifest = json.loads((folder / "checkpoint.json").read_text())
        assert manifest["meta"] == {"bundle": "magvit-transformer-bundle/1", "runtime": runtime}
        assert "runtime" not in json.loads((folder / "bundle.json").read_text())
        assert "runtime" not in json.loads((folder / "config.json").read_text())
        assert ("| trained with | 2 thread(s), AVX2 CPU kernels, malloc: keep (glibc: no mmap blocks, "
                "no trimming) |") in (folder / "README.md").read_text()
    # a source without the record gives a bundle without it, and a card without the row
    assert main(["export", str(source), str(tmp_path / "plain")]) == 0
    assert json.loads((tmp_path / "plain" / "checkpoint.json").read_text())["meta"] == {
        "bundle": "magvit-transformer-bundle/1"}
    assert "| trained with |" not in (tmp_path / "plain" / "README.md").read_text()
