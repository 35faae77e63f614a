"""Fréchet distance between feature distributions (FVD with I3D features, FID with Inception):
streaming statistics in float64 and a matrix square root that stays stable when covariances are
singular (fewer samples than feature dimensions, as in every small evaluation).

FD = |mu_a - mu_b|^2 + tr(C_a) + tr(C_b) - 2 tr((C_a C_b)^(1/2)), where
tr((C_a C_b)^(1/2)) = sum of the square roots of the eigenvalues of C_a^(1/2) C_b C_a^(1/2),
a symmetric positive semi-definite matrix whose eigenvalues `eigh` finds reliably.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from magvit.core.files import atomic_output
from magvit.errors import MagvitError


class FeatureStats:
    """Running mean and covariance of feature vectors, merged batch by batch (Chan et al.),
    so 50,000 x 4 samples never sit in memory; `merge` combines the statistics of several
    processes exactly as if one had seen every sample."""

    def __init__(self, dim: int | None = None, meta: dict[str, Any] | None = None):
        self.count = 0
        self.dim = dim
        self._mean = np.zeros(dim or 0, np.float64)
        self._m2 = np.zeros((dim or 0, dim or 0), np.float64)
        self.meta = dict(meta or {})  # what the features are (extractor, protocol, ...)

    def update(self, features) -> FeatureStats:
        """Add a `(N, D)` batch (torch or numpy); returns self."""
        x = features.detach().double().cpu().numpy() if isinstance(features, torch.Tensor) \
            else np.asarray(features, np.float64)
        if x.ndim != 2 or not len(x):
            raise MagvitError(f"features must be a non-empty (N, D) batch, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise MagvitError("features hold NaN or inf values; the extractor or its input is broken")
        if self.dim is None:
            self.dim = x.shape[1]
            self._mean, self._m2 = np.zeros(self.dim), np.zeros((self.dim, self.dim))
        if x.shape[1] != self.dim:
            raise MagvitError(f"features have {x.shape[1]} dimensions, these statistics {self.dim}")
        batch_mean = x.mean(axis=0)
        centred = x - batch_mean
        self._combine(len(x), batch_mean, centred.T @ centred)
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Add another set of statistics (another process's share); returns self."""
        if other.count:
            if self.count and other.dim != self.dim:
                raise MagvitError(f"cannot merge statistics of {other.dim} and {self.dim} dimensions")
            if not self.count:
                self.dim, self._mean, self._m2 = other.dim, np.zeros(other.dim), np.zeros((other.dim,) * 2)
            self._combine(other.count, other._mean, other._m2)
        return self

    def repeated(self, times: int) -> FeatureStats:
        """The statistics of these samples each seen `times` times (a protocol that cycles a
        small evaluation set), without extracting them again."""
        out = FeatureStats(self.dim, self.meta)
        out.count, out._mean, out._m2 = self.count * times, self._mean.copy(), self._m2 * times
        return out

    def _combine(self, n: int, mean: np.ndarray, m2: np.ndarray) -> None:
        total = self.count + n
        delta = mean - self._mean
        self._m2 = self._m2 + m2 + np.outer(delta, delta) * (self.count * n / total)
        self._mean = self._mean + delta * (n / total)
        self.count = total

    @property
    def mean(self) -> np.ndarray:
        return self._mean.copy()

    @property
    def cov(self) -> np.ndarray:
        """The unbiased covariance (divides by count - 1, like `np.cov`)."""
        if self.count < 2:
            raise MagvitError(f"a covariance needs at least 2 samples, these statistics have {self.count}")
        return self._m2 / (self.count - 1)

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        # The cache is shared: writers may race on one key. A file object keeps np.savez from
        # adding ".npz" to the temporary name.
        with atomic_output(path) as tmp, open(tmp, "wb") as file:
            np.savez(file, count=np.int64(self.count), mean=self._mean, m2=self._m2,
                     meta=np.array(json.dumps(self.meta)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        try:
            with np.load(path, allow_pickle=False) as data:
                stats = cls(int(data["mean"].shape[0]), json.loads(str(data["meta"])))
                stats.count, stats._mean, stats._m2 = int(data["count"]), data["mean"], data["m2"]
        except (OSError, KeyError, ValueError) as exc:
            raise MagvitError(f"cannot read feature statistics {path}: {exc}") from None
        return stats


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """The Fréchet distance between two Gaussians fitted to the features (float64)."""
    if a.dim != b.dim:
        raise MagvitError(f"statistics of {a.dim} and {b.dim} dimensions cannot be compared")
    mu_a, mu_b, cov_a, cov_b = a.mean, b.mean, a.cov, b.cov
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)
    return max(distance, 0.0)


def fold_mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and standard deviation over evaluation folds (the paper reports FVD over 4 runs)."""
    array = np.asarray(values, np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0
