"""Block hold-out generalisation (the paper's robustness check).

For a grouping column (continent, country, state, borough, century, decade, entity
type, creator), each block in turn is removed from training; a ridge probe fitted on
the remaining training rows predicts the block. Its proximity error on the block
("held-out") is compared with the proximity error of the block's *test* rows under the
ordinary probe fitted on all training rows ("nominal", as the paper's
``base_gen_test_ixs``): the block's training rows trained that probe, so scoring them
would flatter it. Proximity ranks each entity against all entities in both.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from core.analysis.common import MAX_PROXIMITY_ROWS, proximity_of_rows
from core.analysis.controls import ridge
from core.probe.metrics import split_metrics

log = logging.getLogger(__name__)

MIN_BLOCK = 5  # smaller blocks are skipped (their proximity error is mostly noise)


def blocks_of(
    groups: pd.Series | np.ndarray, min_size: int = MIN_BLOCK, max_blocks: int = 30
) -> list[str]:
    """The largest blocks (as strings) with at least `min_size` entities."""
    counts = pd.Series(np.asarray(groups, dtype=object)).astype(str).value_counts()
    counts = counts[(counts >= min_size) & (counts.index != "nan") & (counts.index != "")]
    return [str(b) for b in counts.index[:max_blocks]]


def block_holdout(
    x: np.ndarray,
    y: np.ndarray,
    groups: pd.Series | np.ndarray,
    is_test: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
    nominal_pred: np.ndarray | None = None,
    min_size: int = MIN_BLOCK,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Hold out each block in turn.

    Returns (table, heldout_pred): one row per block with ``block``, ``n``,
    ``heldout_proximity``, ``nominal_proximity``, ``heldout_km_median`` (space) or
    ``heldout_mae_year`` (time), ``train_mean_*`` (the mean target of the rows trained
    on); and [n, T] predictions where each block entity carries the prediction of the
    probe that never saw its block (NaN outside the blocks).
    """
    x = np.asarray(x, dtype=np.float64)
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    labels = pd.Series(np.asarray(groups, dtype=object)).astype(str).to_numpy()
    if nominal_pred is None:
        nominal_pred = np.asarray(ridge(x[~is_test], y2[~is_test]).predict(x)).reshape(y2.shape)
    heldout = np.full(y2.shape, np.nan)
    rows: list[dict[str, object]] = []
    for block in blocks_of(labels, min_size):
        inside = labels == block
        train = ~inside & ~is_test
        nominal_rows = inside & is_test
        if train.sum() < 2:
            continue
        probe = ridge(x[train], y2[train])
        pred = np.asarray(probe.predict(x)).reshape(y2.shape)
        heldout[inside] = pred[inside]
        idx = np.flatnonzero(inside)
        m = split_metrics(y2[inside], pred[inside], target_names, kind, MAX_PROXIMITY_ROWS)
        nominal_idx = np.flatnonzero(nominal_rows)
        row: dict[str, object] = {
            "block": block,
            "n": int(inside.sum()),
            "n_test": int(nominal_rows.sum()),
            "heldout_proximity": float(proximity_of_rows(y2, pred, idx, target_names, kind).mean()),
            "nominal_proximity": float(
                proximity_of_rows(y2, nominal_pred, nominal_idx, target_names, kind).mean()
            )
            if len(nominal_idx)
            else float("nan"),
            "heldout_r2": m["r2"],
        }
        nominal = (
            split_metrics(
                y2[nominal_rows], nominal_pred[nominal_rows], target_names, kind, MAX_PROXIMITY_ROWS
            )
            if nominal_rows.sum() >= 2
            else {}
        )
        if kind == "space":
            row["heldout_km_median"] = m["km_median"]
            row["nominal_km_median"] = nominal.get("km_median", float("nan"))
        else:
            row["heldout_mae_year"] = m[f"mae_{target_names[0]}"]
            row["nominal_mae_year"] = nominal.get(f"mae_{target_names[0]}", float("nan"))
        for j, t in enumerate(target_names):
            row[f"train_mean_{t}"] = float(y2[train, j].mean())
        rows.append(row)
    return pd.DataFrame(rows), heldout
