"""Helpers shared by the analyses: the proximity cap, per-entity proximity."""

from __future__ import annotations

import numpy as np

# Proximity error is O(n^2): above this many rows a split is scored on a seeded subsample.
MAX_PROXIMITY_ROWS = 4000


def _points(y: np.ndarray, target_names: tuple[str, ...], kind: str) -> np.ndarray:
    """[n, 3] unit vectors (space) or [n] years (time)."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if kind == "space":
        lat = np.radians(y[:, target_names.index("lat")])
        lon = np.radians(y[:, target_names.index("lon")])
        return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)
    return y[:, 0]


def proximity_of_rows(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    rows: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
    chunk: int = 512,
    own_pred: np.ndarray | None = None,
) -> np.ndarray:
    """Per entity i in `rows`: fraction of the other entities j (of all n) whose prediction
    lies strictly closer to i's true position than i's own prediction does.

    The mean over a block is the paper's proximity error of that block. `own_pred` ([n, T],
    default `y_pred`): i's own prediction comes from it while the others' stay `y_pred`'s,
    so two predictors of the same rows are ranked against the same field (a constant
    prediction would otherwise tie with itself everywhere and read a perfect 0).
    """
    true = _points(y_true, target_names, kind)
    pred = _points(y_pred, target_names, kind)
    mine = pred if own_pred is None else _points(own_pred, target_names, kind)
    n = len(true)
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty(len(rows))
    for start in range(0, len(rows), chunk):
        idx = rows[start : start + chunk]
        if kind == "space":
            sim = true[idx] @ pred.T  # larger dot product = closer on the sphere
            own = np.einsum("ij,ij->i", true[idx], mine[idx])
            closer = sim > own[:, None] + 1e-12
        else:
            dist = np.abs(pred[None, :] - true[idx][:, None])
            own = np.abs(mine[idx] - true[idx])
            closer = dist < own[:, None]
        closer[np.arange(len(idx)), idx] = False
        out[start : start + len(idx)] = closer.sum(axis=1) / max(1, n - 1)
    return out
