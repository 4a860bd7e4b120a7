"""Probe metrics: R², Spearman, MAE, great-circle error and proximity error.

Coordinates are always ``(lat, lon)`` in degrees, in that order, and every function
that takes them names them explicitly (the paper's own code swaps them in its
haversine metrics).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import r2_score

from core.probe.globe import to_globe

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius
KINDS = ("space", "time")

# Working-set budget (elements) for one block of the n x n comparison in proximity_error.
_BLOCK_ELEMENTS = 1 << 22


def haversine_km(
    lat1: np.ndarray | float,
    lon1: np.ndarray | float,
    lat2: np.ndarray | float,
    lon2: np.ndarray | float,
) -> np.ndarray:
    """Great-circle distance in km between (lat1, lon1) and (lat2, lon2), degrees in.

    Arguments broadcast against each other.
    """
    phi1 = np.radians(np.asarray(lat1, dtype=np.float64))
    phi2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dphi = phi2 - phi1
    dlmb = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dphi / 2.0) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    return to_globe(np.stack([np.asarray(lat), np.asarray(lon)], axis=-1))


def _as_latlon(points: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name}: space points must be [n, 2] (lat, lon), got shape {arr.shape}")
    return arr


def _as_years(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name}: time values must be [n] or [n, 1], got shape {arr.shape}")
    return arr


def proximity_errors(
    true: np.ndarray,
    pred: np.ndarray,
    kind: str,
    *,
    rows: np.ndarray | None = None,
    own_pred: np.ndarray | None = None,
    tolerance: float = 0.0,
) -> np.ndarray:
    """Proximity error per entity, the one definition: for each entity i (each of `rows`,
    default every entity), the fraction of the OTHER n - 1 entities j whose prediction
    pred_j lies strictly closer to true_i than i's own prediction does (0: nobody's
    prediction beats i's own; about 0.5 for noise). NaN for n < 2.

    kind "space": `true`/`pred` are [n, 2] (lat, lon) in degrees, great-circle distance.
    Closeness on the sphere is ranked by the dot product of unit vectors (monotone in
    great-circle distance), in row blocks of about 4M pairs: O(n·rows) time, O(n) memory
    beyond the block; n = 25,000 takes about 2-3 s on 2 cores.

    kind "time": [n] or [n, 1] years, distance |Δ|. Uses sorting and a vectorised binary
    search with the same |pred_j - true_i| < |own_i - true_i| test: O(n log n), exact.

    own_pred (the shape of `pred`): i's own prediction comes from it while the others'
    stay `pred`'s, so two predictors of the same rows are ranked against the same field
    (a constant prediction would otherwise tie with itself everywhere and read 0).

    tolerance (space only): j counts when its dot product with true_i exceeds i's own by
    more than this. 0 is the strict metric of `regression_metrics` (i's own dot product
    is then read off the same matrix product, so an equal prediction ties exactly); the
    analyses pass 1e-12 (`core.analysis.common.PROXIMITY_TOLERANCE`) because an
    `own_pred` dot product is computed apart and may differ from an equal one in the last
    bits. Time distances are exact differences and take no tolerance.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    as_points = _as_latlon if kind == "space" else _as_years
    t, p = as_points(true, "true"), as_points(pred, "pred")
    mine = None if own_pred is None else as_points(own_pred, "own_pred")
    if len(t) != len(p) or (mine is not None and len(mine) != len(p)):
        raise ValueError(f"true and pred have different lengths ({len(t)} vs {len(p)})")
    n = len(t)
    idx = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if n < 2:
        return np.full(len(idx), np.nan)
    if kind == "space":
        counts = _closer_counts_space(t, p, idx, mine, tolerance)
    else:
        counts = _closer_counts_time(t, p, idx, mine)
    return counts / (n - 1)


