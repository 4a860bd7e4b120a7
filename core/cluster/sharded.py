"""The covariance route: one layer's ridge sweep from row shards, none holding all rows.

For a layer whose rows do not fit one node. It computes what ``RidgeProbe``'s n > d
solver computes, pass by pass, with each pass a sum over shards of what each shard
computes alone:

1. column sums of the training rows -> the mean (and ``n``);
2. ``Xcᵀ Xc`` and ``Xcᵀ z`` of the centred training rows (centred explicitly, as the
   single-node solver does: no cancellation) -> one ``d x d`` eigendecomposition on
   the driver;
3. each shard's leave-one-out (or GCV) squared errors for every alpha -> the alpha;
4. predictions for every row at that alpha.

Only ``d x d`` matrices and per-alpha vectors cross the network, never rows. The sums
are grouped by shard rather than by the solver's row chunks, so results agree with the
single-node solver to float64 rounding (the tests bound it), not bit for bit.

``Map`` runs one pass: locally (``local_map``) or as Ray tasks (``core.cluster.probes``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg

from core.common.config import ProbeSpec
from core.probe.ridge import alpha_grid
from core.probe.ridge_math import CovarianceSweep

# One pass: fn(*per_shard[i], *common) for every shard i, results in shard order.
Map = Callable[[Callable[..., Any], list[tuple[Any, ...]], tuple[Any, ...]], list[Any]]


@dataclass(frozen=True)
class LayerSlice:
    """Rows [start, stop) of a layer file that every node reads (a shared filesystem)."""

    path: str
    start: int
    stop: int

    def load(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r", allow_pickle=False)[self.start : self.stop]


def _rows(source: Any) -> np.ndarray:
    """A shard's rows as float64 (a LayerSlice is read on the node that runs the pass)."""
    block = source.load() if isinstance(source, LayerSlice) else source
    return np.asarray(block, dtype=np.float64)


def local_map(fn: Callable[..., Any], per_shard: list[tuple[Any, ...]], common: tuple) -> list:
    return [fn(*args, *common) for args in per_shard]


# --------------------------------------------------------------- shard passes
def shard_sums(source: Any, train: np.ndarray) -> tuple[int, np.ndarray]:
    x = _rows(source)[train]
    return len(x), x.sum(axis=0)


def shard_scatter(
    source: Any, train: np.ndarray, z: np.ndarray, mean: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """(Xcᵀ Xc, Xcᵀ z, sum of squares of Xc) of the shard's centred training rows."""
    xc = _rows(source)[train] - mean
    return xc.T @ xc, xc.T @ z, float(np.einsum("ij,ij->", xc, xc))


def shard_errors(
    source: Any,
    train: np.ndarray,
    z: np.ndarray,
    mean: np.ndarray,
    vecs: np.ndarray,
    inv: np.ndarray,
    scaled: np.ndarray,
    intercept_leverage: float,
    method: str,
) -> np.ndarray:
    """The shard's summed squared LOO (or plain, for GCV) residuals for every alpha."""
    sweep = CovarianceSweep(
        vecs=vecs, inv=inv, scaled=scaled, leverage=intercept_leverage, method=method
    )
    xc = _rows(source)[train] - mean
    return sweep.block_errors(xc, z, sweep.sweep_matrix(), np.einsum)


def shard_predict(source: Any, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    return _rows(source) @ coef.T + intercept


# -------------------------------------------------------------------- driver
def fit_sharded(
    sources: Sequence[Any],
    bounds: Sequence[tuple[int, int]],
    y: np.ndarray,
    is_test: np.ndarray,
    probe_spec: ProbeSpec,
    run: Map = local_map,
) -> dict[str, np.ndarray]:
    """One layer's probe from shards (rows ``bounds[i]`` are ``sources[i]``), as the
    arrays ``core.results.build.layer_arrays`` gives for the whole layer at once."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    train_all = ~np.asarray(is_test, dtype=bool)
    n = int(train_all.sum())
    n_targets = y2.shape[1]
    alphas = alpha_grid(*probe_spec.alpha_grid)
    # targets z-scored on the training rows, as RidgeProbe.fit does (with an intercept)
    y_train = y2[train_all]
    y_mean = y_train.mean(axis=0)
    y_scale = y_train.std(axis=0)
    y_scale = np.where(y_scale > np.finfo(np.float64).tiny, y_scale, 1.0)
    trains = [train_all[a:b] for a, b in bounds]
    zs = [(y2[a:b][t] - y_mean) / y_scale for (a, b), t in zip(bounds, trains, strict=True)]
    shards = list(zip(sources, trains, strict=True))
    with_z = [(s, t, z) for (s, t), z in zip(shards, zs, strict=True)]

    counts = run(shard_sums, shards, ())
    d = counts[0][1].shape[0]
    if n <= d:
        raise ValueError(f"the covariance route needs more training rows than features ({n}, {d})")
    mean = np.sum([total for _, total in counts], axis=0) / n
    scatter = run(shard_scatter, with_z, (mean,))
    cov = np.sum([c for c, _, _ in scatter], axis=0)
    xtz = np.sum([x for _, x, _ in scatter], axis=0)
    unit = 1.0
    if probe_spec.alpha_scale == "trace":
        unit = max(sum(s for _, _, s in scatter) / d, np.finfo(np.float64).tiny)
    alphas = alphas * unit

    lam, vecs = linalg.eigh(cov, overwrite_a=True, check_finite=False, driver="evd")
    leverage = 1.0 / n
    sweep = CovarianceSweep.solve(
        lam, vecs, xtz, alphas, leverage=leverage, method=probe_spec.method
    )
    parts = (mean, sweep.vecs, sweep.inv, sweep.scaled, leverage, probe_spec.method)
    errors = run(shard_errors, with_z, parts)
    cv_errors = sweep.cv_errors(np.sum(errors, axis=0) / (n * n_targets), n, np.asarray)

    best = int(np.nanargmin(cv_errors)) if np.any(np.isfinite(cv_errors)) else 0
    coef = (sweep.weights_at(best) * y_scale).T  # [T, d], original units
    intercept = y_mean - coef @ mean
    pred = np.concatenate(run(shard_predict, [(s,) for s in sources], (coef, intercept)))
    return {
        "pred": pred.astype(np.float32),
        "coef": coef.astype(np.float32),
        "intercept": intercept.astype(np.float32),
        "alpha": np.asarray(alphas[best], dtype=np.float64),
        "at_edge": np.asarray(best == 0 or best == len(alphas) - 1),
        "loo_r2": np.asarray(1.0 - cv_errors[best], dtype=np.float64),
        "cv_errors": cv_errors,  # not stored in the layer file; the tests compare it
    }


def row_bounds(n: int, rows_per_shard: int) -> list[tuple[int, int]]:
    step = max(1, rows_per_shard)
    return [(start, min(start + step, n)) for start in range(0, n, step)]
