"""Between and within groups: how much of a probe's R² is telling groups apart.

For a grouped dataset (places in countries, states or boroughs; people in eras or
centuries; films and events in decades) a test set's variance splits into a part between
the groups' means and a part within them. With test-row group means of the truth
(ȳ_g) and of the prediction (p̄_g), per target:

* R²_between = 1 − Σ_g n_g (ȳ_g − p̄_g)² / Σ_g n_g (ȳ_g − ȳ)²: how well the group
  centres are placed;
* R²_within = 1 − Σ_i ((y_i − ȳ_g) − (p_i − p̄_g))² / Σ_i (y_i − ȳ_g)²: how well
  entities are placed inside their group (≤ 0: no better than the group's centre);
* the within-group correlation of (p_i − p̄_g) with (y_i − ȳ_g), pooled over groups;
* the share of R² the groups explain: the R² of every entity put at its group's predicted
  centre (p̄_g) over the probe's R² (above 1: inside the groups the probe only adds error).

Each is a mean over targets (the share: a ratio of means) and every one is computed for
every bootstrap resample at once from weighted group sums (`counts` as in
:mod:`core.probe.bootstrap`), so all statistics, layers and predictors of one result see
the same resamples.

The within-group probe (:func:`within_target`, :func:`fit_within_probes`) reads the
entity's value minus its group's *training* mean, so the ridge cannot spend itself on
the between-group part: it holds only groups with at least ``MIN_GROUP_TRAIN`` training
rows, and test rows only from those groups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from core.common.config import ProbeSpec

# Statistics of :func:`decomposition_samples`, in the order of its output.
STATS: tuple[str, ...] = ("r2", "r2_between", "r2_within", "within_corr", "group_share")
# A group needs this many training rows for the within-group probe (its training mean is
# the offset's origin); groups with fewer, and their test rows, are left out.
MIN_GROUP_TRAIN = 5


def group_codes(labels: Sequence[str] | np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer codes of non-empty labels (-1 for a missing one) and the labels in order."""
    raw = np.asarray(labels, dtype=object)
    text = np.array(["" if v is None or v != v else str(v) for v in raw], dtype=object)
    names = sorted({v for v in text if v and v not in ("nan", "<NA>", "None")})
    index = {name: i for i, name in enumerate(names)}
    codes = np.array([index.get(v, -1) for v in text], dtype=np.int64)
    return codes, names


def _one_hot(codes: np.ndarray, k: int) -> sparse.csr_matrix:
    n = len(codes)
    keep = codes >= 0
    return sparse.csr_matrix(
        (np.ones(int(keep.sum())), (np.flatnonzero(keep), codes[keep])), shape=(n, k)
    )


def _group_sums(counts: np.ndarray, values: np.ndarray, onehot: sparse.csr_matrix) -> np.ndarray:
    """[B, k]: per resample, the count-weighted sum of `values` [n] over each group."""
    weighted = counts * values[None, :]
    return np.asarray((onehot.T @ weighted.T).T)