def proximity_error(
    true: np.ndarray,
    pred: np.ndarray,
    kind: str,
    *,
    max_rows: int | None = None,
    seed: int = 0,
    tolerance: float = 0.0,
) -> float:
    """The mean of :func:`proximity_errors` over every entity (the paper's proximity
    error of a split; strictly closer, 0 for perfect predictions, ~0.5 for noise).

    max_rows: above this many entities the split is scored on a fixed subsample of
    `max_rows` of them, drawn with `seed` (the comparison is O(n^2)): builds use
    `MAX_PROXIMITY_ENTITIES`, analyses `core.analysis.common.MAX_PROXIMITY_ROWS`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    as_points = _as_latlon if kind == "space" else _as_years
    t, p = as_points(true, "true"), as_points(pred, "pred")
    if len(t) != len(p):
        raise ValueError(f"true and pred have different lengths ({len(t)} vs {len(p)})")
    if len(t) < 2:
        return float("nan")
    if max_rows is not None and len(t) > max_rows:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(t), max_rows, replace=False))
        t, p = t[keep], p[keep]
    return float(np.mean(proximity_errors(t, p, kind, tolerance=tolerance)))


def _closer_counts_space(
    true: np.ndarray,
    pred: np.ndarray,
    rows: np.ndarray,
    own_pred: np.ndarray | None,
    tolerance: float,
) -> np.ndarray:
    """For each i in `rows`: #j != i with pred_j closer to true_i than i's own prediction."""
    n = len(true)
    t_vec = _unit_vectors(true[:, 0], true[:, 1])
    p_vec_t = np.ascontiguousarray(_unit_vectors(pred[:, 0], pred[:, 1]).T)  # [3, n]
    mine = None if own_pred is None else _unit_vectors(own_pred[:, 0], own_pred[:, 1])
    counts = np.empty(len(rows), dtype=np.int64)
    block = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, len(rows), block):
        idx = rows[start : start + block]
        here = np.arange(len(idx))
        cos_sim = t_vec[idx] @ p_vec_t  # [b, n]: larger = closer
        # i's own: off the same product (an equal prediction ties exactly), or apart
        own = cos_sim[here, idx] if mine is None else np.einsum("ij,ij->i", t_vec[idx], mine[idx])
        closer = cos_sim > own[:, None] + tolerance
        closer[here, idx] = False  # j == i is never counted
        counts[start : start + len(idx)] = np.count_nonzero(closer, axis=1)
    return counts


def _first_true(
    predicate: Callable[[np.ndarray, np.ndarray], np.ndarray], n_sorted: int, n_queries: int
) -> np.ndarray:
    """Vectorised bisection: for each query, the first index k in [0, n_sorted] where
    ``predicate(k_indices, query_indices)`` is true (the predicate must be monotone
    false...false true...true in k for every query)."""
    lo = np.zeros(n_queries, dtype=np.int64)
    hi = np.full(n_queries, n_sorted, dtype=np.int64)
    queries = np.arange(n_queries)
    while True:
        active = lo < hi
        if not active.any():
            return lo
        q = queries[active]
        mid = (lo[q] + hi[q]) // 2
        ok = predicate(mid, q)
        hi[q] = np.where(ok, mid, hi[q])
        lo[q] = np.where(ok, lo[q], mid + 1)


def _closer_counts_time(
    true: np.ndarray, pred: np.ndarray, rows: np.ndarray, own_pred: np.ndarray | None
) -> np.ndarray:
    """For each i in `rows`: #j != i with |pred_j - true_i| < |own_i - true_i|, in
    O(n log n).

    Among sorted predictions, {j : fl(|p_j - t|) < r} is one contiguous run (floating
    subtraction is monotone), so two bisections with the exact test find its ends.
    """
    n = len(true)
    t = true[rows]
    radius = np.abs((pred if own_pred is None else own_pred)[rows] - t)
    p_sorted = np.sort(pred)

    def inside(k: np.ndarray, q: np.ndarray) -> np.ndarray:
        return np.abs(p_sorted[k] - t[q]) < radius[q]

    # first k with p_k >= t or inside  (left-side outsiders come before it)
    lower = _first_true(lambda k, q: (p_sorted[k] >= t[q]) | inside(k, q), n, len(rows))
    # first k with p_k >= t and not inside  (the run of insiders ends before it)
    upper = _first_true(lambda k, q: (p_sorted[k] >= t[q]) & ~inside(k, q), n, len(rows))
    counts = upper - lower
    if own_pred is not None:  # i's own `pred` lies in the run when it beats `own_pred`
        counts -= np.abs(pred[rows] - t) < radius
    return counts


