"""Paired bootstrap intervals over test entities, and verdicts that can fail.

Every statistic compared in one claim is computed on the same resamples (one seeded
matrix of multinomial counts), so a difference keeps its pairing: the interval of
"probe minus control" is far narrower than the two intervals side by side. Resampling
is by counts rather than index arrays because R² and means then come out of a few
matrix products for all resamples and layers at once (no library does weighted R² for a
thousand resamples in one call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

N_BOOT = 1000
SEED = 0
LEVEL = 0.95

Verdict = Literal[
    "holds",
    "does not hold",
    "inconclusive",
    "not tested",
    # the claim's precondition fails (e.g. linear ≈ MLP when the ridge reads nothing)
    "not testable",
    # a scale pair whose smaller model does not beat its own controls
    "not comparable",
    # a definite verdict that dropping its most influential test entity changes
    "fragile",
]
# The one equivalence margin of every "beats" rule (an R² or error difference): a
# difference whose whole 95% interval lies inside ±MARGIN is no advantage.
MARGIN = 0.02
# An interval whose arms differ by more than this share of its half-width (and by more
# than 0.01) is printed as [lo, hi], not ±.
ASYMMETRY = 0.25


@dataclass(frozen=True)
class Interval:
    """A statistic on the full sample and its percentile bootstrap interval."""

    point: float
    lo: float
    hi: float
    level: float = LEVEL

    def straddles(self, threshold: float) -> bool:
        return bool(self.lo <= threshold <= self.hi)

    @property
    def half_width(self) -> float:
        return float((self.hi - self.lo) / 2.0)

    def fmt(self, digits: int = 2, signed: bool = False) -> str:
        """``0.35 [0.31, 0.39]`` (``+0.03 [+0.00, +0.05]`` with signed)."""
        f = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
        return f"{f.format(self.point)} [{f.format(self.lo)}, {f.format(self.hi)}]"

    def pm(self, digits: int = 2) -> str:
        """``0.35 ± 0.04`` (the half-width of the interval; for compact tables)."""
        return f"{self.point:.{digits}f} ± {self.half_width:.{digits}f}"

    @property
    def symmetric(self) -> bool:
        """Whether ± describes the interval: its arms below and above the point differ
        by at most ASYMMETRY of the half-width (or 0.01)."""
        below, above = self.point - self.lo, self.hi - self.point
        return bool(abs(above - below) <= max(0.01, ASYMMETRY * self.half_width))

    def compact(self, digits: int = 2) -> str:
        """``0.35 ± 0.04`` for a symmetric interval, else ``0.52 [-0.33, 0.68]``."""
        return self.pm(digits) if self.symmetric else self.fmt(digits)


def resample_counts(n: int, n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """[n_boot, n] how often each of n entities is drawn in each resample (rows sum to n)."""
    if n < 1:
        raise ValueError("cannot resample an empty set of entities")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)


def r2_samples(y: np.ndarray, pred: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean-over-targets R² in every resample.

    y: [n] or [n, T]; pred: [n, T] (or [n]) -> [n_boot], or [L, n, T] -> [n_boot, L].
    Each target's R² is 1 - SS_res / SS_tot around that resample's own mean, as
    `sklearn.metrics.r2_score` computes it on the resampled rows.
    """
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    n, t = y2.shape
    p = np.asarray(pred, dtype=np.float64)
    layered = p.ndim == 3
    p = p.reshape(-1, n, t)  # [L, n, T]
    total = counts.sum(axis=1, keepdims=True)  # [B, 1]
    mean = counts @ y2 / total  # [B, T]
    ss_tot = counts @ (y2**2) - total * mean**2  # [B, T]
    resid = (y2[None] - p) ** 2  # [L, n, T]
    ss_res = counts @ resid.transpose(1, 0, 2).reshape(n, -1)  # [B, L*T]
    ss_res = ss_res.reshape(len(counts), p.shape[0], t)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - ss_res / ss_tot[:, None, :]
    out = r2.mean(axis=2)  # [B, L]
    return out if layered else out[:, 0]


