"""Class guidance: a task given a class and no pixels (CG) runs with classifier-free guidance
toward its class unless its decoder brings guidance of its own; tasks with pixels never do."""

from __future__ import annotations

import math

import pytest
import torch
from generation_fixtures import random_clip, tiny_bundle

from magvit.errors import MagvitError
from magvit.pipeline import Pipeline
from magvit.registry.experiment import validate_experiment
from magvit.workflows import pipeline as pipeline_module

FAST = {"decoder": {"kind": "commit", "steps": 4}}


@pytest.fixture(scope="module")
def pipe():
    return Pipeline(tiny_bundle(validate_experiment(FAST)))


def test_cg_is_guided_by_default_and_equals_the_same_guidance_given_to_the_decoder(pipe):
    assert pipe.class_guidance == pipeline_module.CLASS_GUIDANCE == 3.0   # the tiny model has 3 classes
    guided = pipe.generate("cg", None, label=[0, 1, 2], seed=4)
    assert guided.guidance_scale == 3.0 and guided.video.shape == (3, 3, 8, 16, 16)
    by_hand = pipe.generate("cg", None, label=[0, 1, 2], seed=4, class_guidance=0,
                            decoder=pipe.make_decoder(None, guidance_scale=3.0))
    assert torch.equal(guided.tokens, by_hand.tokens) and torch.equal(guided.video, by_hand.video)
    plain = pipe.generate("cg", None, label=[0, 1, 2], seed=4, class_guidance=0)
    assert plain.guidance_scale == 0.0 and not torch.equal(plain.tokens, guided.tokens)
    assert pipe.decoder.guidance_scale == 0.0                            # the pipeline's decoder is left as it was


def test_tasks_with_pixels_and_decoders_with_their_own_guidance_are_left_alone(pipe):
    clips = random_clip(2, seed=1)
    for task, label in (("cfp", 1), ("opv", None), ("fp", None)):
        assert pipe.guided_decoder(task, pipe.decoder) is pipe.decoder
        result = pipe.generate(task, clips, label=label, seed=0, class_search=0, refine_steps=0)
        off = pipe.generate(task, clips, label=label, seed=0, class_search=0, refine_steps=0, class_guidance=0)
        assert result.guidance_scale == 0.0 and torch.equal(result.tokens, off.tokens)
    own = pipe.make_decoder(None, guidance_scale=1.5)
    assert pipe.guided_decoder("cg", own) is own
    assert pipe.generate("cg", None, label=2, seed=0, decoder=own).guidance_scale == 1.5
    assert pipe.guided_decoder("cg", pipe.decoder, 5).guidance_scale == 5.0
    assert pipe.guided_decoder("cg", pipe.decoder, 0) is pipe.decoder


def test_cg_without_a_class_runs_unguided(pipe):
    # guidance toward the unconditional class would run a second prefix for the same logits
    assert pipe.guided_decoder("cg", pipe.decoder, label=-1) is pipe.decoder
    assert pipe.guided_decoder("cg", pipe.decoder, label=[-1, -1]) is pipe.decoder
    assert pipe.guided_decoder("cg", pipe.decoder, label=[-1, 2]).guidance_scale == 3.0  # one has a class
    none = pipe.generate("cg", None, label=[-1, -1], seed=2)
    off = pipe.generate("cg", None, label=[-1, -1], seed=2, class_guidance=0)
    assert none.guidance_scale == 0.0 and none.video.shape == (2, 3, 8, 16, 16)
    assert torch.equal(none.tokens, off.tokens) and torch.equal(none.video, off.video)
    assert pipe.generate("cg", None, label=[-1, 2], seed=2).guidance_scale == 3.0


def test_a_model_without_classes_has_no_class_guidance():
    bundle = tiny_bundle(validate_experiment(FAST))
    bundle.vocab = type(bundle.vocab)(512, num_classes=0, task_names=bundle.task_names)
    assert Pipeline(bundle).class_guidance == 0.0
    assert Pipeline(bundle, class_guidance=2).class_guidance == 2.0


def test_bad_class_guidance_names_the_fix(pipe):
    for bad in (-1, True, math.nan, math.inf, "3"):
        with pytest.raises(MagvitError, match=r"class_guidance must be a number of at least 0 \(the classifier-free "
                                              r"guidance scale for class-only tasks such as cg; 0 = off\), got "):
            pipe.generate("cg", None, label=0, class_guidance=bad)
    with pytest.raises(MagvitError, match=r"got -0.5"):
        Pipeline(tiny_bundle(validate_experiment(FAST)), class_guidance=-0.5)
