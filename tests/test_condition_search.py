"""The class search: a task with a class-conditional twin (FP's is CFP) runs as the twin for every
class and keeps, per clip, the candidate that best redraws the given pixels."""

from __future__ import annotations

import pytest
import torch
from generation_fixtures import random_clip, tiny_bundle

from magvit.core import condition_fit
from magvit.core.condition_search import best_candidates, given_pixel_error
from magvit.errors import MagvitError
from magvit.pipeline import Pipeline
from magvit.registry.experiment import validate_experiment
from magvit.workflows import pipeline as pipeline_module

FAST = {"decoder": {"kind": "commit", "steps": 4}}


# -- scoring and picking ---------------------------------------------------------------------------
def test_the_error_is_the_mean_square_over_the_given_pixels_only():
    condition = torch.rand(3, 3, 4, 6, 6, generator=torch.Generator().manual_seed(0))
    given = torch.zeros(4, 6, 6, dtype=torch.bool)
    given[0] = True                                            # the first frame is given
    video = condition.clone()
    video[:, :, 1:] = 1 - video[:, :, 1:]                      # nothing given differs: error 0
    video[1, :, 0] += 0.1                                      # clip 1: every given pixel off by 0.1
    video[2, 0, 0, 0, 0] += 0.6                                # clip 2: one value of 3 * 36 off by 0.6
    errors = given_pixel_error(video.bfloat16(), condition, given)
    assert errors.shape == (3,) and errors.dtype == torch.float32
    expect = torch.tensor([0.0, 0.01, 0.36 / 108])
    assert torch.allclose(errors, expect, atol=2e-3)
    exact = given_pixel_error(video, condition, given)
    assert torch.allclose(exact, expect, atol=1e-6)
    with pytest.raises(MagvitError, match="the task gives no pixels, so there is nothing to score candidates by"):
        given_pixel_error(video, condition, torch.zeros_like(given))


def test_the_lowest_error_wins_ties_go_first_and_nan_is_refused():
    errors = torch.tensor([[0.3, 0.1, 0.2], [0.5, 0.5, 0.7], [0.0, 0.0, 0.0]])
    assert best_candidates(errors).tolist() == [1, 0, 0]
    with pytest.raises(MagvitError, match="not finite; the decoded candidates hold NaN or infinite pixels"):
        best_candidates(torch.tensor([[0.1, float("nan")]]))
    with pytest.raises(MagvitError, match=r"expected errors shaped \(clips, candidates\), got \(3,\)"):
        best_candidates(torch.rand(3))


def test_picking_follows_the_candidates_when_they_are_shuffled():
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        errors = torch.rand(5, 7, generator=gen)
        order = torch.randperm(7, generator=gen)
        picked = best_candidates(errors)
        assert torch.equal(order[best_candidates(errors[:, order])], picked)
        assert torch.equal(errors.gather(1, picked[:, None])[:, 0], errors.min(1).values)


# -- in the pipeline ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipe():
    return Pipeline(tiny_bundle(validate_experiment(FAST)))


def test_fp_is_searched_through_cfp_and_nothing_else_is(pipe):
    assert pipe.class_search == pipeline_module.CLASS_SEARCH == 2   # the tiny model has 3 classes
    assert pipe.class_twin("fp") == "cfp"
    assert [pipe.class_twin(name) for name in ("cg", "opv", "cfp")] == [None, None, None]
    result = pipe.generate("opv", random_clip(2), seed=0)
    assert (result.class_search, result.classes) == (0, None)       # no twin: generated as it was


def test_the_kept_candidate_is_the_twin_sample_that_best_redraws_the_given_frame(pipe):
    clips = random_clip(2, seed=3)
    found = pipe.generate("fp", clips, seed=5, refine_steps=0, batch_size=2)
    assert found.task == "fp" and found.class_search == 2
    assert found.video.shape == clips.shape and found.tokens.shape == (2, 4, 4, 4)
    # the same draws by hand: every clip as CFP under classes 0, 0, 1, 1, 2, 2, in one batch
    labels = torch.arange(3).repeat_interleave(2).repeat(2)
    tried = pipe.generate("cfp", clips.repeat_interleave(6, dim=0), label=labels, seed=5, refine_steps=0,
                          class_search=0, batch_size=12)
    errors = given_pixel_error(tried.video, tried.condition, tried.pixel_mask).view(2, 6)
    rows = torch.arange(2) * 6 + errors.argmin(1)
    assert torch.equal(found.tokens, tried.tokens[rows]) and torch.equal(found.video, tried.video[rows])
    assert torch.equal(found.classes, labels[rows])
    assert torch.equal(found.condition, tried.condition[rows]) and torch.equal(found.pixel_mask, tried.pixel_mask)
    kept = given_pixel_error(found.video, found.condition, found.pixel_mask)
    assert bool((kept[:, None] <= errors).all())                    # no candidate redraws the frame better