def mean_samples(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The mean of per-entity values in every resample: [n] -> [n_boot], [k, n] -> [n_boot, k]."""
    v = np.asarray(values, dtype=np.float64)
    out = counts @ v.reshape(-1, counts.shape[1]).T / counts.sum(axis=1, keepdims=True)
    return out[:, 0] if v.ndim == 1 else out


def interval(point: float, samples: np.ndarray, level: float = LEVEL) -> Interval:
    """Percentile interval of bootstrap samples (NaN resamples ignored)."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if not len(s):
        return Interval(float(point), float("nan"), float("nan"), level)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(s, [tail, 100.0 - tail])
    return Interval(float(point), float(lo), float(hi), level)


def r2_interval(
    y: np.ndarray, pred: np.ndarray, n_boot: int = N_BOOT, seed: int = SEED
) -> Interval:
    """Test R² (mean over targets) with its 95% interval."""
    counts = resample_counts(len(y), n_boot, seed)
    full = np.ones((1, len(y)))
    return interval(float(r2_samples(y, pred, full)[0]), r2_samples(y, pred, counts))


def layer_r2_intervals(
    y: np.ndarray, preds: np.ndarray, n_boot: int = N_BOOT, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper 95% bounds of the test R² of every layer: preds [L, n, T]."""
    counts = resample_counts(len(y), n_boot, seed)
    samples = r2_samples(y, preds, counts)  # [B, L]
    tail = (1.0 - LEVEL) / 2.0 * 100.0
    lo, hi = np.nanpercentile(samples, [tail, 100.0 - tail], axis=0)
    return lo, hi


def verdict_above(diff: Interval, threshold: float = 0.0) -> Verdict:
    """A claim "the statistic exceeds `threshold`": it holds when the whole interval is
    above, fails when the whole interval is below, and is inconclusive when it straddles."""
    if not np.isfinite(diff.lo) or not np.isfinite(diff.hi):
        return "not tested"
    if diff.lo > threshold:
        return "holds"
    if diff.hi < threshold:
        return "does not hold"
    return "inconclusive"


def verdict_beats(diff: Interval, margin: float = MARGIN, lower: bool = False) -> Verdict:
    """A claim "A beats B" read from the interval of A − B (of B − A with `lower`, for
    an error): holds when it lies above 0 and not wholly inside ±margin; does not hold
    when it lies below 0 or wholly inside ±margin (no advantage); else inconclusive."""
    if not np.isfinite(diff.lo) or not np.isfinite(diff.hi):
        return "not tested"
    d = Interval(-diff.point, -diff.hi, -diff.lo, diff.level) if lower else diff
    if d.hi < 0 or (-margin <= d.lo and d.hi <= margin):
        return "does not hold"
    if d.lo > 0:
        return "holds"
    return "inconclusive"


def verdict_below(diff: Interval, threshold: float = 0.0) -> Verdict:
    """A claim "the statistic is below `threshold`" (an error difference, a drop): holds
    when the whole interval is below, fails when the whole interval is above, and is
    inconclusive when it straddles."""
    if not np.isfinite(diff.lo) or not np.isfinite(diff.hi):
        return "not tested"
    if diff.hi < threshold:
        return "holds"
    if diff.lo > threshold:
        return "does not hold"
    return "inconclusive"


Band = Literal["inside", "above", "below", "straddles", "untested"]


def band_position(diff: Interval, margin: float) -> Band:
    """Where an interval lies against the band [-margin, +margin]: wholly "inside", wholly
    "above" or "below" it, or "straddles" one of its edges."""
    if not np.isfinite(diff.lo) or not np.isfinite(diff.hi):
        return "untested"
    if diff.lo > margin:
        return "above"
    if diff.hi < -margin:
        return "below"
    if -margin <= diff.lo and diff.hi <= margin:
        return "inside"
    return "straddles"


def point_and_samples(
    stat: Callable[[np.ndarray], np.ndarray], n: int, n_boot: int = N_BOOT, seed: int = SEED
) -> Interval:
    """`stat(counts)` -> one value per row of counts, on the full sample and on seeded
    resamples of n entities: its interval. For statistics built from r2_samples and
    mean_samples, so every term of a difference sees the same resamples."""
    full = np.asarray(stat(np.ones((1, n))), dtype=np.float64).reshape(-1)[0]
    return interval(float(full), stat(resample_counts(n, n_boot, seed)))


def verdict_share(share: float, level: float = LEVEL) -> Verdict:
    """A claim judged on the share of resamples in which it holds: holds when at least
    `level` of them agree, fails when at most 1 - level do, inconclusive between."""
    if not np.isfinite(share):
        return "not tested"
    if share >= level:
        return "holds"
    if share <= 1.0 - level:
        return "does not hold"
    return "inconclusive"
