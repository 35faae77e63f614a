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


def invert(clips: torch.Tensor) -> torch.Tensor:
    """A stand-in for a tokenizer's round trip that changes every pixel: the colour negative."""
    return 1 - clips


@pytest.fixture(scope="module")
def trained_on_negatives():
    # 250 steps: 0.99-1.0 on both, seeds 0-1, plain and ATEN_CPU_CAPABILITY=default (150: 0.91)
    return train_shape_classifier(DATA, steps=250, batch_size=16, seed=0, round_trip=invert,
                                  round_trip_source="negative")


def test_training_on_round_trips_knows_the_shapes_in_both(trained, trained_on_negatives):
    """Half of its clips were negatives: it classifies the held-out clips and their negatives;
    the classifier that saw clean clips only does not know the negatives (measured 0.27-0.37)."""
    videos, labels = eval_clips(DATA)
    clean = evaluate_shape_classifier(trained_on_negatives, DATA)
    negatives = evaluate_shape_classifier(trained_on_negatives, DATA, round_trip=invert)
    assert negatives == accuracy(trained_on_negatives, 1 - videos, labels)
    assert clean >= 0.9 and negatives >= 0.9, (clean, negatives)
    assert accuracy(trained, 1 - videos, labels) < negatives - 0.2
    assert trained_on_negatives.round_trip_source == "negative" and trained.round_trip_source is None


def test_each_training_clip_goes_through_the_round_trip_once():
    small = SyntheticShapes(frames=2, train_clips=24, eval_clips=8)
    calls = []

    def counting(clips):
        calls.append(clips.clone())
        return clips

    train_shape_classifier(small, steps=12, batch_size=8, seed=1, round_trip=counting)
    seen = torch.cat(calls)
    assert seen.shape[1:] == (3, 2, 32, 32) and len(calls) <= 12
    assert 8 <= len(seen) <= 24  # every clip drawn, each once
    assert len(torch.unique(seen.flatten(1), dim=0)) == len(seen)


@pytest.mark.parametrize("bad, message", [
    (lambda clips: clips[:, :, :1], r"turned clips of shape \(\d, 3, 2, 32, 32\) into \(\d, 3, 1, 32, 32\); it must keep the shape"),
    (lambda clips: clips * float("nan"), "returned NaN or infinite pixels"),
])
def test_a_round_trip_that_breaks_the_clips_is_refused(bad, message):
    small = SyntheticShapes(frames=2, train_clips=4, eval_clips=4)
    with pytest.raises(MagvitError, match=message):
        train_shape_classifier(small, steps=1, batch_size=4, seed=0, round_trip=bad)


def test_save_and_load_keep_the_round_trip_and_its_accuracy(trained_on_negatives, tmp_path):
    trained_on_negatives.held_out_roundtrip_accuracy = 0.75
    path = save_shape_classifier(trained_on_negatives, tmp_path / "neg.safetensors")
    meta = read_metadata(path)
    assert (meta["round_trip"], meta["held_out_roundtrip_accuracy"]) == ("negative", 0.75)
    loaded = load_shape_classifier(path)
    assert (loaded.round_trip_source, loaded.held_out_roundtrip_accuracy) == ("negative", 0.75)


def test_a_file_saved_before_round_trips_loads_without_them(trained, tmp_path):
    import safetensors.torch

    from magvit.workflows.shape_classifier import FORMAT, METADATA_KEY

    old = {"format": FORMAT, "config": trained.config.to_dict(), "data": attrs.asdict(DATA),
           "held_out_accuracy": 0.99}
    path = tmp_path / "old.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, path,
                                metadata={METADATA_KEY: json.dumps(old)})
    loaded = load_shape_classifier(path, expect=DATA)
    assert loaded.held_out_accuracy == 0.99
    assert loaded.round_trip_source is None and loaded.held_out_roundtrip_accuracy is None


def test_main_trains_on_the_bundled_tokenizers_round_trips(tmp_path, capsys):
    out = tmp_path / "rt.safetensors"
    data = {"frames": 8, "train_clips": 8, "eval_clips": 4, "background": "flat", "per_axis_speed": True}
    score = main(["--out", str(out), "--tokenizer", "default", "--steps", "2", "--batch-size", "4",
                  "--no-progress", "--threads", "1", "--data-json", json.dumps(data)])
    printed = capsys.readouterr().out
    loaded = load_shape_classifier(out, expect=SyntheticShapes(**data))
    assert loaded.round_trip_source == "default" and loaded.held_out_accuracy == score
    rt = loaded.held_out_roundtrip_accuracy
    assert rt in {0.0, 0.25, 0.5, 0.75, 1.0}
    assert (f"held-out accuracy {score:.4f} on 4 eval clips, {rt:.4f} on their round trips "
            f"through default; wrote {out}") in printed


@pytest.mark.parametrize("args, message", [
    (["--tokenizer", "default", "--data-json", '{"frames": 4}'],
     r"--tokenizer default takes clips of \(frames, height, width\) = \(8, 32, 32\) but the data "
     r"has \(4, 32, 32\); set frames and resolution in --data-json"),
    (["--tokenizer", "no/such/run"], "--tokenizer no/such/run: "),
])
def test_main_refuses_a_tokenizer_that_cannot_round_trip_the_data(tmp_path, capsys, args, message):
    import re

    with pytest.raises(SystemExit) as exited:
        main(["--out", str(tmp_path / "x.safetensors"), "--steps", "1", *args])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err and not (tmp_path / "x.safetensors").exists()