def decomposition_samples(
    y: np.ndarray, preds: np.ndarray, codes: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """[B, P, len(STATS)]: every statistic of :data:`STATS` for P predictors
    (`preds` [P, n, T] or [n, T]) in each row of `counts` [B, n]; rows whose code is -1
    (no group) are left out. NaN where a statistic is undefined (no within-group spread,
    a non-positive R² for the share)."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    p = np.asarray(preds, dtype=np.float64)
    p = p.reshape(-1, *y2.shape)
    keep = codes >= 0
    y2, p, codes, counts = y2[keep], p[:, keep], codes[keep], counts[:, keep]
    k = int(codes.max()) + 1 if len(codes) else 0
    onehot = _one_hot(codes, k)
    n_g = np.asarray((onehot.T @ counts.T).T)  # [B, k]
    inv = np.divide(1.0, n_g, out=np.zeros_like(n_g), where=n_g > 0)
    total = counts.sum(axis=1)  # [B]
    n_p, n_t = p.shape[0], y2.shape[1]
    out = np.full((len(counts), n_p, len(STATS)), np.nan)
    parts = np.zeros((len(STATS) - 1, len(counts), n_p, n_t))  # r2, between, within, corr
    centred = np.zeros((len(counts), n_p, n_t))
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(n_t):
            yt = y2[:, t]
            y1 = _group_sums(counts, yt, onehot)  # [B, k]
            sum_y = counts @ yt
            y_sq = counts @ yt**2
            ss_tot = y_sq - sum_y**2 / total
            between_y = (y1**2 * inv).sum(axis=1)
            ss_wtot = y_sq - between_y
            ss_btot = between_y - sum_y**2 / total
            for j in range(n_p):
                pt = p[j, :, t]
                p1 = _group_sums(counts, pt, onehot)
                ss_wpred = counts @ pt**2 - (p1**2 * inv).sum(axis=1)
                cp_w = counts @ (yt * pt) - (y1 * p1 * inv).sum(axis=1)
                ss_wres = ss_wtot + ss_wpred - 2.0 * cp_w
                ss_bres = ((y1 - p1) ** 2 * inv).sum(axis=1)
                parts[0, :, j, t] = 1.0 - (ss_bres + ss_wres) / ss_tot
                parts[1, :, j, t] = 1.0 - ss_bres / ss_btot
                parts[2, :, j, t] = np.where(ss_wtot > 0, 1.0 - ss_wres / ss_wtot, np.nan)
                denom = np.sqrt(np.clip(ss_wtot, 0, None) * np.clip(ss_wpred, 0, None))
                parts[3, :, j, t] = np.where(denom > 0, cp_w / denom, np.nan)
                centred[:, j, t] = 1.0 - (ss_wtot + ss_bres) / ss_tot
        means = parts.mean(axis=3)  # [4, B, P]
        out[:, :, :4] = np.moveaxis(means, 0, 2)
        r2 = means[0]
        share = centred.mean(axis=2) / r2
        out[:, :, 4] = np.where(r2 > 0, share, np.nan)
    return out


def centred_by_group(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """[n, T] each row minus the mean of the rows of its group (its group's centre, as the
    decomposition takes it); NaN for rows without a group (code -1)."""
    v = np.asarray(values, dtype=np.float64).reshape(len(codes), -1)
    codes = np.asarray(codes, dtype=np.int64)
    out = np.full_like(v, np.nan)
    keep = codes >= 0
    if not keep.any():
        return out
    k = int(codes[keep].max()) + 1
    n_g = np.bincount(codes[keep], minlength=k).astype(np.float64)
    for t in range(v.shape[1]):
        means = np.bincount(codes[keep], weights=v[keep, t], minlength=k) / np.maximum(n_g, 1)
        out[keep, t] = v[keep, t] - means[codes[keep]]
    return out


# ---------------------------------------------------------------- within-group probe
@dataclass(frozen=True)
class WithinTarget:
    """The within-group probe's target and rows."""

    offset: np.ndarray  # [n, T] value minus its group's training mean; NaN outside `rows`
    rows: np.ndarray  # [n] bool: entities of groups with >= min_train training rows
    codes: np.ndarray  # [n] group code (-1: no group)
    groups: list[str]  # every group label (codes index it)
    kept_groups: list[str]  # the groups the probe uses
    min_train: int


def within_target(
    y: np.ndarray,
    labels: Sequence[str] | np.ndarray,
    is_test: np.ndarray,
    min_train: int = MIN_GROUP_TRAIN,
) -> WithinTarget:
    """Each entity's value minus its group's training-rows mean, for groups with at least
    `min_train` training rows (test rows only from those groups)."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    codes, groups = group_codes(labels)
    is_test = np.asarray(is_test, dtype=bool)
    k = len(groups)
    train = (~is_test) & (codes >= 0)
    n_train = np.bincount(codes[train], minlength=k) if k else np.zeros(0, int)
    kept = n_train >= min_train
    rows = (codes >= 0) & kept[np.clip(codes, 0, None)] if k else np.zeros(len(y2), bool)
    offset = np.full_like(y2, np.nan)
    for t in range(y2.shape[1]):
        sums = np.bincount(codes[train], weights=y2[train, t], minlength=k)
        means = np.divide(sums, n_train, out=np.full(k, np.nan), where=n_train > 0)
        offset[rows, t] = y2[rows, t] - means[codes[rows]]
    kept_groups = [g for g, ok in zip(groups, kept, strict=True) if ok]
    return WithinTarget(offset, rows, codes, groups, kept_groups, min_train)


@dataclass(frozen=True)
class WithinFit:
    """Within-group probes of every layer and the name-only ridge on the same target."""

    target: WithinTarget
    layers: list[int]
    preds: np.ndarray  # [L, n, T] NaN outside target.rows
    alphas: np.ndarray  # [L]
    at_edge: np.ndarray  # [L] bool
    loo_r2: np.ndarray  # [L] training rows' leave-one-out R² (z units, mean over targets)
    name_only: np.ndarray  # [n, T] NaN outside target.rows


def fit_within_probes(
    layer_rows: Callable[[int, np.ndarray], np.ndarray],
    layers: Sequence[int],
    target: WithinTarget,
    is_test: np.ndarray,
    texts: Sequence[str],
    spec: ProbeSpec | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WithinFit:
    """The probes' ridge (alpha by leave-one-out over the spec's grid, on training rows)
    fitted per layer to `target.offset` on the target's training rows; `layer_rows(layer,
    rows)` gives a layer's activations of the rows (an index array). Also the name-only
    ridge (character n-grams of the texts) on the same target and rows."""
    from core.probe.baselines import name_only_predictions
    from core.probe.ridge import RidgeProbe, loo_r2

    spec = spec or ProbeSpec()
    rows = np.flatnonzero(target.rows)
    test = np.asarray(is_test, dtype=bool)[rows]
    if (~test).sum() < 2 or len(target.kept_groups) < 2:
        raise ValueError(
            f"too few rows for a within-group probe: {int((~test).sum())} training rows in "
            f"{len(target.kept_groups)} groups with >= {target.min_train} training rows"
        )
    z = target.offset[rows]
    n, t = target.offset.shape
    preds = np.full((len(layers), n, t), np.nan, dtype=np.float64)
    alphas, edges, loos = [], [], []
    for i, layer in enumerate(layers):
        x = np.asarray(layer_rows(int(layer), rows), dtype=np.float64)
        probe = RidgeProbe.from_spec(spec).fit(x[~test], z[~test])
        preds[i, rows] = np.asarray(probe.predict(x), dtype=np.float64).reshape(len(rows), t)
        alphas.append(float(probe.alpha_))
        edges.append(bool(probe.alpha_at_edge_))
        loos.append(float(loo_r2(probe)))
        if progress:
            progress(i + 1, len(layers))
    names = np.full((n, t), np.nan)
    names[rows] = name_only_predictions([texts[int(r)] for r in rows], z, test, spec)
    return WithinFit(
        target,
        [int(v) for v in layers],
        preds,
        np.asarray(alphas),
        np.asarray(edges, dtype=bool),
        np.asarray(loos),
        names,
    )
