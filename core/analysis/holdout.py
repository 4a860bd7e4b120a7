"""Block hold-out generalisation (the paper's robustness check).

For a grouping column (continent, country, state, borough, century, decade, entity
type, creator), each block in turn is removed from training; a ridge probe fitted on
the remaining training rows predicts the block. Its proximity error on the block
("held-out") is compared with the proximity error of the block's *test* rows under the
ordinary probe fitted on all training rows ("nominal", as the paper's
``base_gen_test_ixs``): the block's training rows trained that probe, so scoring them
would flatter it. Proximity ranks each entity against all entities in both.

What the held-out error must beat (`block_references`): the name-only ridge and the
training-mean constant, each fitted without the block. Their held-out error ranks a block
entity's reference prediction against the same field as the probe's (the predictions of
the probe fitted without the block for every other entity), so per entity the three differ
only in that entity's own prediction and a paired bootstrap compares them
(`BlockHoldout.errors`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.analysis.common import MAX_PROXIMITY_ROWS, PROXIMITY_TOLERANCE
from core.analysis.controls import ridge
from core.probe.baselines import fit_ridge, name_features
from core.probe.metrics import proximity_errors, split_metrics

log = logging.getLogger(__name__)

MIN_BLOCK = 5  # smaller blocks are skipped (their proximity error is mostly noise)
KERNEL_ROWS = 6000  # above this many entities the name-only reference is solved in the primal
MAX_BLOCKS = 30  # the largest blocks of a column are held out, at most this many
# The references a block's held-out error is compared with, fitted without the block.
REFERENCES = ("name_only", "train_mean")
# Per-entity proximity errors kept for the paired bootstrap (`BlockHoldout.errors`):
# the probe fitted without the block, each reference, and the ordinary probe on the
# block's test rows.
ERROR_KINDS = ("probe", *REFERENCES, "nominal")


@dataclass(eq=False)
class BlockHoldout:
    """One column's hold-out: the per-block table, the held-out probe's predictions and
    the per-entity proximity errors of `ERROR_KINDS` (each [n], NaN outside its rows)."""

    table: pd.DataFrame
    heldout: np.ndarray  # [n, T]
    errors: dict[str, np.ndarray] = field(default_factory=dict)

    def error_matrix(self) -> np.ndarray:
        """[len(ERROR_KINDS), n] in `ERROR_KINDS` order."""
        n = len(self.heldout)
        return np.stack([self.errors.get(k, np.full(n, np.nan)) for k in ERROR_KINDS])


def _labels(groups: pd.Series | np.ndarray) -> np.ndarray:
    return pd.Series(np.asarray(groups, dtype=object)).astype(str).to_numpy()


def blocks_of(
    groups: pd.Series | np.ndarray, min_size: int = MIN_BLOCK, max_blocks: int = MAX_BLOCKS
) -> list[str]:
    """The largest blocks (as strings) with at least `min_size` entities."""
    counts = pd.Series(_labels(groups)).value_counts()
    counts = counts[(counts >= min_size) & (counts.index != "nan") & (counts.index != "")]
    return [str(b) for b in counts.index[:max_blocks]]


def _blocks(
    groups: pd.Series | np.ndarray, is_test: np.ndarray, min_size: int
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(block, its rows, the training rows outside it) of each block held out: those of
    `blocks_of` with at least two training rows left to fit on."""
    labels = _labels(groups)
    for block in blocks_of(labels, min_size):
        inside = labels == block
        train = ~inside & ~is_test
        if train.sum() >= 2:
            yield block, inside, train


def _proximity(
    y: np.ndarray,
    pred: np.ndarray,
    rows: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
    own_pred: np.ndarray | None = None,
) -> np.ndarray:
    """Per-entity proximity error of `rows`, ranked against all n entities' `pred`."""

    def scored(values: np.ndarray) -> np.ndarray:  # (lat, lon) or the year
        if kind == "space":
            return values[:, [target_names.index("lat"), target_names.index("lon")]]
        return values[:, 0]

    return proximity_errors(
        scored(y),
        scored(pred),
        kind,
        rows=rows,
        own_pred=None if own_pred is None else scored(own_pred),
        tolerance=PROXIMITY_TOLERANCE,
    )


def block_references(
    texts: Sequence[str],
    y: np.ndarray,
    columns: Mapping[str, pd.Series | np.ndarray],
    is_test: np.ndarray,
    min_size: int = MIN_BLOCK,
) -> dict[str, dict[str, np.ndarray]]:
    """Column -> reference -> [n, T] predictions for every block entity by that reference
    fitted on the training rows outside its block (NaN outside the blocks).

    train_mean: the mean target of those rows. name_only: the name-only ridge refitted on
    those rows (exact ridge in its dual form from one kernel of the n-gram features). Its
    n-gram vocabulary and its penalty are chosen once on all training rows (refitting the
    TF-IDF and a leave-one-out grid per block costs about a minute a block at 4,000 rows);
    both may have seen the block's training rows, which can only help the reference, so
    the probe's claim to beat it is not flattered.
    """
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    is_test = np.asarray(is_test, dtype=bool)
    feats = name_features(list(texts), ~is_test)
    alpha = float(fit_ridge(feats[~is_test], y2[~is_test]).alpha_)
    # the dual (n x n kernel) while it is no larger than the primal (d x d) system
    kernel = feats @ feats.T if len(feats) <= KERNEL_ROWS else None
    out: dict[str, dict[str, np.ndarray]] = {}
    for column, groups in columns.items():
        refs = {name: np.full(y2.shape, np.nan) for name in REFERENCES}
        for _, inside, train in _blocks(groups, is_test, min_size):
            refs["train_mean"][inside] = y2[train].mean(axis=0)
            fit, apply = np.flatnonzero(train), np.flatnonzero(inside)
            refs["name_only"][inside] = (
                _kernel_ridge(kernel, y2, fit, apply, alpha)
                if kernel is not None
                else _primal_ridge(feats, y2, fit, apply, alpha)
            )
        out[column] = refs
    return out


