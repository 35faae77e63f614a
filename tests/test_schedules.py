"""Schedules reproduce the authors' release (tests/data/schedules.npz), float32 included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import magvit
from magvit.core.masking import num_masked
from magvit.errors import ConfigError

DATA = Path(__file__).parent / "data"

REFERENCE_NAMES = {  # release method -> (our name, config)
    "cosine": ("cosine", {}),
    "uniform": ("linear", {}),
    "pow2": ("pow", {"power": 2.0}),
    "pow3": ("pow", {"power": 3.0}),
    "log": ("log", {}),
    "exp": ("exp", {}),
}


@pytest.fixture(scope="module")
def ref():
    return np.load(DATA / "schedules.npz")


@pytest.mark.parametrize("method", list(REFERENCE_NAMES))
def test_schedule_matches_release_on_101_points(ref, method):
    name, config = REFERENCE_NAMES[method]
    gamma = magvit.registries().schedules.create(name, **config)
    ours = gamma(torch.from_numpy(ref["ratio"]))
    assert ours.dtype == torch.float32
    # torch and XLA transcendental functions may differ in the last bit (2^-24 relative)
    np.testing.assert_allclose(ours.numpy(), ref[f"schedule_{method}"], rtol=0, atol=6e-8)


@pytest.mark.parametrize("method", ["cosine", "exp", "uniform"])
def test_decode_counts_match_release_exactly(ref, method):
    name, config = REFERENCE_NAMES[method]
    gamma = magvit.registries().schedules.create(name, **config)
    ratios = [gamma((step + 1) / 12) for step in range(12)]
    assert np.array_equal(np.array(ratios, np.float32), ref[f"decode_K12_N1024_{method}_mask_ratio"])
    counts, unknown = [], 1024
    for ratio in ratios:
        unknown = num_masked(1024, ratio, lower=1, upper=unknown - 1)
        counts.append(unknown)
    assert counts == ref[f"decode_K12_N1024_{method}_num_masked_after_step"].tolist()


def test_cosine_float32_caveat_gives_511_at_step_7():
    gamma = magvit.registries().schedules.create("cosine")
    assert gamma(8 / 12) == pytest.approx(0.49999997, abs=1e-8)
    assert num_masked(1024, gamma(8 / 12)) == 511  # float64 maths would give 512


def test_spec_cosine_sequence():
    gamma = magvit.registries().schedules.create("cosine")
    counts, unknown = [], 1024
    for step in range(11):
        unknown = num_masked(1024, gamma((step + 1) / 12), 1, unknown - 1)
        counts.append(unknown)
    assert counts == [1015, 989, 946, 886, 812, 724, 623, 511, 391, 265, 133]


def test_float_in_float_out_tensor_in_tensor_out():
    gamma = magvit.registries().schedules.create("linear")
    assert isinstance(gamma(0.25), float) and gamma(0.25) == 0.75
    out = gamma(torch.tensor([[0.0, 1.0]], dtype=torch.float64))
    assert out.dtype == torch.float32 and out.tolist() == [[1.0, pytest.approx(1e-6)]]


def test_log_is_clipped_to_one_at_zero_and_exp_starts_below_one():
    regs = magvit.registries()
    assert regs.schedules.create("log")(0.0) == 1.0
    assert regs.schedules.create("exp")(0.0) == pytest.approx(1 - 1 / 1024)
    assert regs.schedules.create("exp", num_tokens=256)(0.0) == pytest.approx(1 - 1 / 256)


def test_bad_config_is_reported_by_name():
    with pytest.raises(ConfigError, match="power: must be > 0, got -1"):
        magvit.registries().schedules.create("pow", power=-1.0)
    with pytest.raises(ConfigError, match="num_tokens: expected int, got float"):
        magvit.registries().schedules.create("log", num_tokens=2.5)


@pytest.mark.parametrize("name", ["cosine", "linear", "pow", "log", "exp"])
def test_property_monotone_on_random_points(name):
    gamma = magvit.registries().schedules.create(name)
    r = torch.rand(500, generator=torch.Generator().manual_seed(0)).sort().values
    values = gamma(r)
    assert (values[1:] <= values[:-1]).all()
    assert ((values >= 1e-6) & (values <= 1.0)).all()
