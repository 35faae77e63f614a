"""The sample search: for a task with given pixels that runs no class search, N samples per clip
and the one that best redraws the given pixels kept (`Pipeline(sample_search=N)`)."""

from __future__ import annotations

import json

import pytest
import torch
from generation_fixtures import CLIP, random_clip, save_tiny_bundle, tiny_bundle

from magvit.cli.main import main
from magvit.core import condition_fit
from magvit.core.condition_search import given_pixel_error
from magvit.core.video_io import write_video
from magvit.errors import MagvitError
from magvit.pipeline import Pipeline
from magvit.registry.experiment import validate_experiment
from magvit.workflows import pipeline as pipeline_module

FAST = {"decoder": {"kind": "commit", "steps": 4}}
DATA = {"data": {"kind": "synthetic", "frames": CLIP[0], "resolution": CLIP[1], "num_classes": 3}}


TASKS = ("fp", "fi", "opc", "opv", "ipc", "ipd", "cg", "cfp")


@pytest.fixture(scope="module")
def pipe():
    return Pipeline(tiny_bundle(validate_experiment(FAST), tasks=TASKS))


def by_hand(pipe, task, clips, samples, seed, label=None):
    """Every clip repeated `samples` times in one batch, generated without any search or fit: the
    candidates the search draws. Returns them and their given-pixel errors, (clips, samples)."""
    labels = None if label is None else torch.as_tensor(label).repeat_interleave(samples)
    tried = pipe.generate(task, clips.repeat_interleave(samples, dim=0), label=labels, seed=seed,
                          refine_steps=0, class_search=0, sample_search=1, batch_size=clips.shape[0] * samples)
    errors = given_pixel_error(tried.video, tried.condition, tried.pixel_mask).view(clips.shape[0], samples)
    return tried, errors


def test_it_is_off_by_default_and_one_sample_is_the_plain_result(pipe):
    assert pipe.sample_search == pipeline_module.SAMPLE_SEARCH == 1
    clips = random_clip(2, seed=1)
    plain = pipe.generate("opv", clips, seed=3)
    one = Pipeline(tiny_bundle(validate_experiment(FAST), tasks=TASKS), sample_search=1).generate(
        "opv", clips, seed=3)
    assert plain.sample_search == one.sample_search == 1
    assert torch.equal(plain.tokens, one.tokens) and torch.equal(plain.video, one.video)


@pytest.mark.parametrize("task", ["opv", "ipc", "fi"])
def test_the_kept_sample_is_the_one_that_best_redraws_the_given_pixels(pipe, task):
    clips = random_clip(2, seed=3)
    found = pipe.generate(task, clips, seed=5, refine_steps=0, sample_search=3, batch_size=2)
    assert (found.task, found.sample_search, found.refine_steps) == (task, 3, 0)
    assert found.video.shape == clips.shape and found.tokens.shape == (2, 4, 4, 4)
    assert (found.class_search, found.classes) == (0, None)
    tried, errors = by_hand(pipe, task, clips, 3, seed=5)
    rows = torch.arange(2) * 3 + errors.argmin(1)
    assert torch.equal(found.tokens, tried.tokens[rows]) and torch.equal(found.video, tried.video[rows])
    assert torch.equal(found.condition, tried.condition[rows]) and torch.equal(found.pixel_mask, tried.pixel_mask)
    kept = given_pixel_error(found.video, found.condition, found.pixel_mask)
    assert bool((kept[:, None] <= errors).all())                    # no sample redraws the pixels better
    assert not torch.equal(tried.tokens[0], tried.tokens[1])        # the samples differ: there was a choice


def test_a_class_conditional_task_keeps_each_clip_s_label(pipe):
    clips = random_clip(2, seed=6)
    found = pipe.generate("cfp", clips, label=[2, 0], seed=4, refine_steps=0, sample_search=2, batch_size=2)
    tried, errors = by_hand(pipe, "cfp", clips, 2, seed=4, label=[2, 0])
    rows = torch.arange(2) * 2 + errors.argmin(1)
    assert found.sample_search == 2 and torch.equal(found.tokens, tried.tokens[rows])


def test_the_condition_fit_runs_on_the_kept_samples_only(pipe, monkeypatch):
    clips = random_clip(3, seed=2)
    plain = pipe.generate("opc", clips, seed=7, refine_steps=0, sample_search=2)
    fitted_rows = []
    fit = condition_fit.fit_to_condition
    monkeypatch.setattr(condition_fit, "fit_to_condition", lambda tokenizer, tokens, *a, **k:
                        fitted_rows.append(tokens.shape[0]) or fit(tokenizer, tokens, *a, **k))
    fitted = pipe.generate("opc", clips, seed=7, sample_search=2)
    assert sum(fitted_rows) == 3                                    # the 3 kept, not the 6 tried
    assert (fitted.refine_steps, fitted.sample_search) == (condition_fit.STEPS, 2)
    tokens, video = fit(pipe.tokenizer, plain.tokens, plain.condition, plain.pixel_mask, steps=condition_fit.STEPS)
    assert torch.equal(fitted.tokens, tokens) and torch.allclose(fitted.video, video)


