"""How close a rerun on another machine must come to a shipped artifact.

float32 matrix products round differently on other instruction sets (AVX2 vs AVX-512 /
AMX), thread counts and BLAS kernels, so a rebuild elsewhere matches the shipped numbers
to a tolerance, not bit for bit. Bit-for-bit stays the rule on one machine (a resumed
build, the Ray build); the reasons and the measured drift are in docs/storage.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.results.probe_results import ProbeResults


@dataclass(frozen=True)
class Tolerance:
    """The one statement of "the same numbers" across machines."""

    # absolute for every R² column (r2, r2_<t>, loo_r2, heldout_r2 ...), relative beyond
    # |R²| = 1: an R² of -2,000 (a block's own spread is tiny) is a ratio of small sums
    r2: float = 1e-4
    rank: float = 5e-3  # absolute, rank statistics: a near-tie that swaps moves them in steps
    relative: float = 1e-3  # relative, errors in target units (mae, km) and penalties
    prediction: float = 1e-3  # of each target's range, for every stored prediction


TOLERANCE = Tolerance()
# The MLP probe is fitted by a nonconvex optimiser, which amplifies last-bit differences:
# across machines it picks the same weight decay and width, but single predictions move
# by degrees and its R² by a few hundredths (docs/storage.md). Its rows and predictions
# are held to this, and its per-entity predictions are compared by their R² only.
MLP_TOLERANCE = Tolerance(r2=0.05, rank=0.05, relative=0.1, prediction=float("inf"))

_RANK_PREFIXES = ("spearman", "proximity", "heldout_proximity", "nominal_proximity")


def _column_kind(name: str) -> str:
    if "r2" in name:
        return "r2"
    if name.startswith(_RANK_PREFIXES) or "proximity" in name or "spearman" in name:
        return "rank"
    return "relative"


def compare_frames(
    rebuilt: pd.DataFrame, shipped: pd.DataFrame, label: str, tol: Tolerance = TOLERANCE
) -> list[str]:
    """Differences beyond `tol` between two tables of one artifact; [] when they agree.

    Non-float columns (layer, split, block, neuron ids) must be identical; float columns
    are compared by their kind (R², rank statistic, or a value in units).
    """
    problems: list[str] = []
    if list(rebuilt.columns) != list(shipped.columns) or len(rebuilt) != len(shipped):
        return [
            f"{label}: shape/columns differ ({rebuilt.shape} {list(rebuilt.columns)} vs "
            f"{shipped.shape} {list(shipped.columns)})"
        ]
    for col in shipped.columns:
        a, b = rebuilt[col].to_numpy(), shipped[col].to_numpy()
        if not (pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b)):
            differ = ~((a == b) | (pd.isna(a) & pd.isna(b)))  # a missing value equals itself
            if differ.any():
                rows = np.flatnonzero(differ)[:5].tolist()
                problems.append(f"{label}.{col}: values differ at rows {rows}")
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        same_nan = np.isnan(a64) == np.isnan(b64)
        kind = _column_kind(str(col))
        diff = np.abs(np.nan_to_num(a64) - np.nan_to_num(b64))
        if kind == "r2":
            bound = tol.r2 * np.maximum(np.abs(np.nan_to_num(b64)), 1.0)
        elif kind == "rank":
            bound = np.full_like(b64, tol.rank)
        else:
            bound = tol.relative * np.maximum(np.abs(np.nan_to_num(b64)), 1e-12)
        bad = ~same_nan | (diff > bound)
        if bad.any():
            worst = int(np.argmax(np.where(bad, diff - bound, -np.inf)))
            problems.append(
                f"{label}.{col}: {int(bad.sum())} rows beyond the {kind} tolerance "
                f"(row {worst}: {a64[worst]!r} vs {b64[worst]!r})"
            )
    return problems


def _mismatch(a: np.ndarray, b: np.ndarray, label: str) -> list[str]:
    """The shape or missing-value difference two arrays of one artifact must not have."""
    if a.shape != b.shape:
        return [f"{label}: shape {a.shape} vs {b.shape}"]
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return [f"{label}: missing values differ"]
    return []


def compare_predictions(
    rebuilt: np.ndarray,
    shipped: np.ndarray,
    target_range: np.ndarray,
    label: str,
    tol: Tolerance = TOLERANCE,
) -> list[str]:
    """[..., n, T] predictions within `tol.prediction` of each target's range (NaN where NaN)."""
    a = np.asarray(rebuilt, dtype=np.float64)
    b = np.asarray(shipped, dtype=np.float64)
    if problems := _mismatch(a, b, label):
        return problems
    bound = tol.prediction * np.asarray(target_range, dtype=np.float64)
    worst = np.nanmax(np.abs(a - b).reshape(-1, a.shape[-1]), axis=0) if a.size else bound * 0
    if np.any(worst > bound):
        return [f"{label}: max |Δ| per target {worst.tolist()} > {bound.tolist()}"]
    return []