def test_the_condition_fit_runs_on_the_kept_candidates(pipe):
    clips = random_clip(2, seed=3)
    plain = pipe.generate("fp", clips, seed=5, refine_steps=0, batch_size=2)
    fitted = pipe.generate("fp", clips, seed=5, batch_size=2)
    assert (fitted.refine_steps, fitted.class_search) == (condition_fit.STEPS, 2)
    tokens, video = condition_fit.fit_to_condition(pipe.tokenizer, plain.tokens, plain.condition,
                                                   plain.pixel_mask, steps=condition_fit.STEPS)
    assert torch.equal(fitted.tokens, tokens) and torch.allclose(fitted.video, video)
    assert torch.equal(fitted.classes, plain.classes)


def test_each_clip_is_encoded_once_and_the_fit_batches_the_kept_clips(pipe, monkeypatch):
    """The candidates share their clip's condition tokens (one encode per clip, not one per
    candidate), and the fit runs on the kept clips in batches of its own size: on a CPU the
    search holds one clip's candidates at a time, the fit takes the clips together."""
    encoded, fitted = [], []
    encode, fit = pipe.tokenizer.encode, condition_fit.fit_to_condition
    monkeypatch.setattr(pipe.tokenizer, "encode", lambda video: encoded.append(video.shape[0]) or encode(video))
    monkeypatch.setattr(condition_fit, "fit_to_condition",
                        lambda tokenizer, tokens, *a, **k: fitted.append(tokens.shape[0]) or fit(tokenizer, tokens, *a, **k))
    clips = random_clip(3, seed=4)
    auto = pipe.generate("fp", clips, seed=1, batch_size="auto")
    assert (encoded, fitted) == ([1, 1, 1], [3])               # 6 candidates a clip fill the CPU's 8 rows
    encoded.clear(), fitted.clear()
    two = pipe.generate("fp", clips, seed=1, batch_size=2)
    assert (encoded, fitted) == ([2, 1], [2, 1])
    assert auto.video.shape == two.video.shape == clips.shape and auto.classes.shape == (3,)


def test_off_it_is_plain_fp_and_samples_and_batches_are_searched_one_clip_at_a_time(pipe):
    clips = random_clip(3, seed=2)
    off = pipe.generate("fp", clips, seed=0, class_search=0)
    plain = Pipeline(tiny_bundle(validate_experiment(FAST)), class_search=0).generate("fp", clips, seed=0)
    assert (off.class_search, off.classes) == (0, None)
    assert torch.equal(off.video, plain.video) and torch.equal(off.tokens, plain.tokens)
    many = pipe.generate("fp", clips, seed=0, samples=2, class_search=1, batch_size="auto")
    assert many.video.shape == (6, 3, 8, 16, 16) and many.classes.shape == (6,)
    assert set(many.classes.tolist()) <= {0, 1, 2} and many.class_search == 1
    again = pipe.generate("fp", clips, seed=0, samples=2, class_search=1, batch_size="auto")
    assert torch.equal(many.video, again.video)                      # seeded


def test_a_model_without_classes_has_nothing_to_search():
    bundle = tiny_bundle(validate_experiment(FAST))
    bundle.vocab = type(bundle.vocab)(512, num_classes=0, task_names=bundle.task_names)
    bare = Pipeline(bundle)
    assert bare.class_search == 0 and bare.class_twin("fp") is None
    assert Pipeline(bundle, class_search=3).class_twin("fp") is None


def test_bad_class_searches_and_empty_batches_name_the_fix(pipe):
    for bad in (-1, True, 1.5):
        with pytest.raises(MagvitError, match=r"class_search must be a whole number of at least 0 "
                                              r"\(candidates per class; 0 = off\), got "):
            pipe.generate("fp", random_clip(), class_search=bad)
    with pytest.raises(MagvitError, match=r"got -2"):
        Pipeline(tiny_bundle(validate_experiment(FAST)), class_search=-2)
    with pytest.raises(MagvitError, match=r"expected clips shaped \(B, 3, 8, 16, 16\) \(the model's clip size, "
                                          r"B at least 1\), got \(0, 3, 8, 16, 16\)"):
        pipe.generate("fp", torch.zeros(0, 3, 8, 16, 16))
