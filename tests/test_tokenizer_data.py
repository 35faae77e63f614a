"""Stage 2 warns when its clips are not drawn like the clips its tokenizer was trained on."""

from __future__ import annotations

import tomli_w
import torch

import magvit
from magvit.core.training import DistContext, save_checkpoint
from magvit.registry.experiment import validate_experiment
from magvit.workflows.tokenizer_data import data_differences, data_warning, trained_data
from magvit.workflows.transformer_stage import TransformerStage

TOKENIZER = dict(kind="vq3d", preset="tiny", codebook_size=64, embedding_dim=8)
DATA = {"kind": "synthetic", "frames": 4, "resolution": 16, "num_classes": 4, "train_clips": 16,
        "eval_clips": 4}


def tokenizer_run(root, data: dict | None):
    """A (random) tiny tokenizer saved as a stage-1 run saves it, with its [data] when given."""
    torch.manual_seed(0)
    config = {k: v for k, v in TOKENIZER.items() if k != "kind"}
    tokenizer = magvit.registries().tokenizers.create("vq3d", **config)
    files = {"config.resolved.toml": tomli_w.dumps({"data": data, "tokenizer": TOKENIZER})} if data else None
    save_checkpoint(root, 1, weights={"model": tokenizer.state_dict()}, state={}, files=files)
    return root


def stage2(tokenizer_dir, **data):
    return validate_experiment({
        "run": {"name": "t", "seed": 3, "device": "cpu"},
        "data": {**DATA, **data},
        "tokenizer": {**TOKENIZER, "checkpoint": str(tokenizer_dir)},
        "transformer": {"kind": "bert", "preset": "tiny", "num_layers": 1, "hidden": 32, "heads": 2, "mlp": 64},
        "tasks": {"fp": {}},
        "train": {"steps": 2, "batch_size": 2, "warmup_steps": 1},
    })


def test_the_differences_name_each_drawing_key_with_both_values(tmp_path):
    run = tokenizer_run(tmp_path / "tok", {**DATA, "min_radius": 0.18, "max_radius": 0.26})
    assert trained_data(run).config.min_radius == 0.18
    exp = stage2(run, train_clips=64, eval_clips=8)  # other sizes: the same clips drawn
    assert data_differences(exp) == ["data.max_radius: 0.16 here, 0.26 in the tokenizer's run",
                                     "data.min_radius: 0.1 here, 0.18 in the tokenizer's run"]
    warning = data_warning(exp)
    assert warning.startswith("warning: stage 2 trains on other clips than its tokenizer "
                              f"(tokenizer.checkpoint = {str(run)!r}): data.max_radius")
    assert warning.endswith("Set the same [data] as the tokenizer's run unless that is what you want.")
    same = stage2(run, train_clips=64, min_radius=0.18, max_radius=0.26)
    assert data_differences(same) == [] and data_warning(same) is None


def test_another_dataset_kind_is_one_difference(tmp_path):
    run = tokenizer_run(tmp_path / "tok", {"kind": "video_folder", "path": str(tmp_path), "frames": 4,
                                          "resolution": 16})
    assert data_differences(stage2(run)) == ["data.kind: 'synthetic' here, 'video_folder' in the tokenizer's run"]


def test_a_checkpoint_without_a_record_of_its_data_gives_no_warning(tmp_path):
    run = tokenizer_run(tmp_path / "tok", None)
    assert trained_data(run) is None and trained_data(tmp_path / "missing") is None
    assert data_differences(stage2(run)) == [] and data_warning(stage2(run)) is None


def test_the_stage_prints_the_warning_once_it_has_the_tokenizer(tmp_path, capsys):
    run = tokenizer_run(tmp_path / "tok", {**DATA, "palette": 6})
    TransformerStage(stage2(run), tmp_path / "s2", DistContext())
    err = capsys.readouterr().err
    assert err.count("warning: stage 2 trains on other clips") == 1
    assert "data.palette: 0 here, 6 in the tokenizer's run" in err
    TransformerStage(stage2(run, palette=6), tmp_path / "s2b", DistContext())
    assert "warning" not in capsys.readouterr().err

