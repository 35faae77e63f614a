"""COMMIT masking reproduces the release's `random_mask` (tests/data/random_mask.npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import magvit
from magvit.core.masking import (
    commit_mask,
    latent_mask_from_pixels,
    lowest_scores_mask,
    num_masked,
    sample_mask_ratio,
)
from magvit.errors import MagvitError

DATA = Path(__file__).parent / "data"
MASK_ID = 1024 + 101 + 1  # any id above the codebook; the release uses -1


@pytest.fixture(scope="module")
def ref():
    return np.load(DATA / "random_mask.npz")


def flat(array) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).reshape(2, -1)


def case_inputs(ref, i):
    cond = {"fp": ref["cond_mask_fp"], "opc": ref["cond_mask_opc"]}.get(
        str(ref["case_cond"][i]), np.zeros_like(ref["cond_mask_fp"])
    )
    limit = ref["case_num_masked_upper_limit"][i]
    return flat(cond), torch.from_numpy(ref["case_mask_ratio"][i]), (
        None if (limit == -1).all() else torch.from_numpy(limit)
    )


@pytest.mark.parametrize("case", range(11))
@pytest.mark.parametrize("mode,prefix", [("mask+refine+recons", "mrr"), ("mask+refine", "mr")])
def test_commit_mask_matches_release(ref, case, mode, prefix):
    cond_mask, ratio, limit = case_inputs(ref, case)
    batch = commit_mask(
        flat(ref["tokens"]), flat(ref["cond_tokens"]), cond_mask, ratio,
        mask_id=MASK_ID, scores=flat(ref["mask_score"]), weight_mode=mode, upper_limit=limit,
    )
    expected_inputs = flat(ref[f"{prefix}_masked_inputs"][case])
    assert torch.equal(batch.should_mask, flat(ref["should_mask"][case]))
    assert batch.should_mask.sum(1).tolist() == ref["case_num_masked"][case].tolist()
    # compare positions: the release's MASK is -1, ours is MASK_ID
    assert torch.equal(batch.inputs == MASK_ID, expected_inputs == -1)
    assert torch.equal(batch.inputs[expected_inputs != -1], expected_inputs[expected_inputs != -1])
    assert torch.equal(batch.targets, flat(ref[f"{prefix}_targets"][case]))
    assert torch.equal(batch.weights, flat(ref[f"{prefix}_weights"][case]))


def test_ties_are_broken_by_position_so_exactly_n_are_masked():
    scores = torch.zeros(1, 10)  # all tied: the release's `score <= cutoff` masks all ten
    mask = lowest_scores_mask(scores, torch.tensor([3]))
    assert mask.tolist() == [[True] * 3 + [False] * 7]


def test_mask_and_refine_terms_split_the_masked_tokens():
    tokens = torch.arange(6).view(1, 6)
    cond = torch.tensor([[True, True, False, False, True, False]])
    scores = torch.tensor([[0.1, 0.9, 0.2, 0.8, 0.3, 0.7]])  # masks positions 0, 2, 4
    kwargs = dict(mask_id=99, scores=scores)
    batch = commit_mask(tokens, tokens + 10, cond, 0.5, weight_mode="mask", **kwargs)
    assert batch.inputs.tolist() == [[10, 1, 99, 3, 14, 5]]
    assert batch.weights.tolist() == [[0, 0, 1, 0, 0, 0]]
    refine = commit_mask(tokens, tokens + 10, cond, 0.5, weight_mode="refine", **kwargs)
    assert refine.weights.tolist() == [[1, 0, 0, 0, 1, 0]]
    recons = commit_mask(tokens, tokens + 10, cond, 0.5, weight_mode="recons", **kwargs)
    assert recons.weights.tolist() == [[0, 1, 0, 1, 0, 1]]


def test_unknown_weight_term_is_named():
    tokens = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(MagvitError, match=r"unknown term\(s\) \['refin'\]"):
        commit_mask(tokens, tokens, tokens.bool(), 0.5, mask_id=9, weight_mode="mask+refin")


def test_seeded_mask_is_reproducible_and_counts_follow_ratio():
    tokens = torch.randint(0, 1024, (3, 256), generator=torch.Generator().manual_seed(0))
    cond = torch.zeros_like(tokens, dtype=torch.bool)
    ratio = torch.tensor([0.1, 0.5, 1.0])
    a = commit_mask(tokens, tokens, cond, ratio, mask_id=2000, generator=torch.Generator().manual_seed(7))
    b = commit_mask(tokens, tokens, cond, ratio, mask_id=2000, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.inputs, b.inputs)
    assert a.should_mask.sum(1).tolist() == [25, 128, 256]


def test_num_masked_rule():
    assert num_masked(1024, 0.3) == 307
    assert num_masked(1024, 0.0) == 1  # ratio clipped to 1e-6, count clipped to 1
    assert num_masked(1024, 2.0) == 1024
    assert num_masked(1024, 0.5, lower=1, upper=100) == 100
    assert num_masked(10, torch.tensor([0.25, 0.99])).tolist() == [2, 9]
    with pytest.raises(ValueError, match="mask ratio must be finite"):
        num_masked(10, float("nan"))


def test_property_num_masked_stays_in_limits():
    ratios = torch.rand(1000, generator=torch.Generator().manual_seed(1))
    counts = num_masked(300, ratios, lower=1, upper=200)
    assert counts.min() >= 1 and counts.max() <= 200
    assert torch.equal(counts, torch.floor(300 * ratios).long().clamp(1, 200))


def test_sample_mask_ratio_is_seeded_and_in_range():
    gamma = magvit.registries().schedules.create("cosine")
    a = sample_mask_ratio(64, gamma, torch.Generator().manual_seed(3))
    b = sample_mask_ratio(64, gamma, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.dtype == torch.float32
    assert ((a > 0) & (a <= 1)).all()
    assert a.mean().item() == pytest.approx(2 / np.pi, abs=0.1)  # E[cos(pi U / 2)] = 2/pi


def test_latent_mask_is_any_condition_pixel_in_the_supervoxel():
    pixels = torch.zeros(8, 8, 8, dtype=torch.bool)
    pixels[0, 3, 5] = True  # one pixel in supervoxel (0, 0, 1) of factors (4, 4, 4)
    latent = latent_mask_from_pixels(pixels, (4, 4, 4))
    assert latent.shape == (2, 2, 2)
    assert latent.nonzero().tolist() == [[0, 0, 1]]


def test_latent_mask_refuses_indivisible_clip():
    with pytest.raises(MagvitError, match=r"clip size 6x8x8 is not divisible by .*\(4, 4, 4\)"):
        latent_mask_from_pixels(torch.zeros(6, 8, 8, dtype=torch.bool), (4, 4, 4))
