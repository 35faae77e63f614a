"""The synthetic shape classifier behind the CG score: it learns the shape kinds, keeps its
logits through a save and load, refuses a file made for other clips, and scores CG samples."""

from __future__ import annotations

import json

import attrs
import pytest
import torch

from magvit.core.data.synthetic import SyntheticShapes
from magvit.core.shape_classifier import ShapeClassifier, ShapeClassifierConfig, accuracy
from magvit.errors import MagvitError
from magvit.workflows.shape_classifier import (
    cg_accuracy,
    evaluate_shape_classifier,
    load_shape_classifier,
    main,
    read_metadata,
    save_shape_classifier,
    train_shape_classifier,
)

# 384 training clips of 4 frames; 150 steps of 16 clips take ~5 s on one core. Held-out
# accuracy measured 0.99-1.0 over seeds 0-3 (chance is 0.25).
DATA = SyntheticShapes(frames=4, train_clips=384, eval_clips=128)


def eval_clips(data: SyntheticShapes) -> tuple[torch.Tensor, torch.Tensor]:
    items = [data.make("eval", seed=0)[i] for i in range(data.eval_clips)]
    return torch.stack([it["video"] for it in items]), torch.tensor([it["label"] for it in items])


@pytest.fixture(scope="module")
def trained():
    model = train_shape_classifier(DATA, steps=150, batch_size=16, seed=0)
    model.held_out_accuracy = evaluate_shape_classifier(model, DATA)
    return model


def test_training_learns_the_shape_kinds(trained):
    assert trained.held_out_accuracy >= 0.85
    assert not trained.training
    assert trained.trained_on == attrs.asdict(DATA)  # a plain dict, as JSON stores it
    assert trained.trained_on["frames"] == 4 and trained.trained_on["background"] == "gradient"
    assert (trained.config.num_classes, trained.config.frames, trained.config.resolution) == (4, 4, 32)
    assert 5_000 < sum(p.numel() for p in trained.parameters()) < 100_000


def test_logits_for_any_clip_length_and_size(trained):
    for shape in [(2, 3, 4, 32, 32), (1, 3, 9, 24, 24), (3, 3, 1, 8, 8)]:
        logits = trained(torch.rand(shape))
        assert logits.shape == (shape[0], 4) and logits.dtype == torch.float32
        assert torch.isfinite(logits).all()
    with pytest.raises(ValueError, match=r"expected clips \(B, 3, T, H, W\), got \(2, 3, 32, 32\)"):
        trained(torch.rand(2, 3, 32, 32))


def test_training_is_reproducible():
    small = SyntheticShapes(frames=2, train_clips=32, eval_clips=8)
    a, b, c = (train_shape_classifier(small, steps=3, batch_size=4, seed=s) for s in (5, 5, 6))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.head.weight, c.head.weight)


def test_save_and_load_keep_the_logits(trained, tmp_path):
    path = save_shape_classifier(trained, tmp_path / "shapes.safetensors")
    loaded = load_shape_classifier(path, expect=DATA)
    clips = torch.rand(3, 3, 4, 32, 32)
    assert torch.equal(loaded(clips), trained(clips))
    assert not loaded.training
    assert loaded.config == trained.config
    assert loaded.held_out_accuracy == trained.held_out_accuracy
    assert loaded.trained_on == trained.trained_on
    assert read_metadata(path)["data"]["train_clips"] == 384


@pytest.mark.parametrize("field, value", [("frames", 8), ("resolution", 16), ("num_classes", 3)])
def test_load_refuses_a_file_made_for_other_clips(trained, tmp_path, field, value):
    path = save_shape_classifier(trained, tmp_path / "shapes.safetensors")
    other = SyntheticShapes(**{"frames": 4, field: value})
    with pytest.raises(MagvitError) as caught:
        load_shape_classifier(path, expect=other)
    message = str(caught.value)
    assert f"{field}={getattr(DATA, field)} but the data has {field}={value}" in message
    assert "python -m magvit.workflows.shape_classifier --out PATH --data-json" in message
    assert load_shape_classifier(path).config.frames == 4  # without `expect` it loads


