"""The condition fit: generated tokens moved, through the tokenizer's decoder, toward the given pixels."""

from __future__ import annotations

import pytest
import torch
from generation_fixtures import CLIP, LATENT, random_clip, tiny_bundle

import magvit
from magvit.core import condition_fit
from magvit.core.condition_fit import fit_to_condition
from magvit.core.tokenizer.fsq import FiniteScalarQuantizer
from magvit.core.tokenizer.lfq import LookupFreeQuantizer
from magvit.core.tokenizer.quantizer import VectorQuantizer
from magvit.errors import MagvitError
from magvit.pipeline import Pipeline
from magvit.registry.experiment import validate_experiment
from magvit.testing import check_quantizer

QUANTIZERS = {
    "fsq-odd": lambda: FiniteScalarQuantizer((3, 5, 3)),
    "fsq-even": lambda: FiniteScalarQuantizer((4, 2, 5)),
    "lfq": lambda: LookupFreeQuantizer(4),
    "vq": lambda: VectorQuantizer(24, 3),
}


def _brute_force_nearest(quantizer, points):
    """Ids of the nearest code vectors, by measuring the distance to every code."""
    table = quantizer.lookup(torch.arange(quantizer.codebook_size).view(1, -1, 1, 1))
    table = table.float().movedim(1, -1).reshape(-1, quantizer.dim)           # (codes, dim)
    rows = points.float().movedim(1, -1).reshape(-1, quantizer.dim)           # (positions, dim)
    return torch.cdist(rows, table).argmin(-1).reshape(points.shape[0], *points.shape[2:])


@pytest.mark.parametrize("name", QUANTIZERS)
def test_nearest_codes_is_the_nearest_code_vector_and_bounds_hold_the_codebook(name):
    torch.manual_seed(0)
    quantizer = QUANTIZERS[name]()
    ids = torch.randint(quantizer.codebook_size, (2, 3, 4, 4))
    assert torch.equal(quantizer.nearest_codes(quantizer.lookup(ids)), ids)
    low, high = quantizer.code_bounds()
    table = quantizer.lookup(torch.arange(quantizer.codebook_size).view(1, -1, 1, 1)).movedim(1, -1)
    table = table.reshape(-1, quantizer.dim)
    assert low.shape == high.shape == (quantizer.dim,)
    assert torch.allclose(low, table.min(0).values) and torch.allclose(high, table.max(0).values)
    # property: any point inside the box snaps to the code a search over all codes finds
    points = low.view(1, -1, 1, 1, 1) + torch.rand(3, quantizer.dim, 2, 3, 3) * (high - low).view(1, -1, 1, 1, 1)
    assert torch.equal(quantizer.nearest_codes(points), _brute_force_nearest(quantizer, points))


def test_fsq_snaps_points_outside_the_box_to_its_edge():
    quantizer = FiniteScalarQuantizer((4, 5))
    far = torch.tensor([-7.0, 9.0]).view(1, 2, 1, 1, 1)
    digits = quantizer.lookup(quantizer.nearest_codes(far)).flatten()
    assert digits.tolist() == [-1.0, 1.0]  # the lowest level of 4 and the highest of 5


def test_the_quantizer_check_catches_a_nearest_code_that_is_not():
    class Off(FiniteScalarQuantizer):
        def nearest_codes(self, vectors):
            return (super().nearest_codes(vectors) + 1) % self.codebook_size

    with pytest.raises(AssertionError, match=r"nearest_codes\(lookup\(ids\)\) must give the ids back"):
        check_quantizer(Off((3, 3)))


@pytest.fixture(scope="module")
def tokenizer():
    """The tiny 3D-VQ with FSQ (5 x 5 x 5 codes), random weights: 8x16x16 clips -> 4x4x4 tokens."""
    torch.manual_seed(1)
    return magvit.registries().tokenizers.create(
        "vq3d", preset="tiny", quantizer={"kind": "fsq", "levels": [5, 5, 5]}).eval()


def _given(kind: str = "centre") -> torch.Tensor:
    mask = torch.zeros(CLIP, dtype=torch.bool)
    if kind == "centre":
        mask[:, 4:12, 4:12] = True
    else:
        mask[:2] = True
    return mask


def _mse(video, truth, mask):
    return ((video - truth) ** 2)[:, :, mask].flatten(1).mean(1)


def test_zero_steps_decode_the_tokens_as_they_are(tokenizer):
    tokens = torch.randint(tokenizer.codebook_size, (2, *LATENT))
    fitted, video = fit_to_condition(tokenizer, tokens, random_clip(2), _given(), steps=0)
    assert torch.equal(fitted, tokens)
    assert video.shape == (2, 3, *CLIP) and video.dtype == torch.float32
    assert torch.equal(video, tokenizer.decode(tokens).float())