def _primal_ridge(
    feats: np.ndarray, y: np.ndarray, fit: np.ndarray, apply: np.ndarray, alpha: float
) -> np.ndarray:
    """The same ridge as `_kernel_ridge`, solved in the d x d primal (many rows)."""
    from scipy.linalg import cho_factor, cho_solve

    mu, mean = feats[fit].mean(axis=0), y[fit].mean(axis=0)
    centred = feats[fit] - mu
    gram = centred.T @ centred
    gram[np.diag_indices_from(gram)] += alpha
    w = cho_solve(cho_factor(gram), centred.T @ (y[fit] - mean))
    return np.asarray((feats[apply] - mu) @ w + mean)


def _kernel_ridge(
    kernel: np.ndarray, y: np.ndarray, fit: np.ndarray, apply: np.ndarray, alpha: float
) -> np.ndarray:
    """Ridge with an unpenalised intercept fitted on rows `fit`, predicting rows `apply`,
    from the linear kernel F F^T of all rows: w = Fc^T (Fc Fc^T + alpha I)^-1 (y - mean)."""
    from scipy.linalg import cho_factor, cho_solve

    k_ff = kernel[np.ix_(fit, fit)]
    k_af = kernel[np.ix_(apply, fit)]
    col = k_ff.mean(axis=0)  # <f_j, mean of the fit rows>
    grand = float(col.mean())  # |mean|^2
    centred = k_ff - col[None, :] - col[:, None] + grand
    cross = k_af - k_af.mean(axis=1, keepdims=True) - col[None, :] + grand
    mean = y[fit].mean(axis=0)
    centred[np.diag_indices_from(centred)] += alpha
    dual = cho_solve(cho_factor(centred), y[fit] - mean)
    return np.asarray(cross @ dual + mean)


def hold_out_blocks(
    x: np.ndarray,
    y: np.ndarray,
    groups: pd.Series | np.ndarray,
    is_test: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
    nominal_pred: np.ndarray | None = None,
    min_size: int = MIN_BLOCK,
    references: Mapping[str, np.ndarray] | None = None,
) -> BlockHoldout:
    """Hold out each block in turn.

    The table has one row per block with ``block``, ``n``, ``heldout_proximity``,
    ``nominal_proximity``, ``heldout_<reference>_proximity`` (given `references`, from
    :func:`block_references`), ``heldout_km_median`` (space) or ``heldout_mae_year``
    (time), ``train_mean_*`` (the mean target of the rows trained on); `heldout` is [n, T]
    where each block entity carries the prediction of the probe that never saw its block
    (NaN outside the blocks).
    """
    x = np.asarray(x, dtype=np.float64)
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    is_test = np.asarray(is_test, dtype=bool)
    if nominal_pred is None:
        nominal_pred = np.asarray(ridge(x[~is_test], y2[~is_test]).predict(x)).reshape(y2.shape)
    heldout = np.full(y2.shape, np.nan)
    n = len(y2)
    errors = {k: np.full(n, np.nan) for k in ("probe", "nominal", *(references or {}))}
    rows: list[dict[str, object]] = []
    for block, inside, train in _blocks(groups, is_test, min_size):
        nominal_rows = inside & is_test
        probe = ridge(x[train], y2[train])
        pred = np.asarray(probe.predict(x)).reshape(y2.shape)
        heldout[inside] = pred[inside]
        idx = np.flatnonzero(inside)
        m = split_metrics(y2[inside], pred[inside], target_names, kind, MAX_PROXIMITY_ROWS)
        nominal_idx = np.flatnonzero(nominal_rows)
        errors["probe"][idx] = _proximity(y2, pred, idx, target_names, kind)
        if len(nominal_idx):
            errors["nominal"][nominal_idx] = _proximity(
                y2, nominal_pred, nominal_idx, target_names, kind
            )
        row: dict[str, object] = {
            "block": block,
            "n": int(inside.sum()),
            "n_test": int(nominal_rows.sum()),
            "heldout_proximity": float(errors["probe"][idx].mean()),
            "nominal_proximity": float(errors["nominal"][nominal_idx].mean())
            if len(nominal_idx)
            else float("nan"),
            "heldout_r2": m["r2"],
        }
        for name, ref in (references or {}).items():
            own = np.where(np.isfinite(ref), ref, pred)  # a block the reference skipped
            errors[name][idx] = _proximity(y2, pred, idx, target_names, kind, own_pred=own)
            row[f"heldout_{name}_proximity"] = float(errors[name][idx].mean())
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
    return BlockHoldout(pd.DataFrame(rows), heldout, errors)
