"""Fréchet distance and streaming feature statistics (the maths of FVD/FID)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from magvit.errors import MagvitError
from magvit.metrics import FeatureStats, fold_mean_std, frechet_distance

scipy_linalg = pytest.importorskip("scipy.linalg")


def reference_fd(x: np.ndarray, y: np.ndarray) -> float:
    """An independent float64 computation: np.cov and scipy's sqrtm of the covariance product."""
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy_linalg.sqrtm(cov_x @ cov_y)
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(cov_x + cov_y - 2 * root.real))


@pytest.mark.parametrize("n, d, shift", [(400, 16, 0.5), (1000, 64, 0.1), (300, 8, 3.0)])
def test_equals_an_independent_float64_computation(n, d, shift):
    rng = np.random.default_rng(d)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    x = rng.normal(size=(n, d)) @ mix
    y = rng.normal(size=(n, d)) @ (mix + 0.2 * np.eye(d)) + shift
    got = frechet_distance(FeatureStats().update(x), FeatureStats().update(y))
    assert got == pytest.approx(reference_fd(x, y), rel=1e-6)


def test_zero_for_identical_and_mean_gap_for_equal_covariances():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 12))
    same = FeatureStats().update(x)
    assert frechet_distance(same, FeatureStats().update(x)) == pytest.approx(0.0, abs=1e-9)
    offset = np.arange(12) / 10
    moved = FeatureStats().update(x + offset)  # same covariance, mean moved
    assert frechet_distance(same, moved) == pytest.approx((offset**2).sum(), rel=1e-9)


def test_fewer_samples_than_dimensions_stay_finite_and_non_negative():
    rng = np.random.default_rng(1)
    a, b = FeatureStats().update(rng.normal(size=(10, 64))), FeatureStats().update(rng.normal(size=(10, 64)))
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 0
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_streaming_over_ten_batches_equals_the_whole_array_and_merging_equals_one_process():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1000, 20)) * 3 + 7
    whole = FeatureStats().update(x)
    streamed = FeatureStats()
    for part in np.array_split(x, 10):
        streamed.update(torch.from_numpy(part))  # a float64 torch batch
    assert streamed.count == whole.count == 1000
    np.testing.assert_allclose(streamed.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(streamed.cov, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)
    ranks = [FeatureStats().update(part) for part in np.array_split(x, 3)]
    merged = FeatureStats()
    for r in ranks:
        merged.merge(r)
    np.testing.assert_allclose(merged.cov, whole.cov, rtol=1e-10, atol=1e-12)


def test_save_and_load_round_trip(tmp_path):
    stats = FeatureStats(meta={"extractor": "i3d", "protocol": "ucf101"}).update(np.eye(5) + 1)
    loaded = FeatureStats.load(stats.save(tmp_path / "real.npz"))
    assert loaded.count == 5 and loaded.meta == {"extractor": "i3d", "protocol": "ucf101"}
    np.testing.assert_array_equal(loaded.cov, stats.cov)
    with pytest.raises(MagvitError, match="cannot read feature statistics"):
        FeatureStats.load(tmp_path / "missing.npz")


def test_concurrent_saves_to_one_cache_file_leave_a_whole_file(tmp_path):
    """The real-statistics cache is shared by every evaluation on the machine (and by the test
    workers): writers racing on one key must each replace the file whole, never fail or tear it."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "cache" / "real.npz"
    writers = []
    for i in range(8):
        stats = FeatureStats(meta={"writer": i})
        stats.update(torch.randn(50 + i, 64, generator=torch.Generator().manual_seed(i)))
        writers.append(stats)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda s: [s.save(path) for _ in range(15)], writers))
    loaded = FeatureStats.load(path)
    kept = writers[loaded.meta["writer"]]
    assert loaded.count == kept.count and loaded.mean.shape == (64,)
    np.testing.assert_array_equal(loaded.cov, kept.cov)
    assert sorted(f.name for f in path.parent.iterdir()) == ["real.npz"]  # no partial file left


def test_bad_features_and_folds():
    with pytest.raises(MagvitError, match=r"non-empty \(N, D\) batch"):
        FeatureStats().update(np.zeros(3))
    with pytest.raises(MagvitError, match="NaN or inf"):
        FeatureStats().update(np.array([[np.nan, 1.0]]))
    with pytest.raises(MagvitError, match="3 dimensions, these statistics 2"):
        FeatureStats().update(np.ones((2, 2))).update(np.ones((2, 3)))
    with pytest.raises(MagvitError, match="at least 2 samples"):
        _ = FeatureStats().update(np.ones((1, 4))).cov
    assert fold_mean_std([10.0, 12.0, 14.0, 16.0]) == pytest.approx((13.0, np.std([10, 12, 14, 16], ddof=1)))