def test_load_refuses_other_files(tmp_path):
    with pytest.raises(MagvitError, match="no shape classifier at .*missing.safetensors; make one"):
        load_shape_classifier(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors")
    with pytest.raises(MagvitError, match="junk.safetensors is not a readable safetensors file"):
        load_shape_classifier(junk)


def test_cg_accuracy_scores_requested_labels(trained):
    videos, labels = eval_clips(DATA)
    assert cg_accuracy(trained, videos, labels) == accuracy(trained, videos, labels) >= 0.85
    assert cg_accuracy(trained, videos, (labels + 1) % 4) <= 0.1
    assert cg_accuracy(trained, videos[:4], labels[:4].tolist()) in {0.0, 0.25, 0.5, 0.75, 1.0}
    with pytest.raises(MagvitError, match=r"CG labels must be in 0..3 .*got \[-1, 0\]"):
        cg_accuracy(trained, videos[:2], torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="2 clips but 3 labels"):
        cg_accuracy(trained, videos[:2], torch.tensor([0, 1, 2]))


def test_unlabelled_data_is_refused():
    with pytest.raises(MagvitError, match="needs a labelled dataset .* num_classes=0"):
        train_shape_classifier(SyntheticShapes(num_classes=0), steps=1)


def test_main_trains_saves_and_prints_the_accuracy(tmp_path, capsys):
    out = tmp_path / "made" / "shapes.safetensors"
    data = {"frames": 2, "train_clips": 16, "eval_clips": 8, "background": "flat"}
    score = main(["--out", str(out), "--steps", "2", "--batch-size", "4", "--no-progress",
                  "--threads", "1", "--data-json", json.dumps(data)])
    assert f"held-out accuracy {score:.4f} on 8 eval clips; wrote {out}" in capsys.readouterr().out
    loaded = load_shape_classifier(out, expect=SyntheticShapes(**data))
    assert loaded.trained_on["background"] == "flat" and loaded.held_out_accuracy == score
    with pytest.raises(SystemExit):
        main(["--out", str(out), "--data-json", '{"colour": 1}'])
    assert "--data-json" in capsys.readouterr().err


def test_a_fresh_classifier_config_round_trips():
    config = ShapeClassifierConfig(num_classes=2, frames=16, resolution=64, width=8)
    assert ShapeClassifierConfig.from_dict(config.to_dict()) == config
    assert ShapeClassifier(config)(torch.rand(1, 3, 2, 64, 64)).shape == (1, 2)


def test_the_bundled_file_matches_clips_of_a_data_field_added_after_it_was_saved(
        trained, tmp_path, monkeypatch):
    """A file saved before `grid` existed was trained on grid = 0 (the old clips): it still scores
    those clips, not grid-aligned ones, and a field the data no longer has matches nothing."""
    import copy

    import magvit.workflows.shape_classifier as module

    old = copy.deepcopy(trained)
    old.trained_on = {k: v for k, v in attrs.asdict(DATA).items() if k != "grid"}
    monkeypatch.setattr(module, "BUNDLED", save_shape_classifier(old, tmp_path / "old.safetensors"))
    assert "grid" not in read_metadata(module.BUNDLED)["data"]
    found = module.classifier_for(attrs.evolve(DATA, train_clips=9))  # split sizes do not count
    assert isinstance(found, ShapeClassifier) and found.config == trained.config
    assert module.classifier_for(attrs.evolve(DATA, grid=4)) is None
    assert module.classifier_for(attrs.evolve(DATA, frames=8)) is None

    gone = copy.deepcopy(trained)
    gone.trained_on = {**attrs.asdict(DATA), "retired_field": 1}
    monkeypatch.setattr(module, "BUNDLED", save_shape_classifier(gone, tmp_path / "gone.safetensors"))
    assert module.classifier_for(DATA) is None