def _safe_spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _safe_r2(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(r2_score(a, b))


def regression_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
    max_proximity_rows: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Metrics of one split.

    Keys: ``r2`` (mean over targets), ``spearman`` (mean over targets), and per target
    ``r2_<t>``, ``spearman_<t>``, ``mae_<t>`` (target units: degrees or years).
    kind "space" (targets must include ``lat`` and ``lon``): ``km_mean``, ``km_median``
    (great-circle error) and ``proximity_error``. kind "time" (one target):
    ``proximity_error``. `max_proximity_rows`, `seed`: :func:`proximity_error`'s cap.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    names = tuple(target_names)
    t = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    if t.shape != p.shape or t.shape[1] != len(names):
        raise ValueError(f"shapes {t.shape} / {p.shape} do not match targets {names}")

    out: dict[str, float] = {}
    r2s, rhos = [], []
    for col, name in enumerate(names):
        r2 = _safe_r2(t[:, col], p[:, col])
        rho = _safe_spearman(t[:, col], p[:, col])
        out[f"r2_{name}"] = r2
        out[f"spearman_{name}"] = rho
        out[f"mae_{name}"] = (
            float(np.mean(np.abs(t[:, col] - p[:, col]))) if len(t) else float("nan")
        )
        r2s.append(r2)
        rhos.append(rho)
    out["r2"] = float(np.mean(r2s))
    out["spearman"] = float(np.mean(rhos))

    if kind == "space":
        if "lat" not in names or "lon" not in names:
            raise ValueError(f"space metrics need targets named 'lat' and 'lon', got {names}")
        i_lat, i_lon = names.index("lat"), names.index("lon")
        true_ll = t[:, [i_lat, i_lon]]
        pred_ll = p[:, [i_lat, i_lon]]
        km = haversine_km(
            lat1=true_ll[:, 0], lon1=true_ll[:, 1], lat2=pred_ll[:, 0], lon2=pred_ll[:, 1]
        )
        out["km_mean"] = float(np.mean(km)) if len(km) else float("nan")
        out["km_median"] = float(np.median(km)) if len(km) else float("nan")
        out["proximity_error"] = proximity_error(
            true_ll, pred_ll, "space", max_rows=max_proximity_rows, seed=seed
        )
    else:
        if len(names) != 1:
            raise ValueError(f"time metrics need exactly one target, got {names}")
        out["proximity_error"] = proximity_error(
            t[:, 0], p[:, 0], "time", max_rows=max_proximity_rows, seed=seed
        )
        # within eras: a few ancient entities can carry an R² (and a Spearman) alone
        for start in ERA_STARTS:
            recent = t[:, 0] >= start
            out[f"spearman_after_{start}"] = (
                _safe_spearman(t[recent, 0], p[recent, 0]) if recent.sum() >= 3 else float("nan")
            )
    return out


# Time metrics add Spearman over the entities dated in or after each of these years.
ERA_STARTS = (1500, 1800)

# Proximity error is O(n^2); above this many entities a split is scored on a fixed,
# seeded subsample (recorded in the results manifest).
MAX_PROXIMITY_ENTITIES = 8000


def split_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
    max_proximity_rows: int = MAX_PROXIMITY_ENTITIES,
    seed: int = 0,
) -> dict[str, float]:
    """regression_metrics, with the O(n^2) proximity error on a fixed, seeded subsample
    of at most `max_proximity_rows` rows (every other metric uses all rows)."""
    return regression_metrics(y_true, y_pred, target_names, kind, max_proximity_rows, seed)