def test_tasks_without_given_pixels_or_with_a_class_search_are_left_alone(pipe):
    cg = pipe.generate("cg", None, label=[0, 1], seed=0, sample_search=3)
    assert cg.sample_search == 1 and cg.video.shape == (2, 3, *CLIP)
    clips = random_clip(2, seed=8)
    searched = pipe.generate("fp", clips, seed=0, refine_steps=0, sample_search=3)
    by_class = pipe.generate("fp", clips, seed=0, refine_steps=0)
    assert (searched.sample_search, searched.class_search) == (1, pipeline_module.CLASS_SEARCH)
    assert torch.equal(searched.tokens, by_class.tokens)            # the class search's count rules FP
    sampled = pipe.generate("fp", clips, seed=0, refine_steps=0, class_search=0, sample_search=3)
    assert (sampled.sample_search, sampled.class_search, sampled.classes) == (3, 0, None)


def test_batches_samples_and_seeds(pipe):
    clips = random_clip(3, seed=9)
    auto = pipe.generate("ipd", clips, seed=1, samples=2, sample_search=2, batch_size="auto")
    again = pipe.generate("ipd", clips, seed=1, samples=2, sample_search=2, batch_size="auto")
    assert auto.video.shape == (6, 3, *CLIP) and torch.equal(auto.video, again.video)   # seeded
    one_by_one = pipe.generate("ipd", clips, seed=1, refine_steps=0, sample_search=2, batch_size=1)
    assert one_by_one.tokens.shape == (3, 4, 4, 4) and one_by_one.batch_size == 1
    # "auto" on a CPU: 8 candidate rows at once, so 4 of the 6 clip-samples (2 candidates each)
    assert auto.batch_size == 4
    repeated = pipe.generate("ipd", clips, seed=1, samples=2, sample_search=2, batch_size=auto.batch_size)
    assert torch.equal(repeated.video, auto.video)                   # the recorded size repeats the call
    first = pipe.generate("ipd", clips[:1], seed=1, refine_steps=0, sample_search=2, batch_size=1)
    assert torch.equal(first.tokens[0], one_by_one.tokens[0])        # a batch never depends on the next


def test_bad_sample_searches_name_the_fix(pipe):
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(MagvitError, match=r"sample_search must be a whole number of at least 1 \(samples per "
                                              r"clip, the one that best redraws the given pixels kept; 1 = no "
                                              r"search\), got "):
            pipe.generate("opv", random_clip(), sample_search=bad)
    with pytest.raises(MagvitError, match=r"sample_search must be .* got 0$"):
        Pipeline(tiny_bundle(validate_experiment(FAST)), sample_search=0)


def test_the_cli_takes_prints_and_records_it(tmp_path, capsys):
    model = save_tiny_bundle(tmp_path / "run", {**DATA, **FAST})
    clip = tmp_path / "in.mp4"
    write_video(clip, random_clip(), fps=4)
    capsys.readouterr()
    args = ["generate", "--task", "opv", "--checkpoint", str(model), "--input", str(clip)]
    assert main([*args, "--output", str(tmp_path / "a.mp4"), "--sample-search", "2"]) == 0
    assert "; sample search: the best of 2 samples per clip" in capsys.readouterr().out
    assert main([*args, "--output", str(tmp_path / "b.mp4")]) == 0
    assert "sample search" not in capsys.readouterr().out
    assert main([*args, "--output", str(tmp_path / "c.mp4"), "--sample-search", "0"]) == 2
    assert "argument --sample-search: must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "c.mp4").exists()
    out = tmp_path / "demo"
    assert main(["demo", "--checkpoint", str(model), "--output", str(out), "--clips", "1", "--refine-steps", "0",
                 "--sample-search", "2"]) == 0
    table = " ".join(capsys.readouterr().out.split())
    assert ("opv, cfp: the best of 2 samples per clip, by how well they redraw the given pixels "
            "(--sample-search; 1 = off).") in table                   # fp runs the class search, cg has no pixels
    results = json.loads((out / "results.json").read_text())
    assert (results["sample_search"], results["sample_searched"]) == (2, ["opv", "cfp"])
