"""Space and time neurons: units whose activation tracks a target (|Spearman|).

The units are MLP neurons (the input of each block's down projection, read by
``core.extract.mlp_hidden``; the paper's neurons, a privileged basis) when a model is at
hand, else residual-stream coordinates (no privileged basis: a rotation of the stream
changes them). Every table says which in its ``basis`` column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

BASES = ("mlp", "residual")
COLUMNS = ["layer", "target", "rank", "neuron", "spearman", "basis"]


def spearman_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman correlation of every column of x [n, d] with y [n] (0 for constant columns)."""
    rx = rankdata(np.asarray(x, dtype=np.float64), axis=0)
    ry = rankdata(np.asarray(y, dtype=np.float64))
    rx -= rx.mean(axis=0)
    ry -= ry.mean()
    denom = np.sqrt((rx**2).sum(axis=0) * (ry**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx.T @ ry) / denom
    return np.nan_to_num(rho, nan=0.0)


def top_neurons(
    x: np.ndarray,
    y: np.ndarray,
    target_names: tuple[str, ...],
    layer: int,
    k: int = 10,
    basis: str = "residual",
) -> pd.DataFrame:
    """Per target, the k units (columns of x) with the largest |Spearman|.

    Pass training rows only. Columns: layer, target, rank, neuron, spearman, basis
    ("mlp": MLP neurons, "residual": residual-stream dimensions).
    """
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    rows = []
    for j, target in enumerate(target_names):
        rho = spearman_columns(x, y2[:, j])
        order = np.argsort(-np.abs(rho), kind="stable")[:k]
        for rank, neuron in enumerate(order):
            rows.append(
                {
                    "layer": layer,
                    "target": target,
                    "rank": rank,
                    "neuron": int(neuron),
                    "spearman": float(rho[neuron]),
                    "basis": basis,
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)
