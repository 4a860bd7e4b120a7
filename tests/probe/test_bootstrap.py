"""Paired bootstrap intervals and the verdict rules built on them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import r2_score

from core.probe.bootstrap import (
    Interval,
    interval,
    layer_r2_intervals,
    mean_samples,
    r2_interval,
    r2_samples,
    resample_counts,
    verdict_above,
    verdict_share,
)


def _data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, 2))
    return y, y + rng.normal(scale=0.7, size=(n, 2))


def test_resampled_r2_equals_r2_on_the_drawn_rows() -> None:
    y, pred = _data()
    rng = np.random.default_rng(3)
    rows = rng.integers(0, len(y), len(y))
    counts = np.bincount(rows, minlength=len(y)).astype(float)[None]
    expected = r2_score(y[rows], pred[rows], multioutput="uniform_average")
    assert r2_samples(y, pred, counts)[0] == pytest.approx(expected, abs=1e-10)
    # all layers at once agree with one layer at a time
    layers = np.stack([pred, y + 0.1, pred * 0.5])
    many = r2_samples(y, layers, resample_counts(len(y), 50))
    one = r2_samples(y, layers[2], resample_counts(len(y), 50))
    np.testing.assert_allclose(many[:, 2], one)


def test_interval_covers_the_point_and_shrinks_with_n() -> None:
    small = r2_interval(*_data(100))
    large = r2_interval(*_data(4000))
    assert small.lo < small.point < small.hi
    assert large.hi - large.lo < (small.hi - small.lo) / 3
    assert r2_interval(*_data(500)) == r2_interval(*_data(500))  # seeded
    lo, hi = layer_r2_intervals(_data(500)[0], np.stack([_data(500)[1]] * 2))
    assert lo.shape == (2,) and np.all(lo < hi)


def test_paired_difference_is_narrower_than_the_two_intervals() -> None:
    y, pred = _data(400)
    other = pred + np.random.default_rng(1).normal(scale=0.05, size=pred.shape)
    counts = resample_counts(len(y))
    a, b = r2_samples(y, pred, counts), r2_samples(y, other, counts)
    diff = interval(float(a.mean() - b.mean()), a - b)
    single = interval(float(a.mean()), a)
    assert diff.hi - diff.lo < (single.hi - single.lo) / 3


def test_mean_samples_weights_by_counts() -> None:
    values = np.array([0.0, 1.0, 2.0])
    counts = np.array([[3.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
    np.testing.assert_allclose(mean_samples(values, counts), [0.0, 5.0 / 3.0])
    assert mean_samples(np.stack([values, values]), counts).shape == (2, 2)


def test_verdicts_can_fail_and_straddling_is_inconclusive() -> None:
    assert verdict_above(Interval(0.03, 0.01, 0.05)) == "holds"
    assert verdict_above(Interval(-0.03, -0.05, -0.01)) == "does not hold"
    assert verdict_above(Interval(0.02, -0.01, 0.05)) == "inconclusive"
    assert verdict_above(Interval(0.06, 0.04, 0.08), threshold=0.05) == "inconclusive"
    assert verdict_above(Interval(0.0, float("nan"), float("nan"))) == "not tested"
    assert verdict_share(0.97) == "holds"
    assert verdict_share(0.63) == "inconclusive"
    assert verdict_share(0.02) == "does not hold"
    assert Interval(0.351, 0.312, 0.389).fmt() == "0.35 [0.31, 0.39]"
    assert Interval(0.35, 0.31, 0.39).pm() == "0.35 ± 0.04"