def test_the_fit_brings_the_given_pixels_toward_the_condition_and_never_raises_its_objective(tokenizer):
    """Given pixels drawn by known tokens, a fit from other tokens gets closer to them; and,
    clip by clip, the objective after the fit is at most the objective of the start."""
    torch.manual_seed(0)
    target = torch.randint(tokenizer.codebook_size, (4, *LATENT))
    condition = tokenizer.decode(target).float()
    start = target.clone()
    start[:, :, :2] = torch.randint(tokenizer.codebook_size, (4, LATENT[0], 2, LATENT[2]))  # wrong top half
    given = _given("centre")
    first = tokenizer.decode(start).float()
    fitted, video = fit_to_condition(tokenizer, start, condition, given, steps=20)
    assert fitted.shape == start.shape and fitted.dtype == torch.int64
    assert not torch.equal(fitted, start)
    assert torch.allclose(video, tokenizer.decode(fitted).float(), atol=1e-6)  # the video is its tokens'
    before, after = _mse(first, condition, given), _mse(video, condition, given)
    assert float(after.mean()) < 0.8 * float(before.mean())
    objective = lambda v: condition_fit._objective(v, condition, given[None, None], first, 1.0)  # noqa: E731
    assert bool((objective(video) <= objective(first) + 1e-7).all())


def test_the_fit_reads_only_the_given_pixels(tokenizer):
    tokens = torch.randint(tokenizer.codebook_size, (2, *LATENT), generator=torch.Generator().manual_seed(3))
    given = _given("frames")
    condition = random_clip(2, seed=1)
    other = torch.where(given, condition, torch.rand_like(condition))  # the same given pixels only
    a = fit_to_condition(tokenizer, tokens, condition, given, steps=5)
    b = fit_to_condition(tokenizer, tokens, other, given, steps=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_the_fit_runs_under_inference_mode_and_trains_no_weight(tokenizer):
    tokens = torch.randint(tokenizer.codebook_size, (1, *LATENT))
    with torch.inference_mode():
        fitted, video = fit_to_condition(tokenizer, tokens, random_clip(1), _given(), steps=3)
    assert fitted.shape == (1, *LATENT) and torch.isfinite(video).all()
    assert all(p.grad is None for p in tokenizer.parameters())


def test_bad_fits_name_the_fix(tokenizer):
    tokens = torch.zeros(1, *LATENT, dtype=torch.long)
    with pytest.raises(MagvitError, match=r"refine steps must be at least 0, got -1"):
        fit_to_condition(tokenizer, tokens, random_clip(1), _given(), steps=-1)

    class NoLatentPath:
        quantizer = tokenizer.quantizer

    assert not condition_fit.can_fit(NoLatentPath())
    with pytest.raises(MagvitError, match=r"NoLatentPath has no latent path to refine through .*set refine steps to 0"):
        fit_to_condition(NoLatentPath(), tokens, random_clip(1), _given())

    class Broken(torch.nn.Module):
        quantizer = tokenizer.quantizer

        def decode_latent(self, latent):
            return latent.sum() * torch.full((latent.shape[0], 3, *CLIP), float("nan"))

    with pytest.raises(MagvitError, match=r"non-finite loss; set refine steps to 0"):
        fit_to_condition(Broken(), tokens, random_clip(1), _given())


# -- in the pipeline --------------------------------------------------------------------------------
FAST = {"decoder": {"kind": "commit", "steps": 4}}


@pytest.fixture(scope="module")
def pipe():
    return Pipeline(tiny_bundle(validate_experiment(FAST)))


def test_the_pipeline_fits_tasks_with_given_pixels_by_default(pipe):
    clips = random_clip(2, seed=4)
    assert pipe.refine_steps == condition_fit.STEPS == 10
    plain = pipe.generate("opv", clips, seed=0, refine_steps=0)
    fitted = pipe.generate("opv", clips, seed=0)
    again = pipe.generate("opv", clips, seed=0)
    assert (plain.refine_steps, fitted.refine_steps) == (0, 10)
    assert torch.equal(fitted.video, again.video) and torch.equal(fitted.tokens, again.tokens)  # seeded
    with torch.inference_mode():
        assert torch.equal(plain.video, pipe.tokenizer.decode(plain.tokens).float().clamp(0, 1))
    expect = fit_to_condition(pipe.tokenizer, plain.tokens, plain.condition, plain.pixel_mask, steps=10)
    assert torch.equal(fitted.tokens, expect[0])  # the same sampled tokens, then the fit
    given = plain.pixel_mask
    assert float(_mse(fitted.video, clips, given).mean()) <= float(_mse(plain.video, clips, given).mean())
    assert pipe.generate("cg", label=0).refine_steps == 0  # nothing given, nothing to fit


def test_refine_steps_are_checked_with_the_fix(pipe):
    with pytest.raises(MagvitError, match=r"refine_steps must be a whole number of at least 0 \(0 = off\), got -2"):
        pipe.generate("fp", random_clip(), refine_steps=-2)
    with pytest.raises(MagvitError, match=r"got True"):
        Pipeline(tiny_bundle(validate_experiment(FAST)), refine_steps=True)
    bundle = tiny_bundle(validate_experiment(FAST))
    bundle.tokenizer.quantizer.code_bounds = None  # a quantizer without the fit's methods
    assert Pipeline(bundle).refine_steps == 0  # the default falls back to no fit
    with pytest.raises(MagvitError, match=r"refine_steps=3: this model's tokenizer \(VQ3D\) has no latent path "
                                          r".*use refine_steps=0 \(--refine-steps 0\)"):
        Pipeline(bundle, refine_steps=3)
    with pytest.raises(MagvitError, match=r"refine_steps=2: this model's tokenizer"):
        Pipeline(bundle).generate("opv", random_clip(), refine_steps=2)