def compare_arrays(
    rebuilt: np.ndarray,
    shipped: np.ndarray,
    label: str,
    tol: Tolerance = TOLERANCE,
    kind: str = "prediction",
) -> list[str]:
    """Any stored array, measured against the spread of its last axis (targets, neurons);
    `kind` "rank": per-entity rank statistics (proximity errors), within `tol.rank`."""
    if kind == "rank":
        a, b = np.asarray(rebuilt, dtype=np.float64), np.asarray(shipped, dtype=np.float64)
        if problems := _mismatch(a, b, label):
            return problems
        worst = float(np.nanmax(np.abs(a - b))) if np.isfinite(b).any() else 0.0
        return [] if worst <= tol.rank else [f"{label}: max |Δ| {worst} > {tol.rank}"]
    b = np.asarray(shipped, dtype=np.float64)
    flat = b.reshape(-1, b.shape[-1]) if b.ndim > 1 else b.reshape(-1, 1)
    spread = np.nanmax(flat, axis=0) - np.nanmin(flat, axis=0) if np.isfinite(flat).any() else 0
    return compare_predictions(rebuilt, shipped, np.nan_to_num(spread), label, tol)


def target_range(res: ProbeResults) -> np.ndarray:
    """Each target's spread over the entities (what prediction drift is measured in)."""
    return np.ptp(res.truth(), axis=0)


def compare_results(
    rebuilt: ProbeResults, shipped: ProbeResults, tol: Tolerance = TOLERANCE
) -> list[str]:
    """Everything a rerun elsewhere must reproduce; [] when it does, else what differs."""
    problems: list[str] = []
    if rebuilt.best_layer() != shipped.best_layer():
        problems.append(f"chosen layer L{rebuilt.best_layer()} vs L{shipped.best_layer()}")
    if rebuilt.alphas.shape != shipped.alphas.shape:
        problems.append(f"alphas: {rebuilt.alphas.shape} vs {shipped.alphas.shape}")
    else:
        # the grid's step is a factor of ~1.8: a relative change above `relative` is
        # another grid point, i.e. another alpha index
        ratio = np.abs(rebuilt.alphas / shipped.alphas - 1.0)
        if np.any(ratio > tol.relative):
            layers = rebuilt.layers[ratio > tol.relative].tolist()
            problems.append(f"chosen alpha differs at layers {layers}")
    problems += compare_frames(rebuilt.metrics, shipped.metrics, "metrics", tol)
    if not rebuilt.baselines.empty or not shipped.baselines.empty:
        problems += compare_frames(rebuilt.baselines, shipped.baselines, "baselines", tol)
    problems += compare_predictions(
        rebuilt.predictions, shipped.predictions, target_range(shipped), "predictions", tol
    )
    return problems


def compare_r2(
    rebuilt: np.ndarray,
    shipped: np.ndarray,
    targets: np.ndarray,
    label: str,
    tol: Tolerance = MLP_TOLERANCE,
) -> list[str]:
    """[L, n, T] predictions of the same rows, compared by their R² against `targets`
    (per leading index) within `tol.r2`: for fits whose single predictions may move."""
    from sklearn.metrics import r2_score

    a, b = np.asarray(rebuilt, dtype=np.float64), np.asarray(shipped, dtype=np.float64)
    if problems := _mismatch(a, b, label):
        return problems
    y = np.asarray(targets, dtype=np.float64)
    problems = []
    for i in range(a.shape[0]):
        r_a, r_b = r2_score(y, a[i]), r2_score(y, b[i])
        if abs(r_a - r_b) > tol.r2:
            problems.append(f"{label}[{i}]: R² {r_a:.4f} vs {r_b:.4f} (> {tol.r2})")
    return problems
