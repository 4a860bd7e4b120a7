"""95% intervals of what the tables and curves show, from stored predictions.

Every interval is a percentile bootstrap over a result's test entities
(:mod:`core.probe.bootstrap`: seeded, 1,000 resamples, one resample matrix per result,
so the probe's layers, its baselines and its eras are drawn on the same rows). The point
is the number the results report (their metrics table); the interval comes from the
stored predictions (float16 at most 1% of a target's spread off: invisible at two
decimals).

Eras (time datasets with a ``year``): a few ancient people can carry a whole R², so each
era is also scored on its own rows (R² around the era's own mean, Spearman within it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from core.probe.bootstrap import (
    N_BOOT,
    SEED,
    Interval,
    interval,
    layer_r2_intervals,
    r2_samples,
    resample_counts,
)
from core.results.probe_results import ProbeResults

# (label, first year, year after the last): year < 1500, 1500 <= year < 1800, year >= 1800
ERAS: tuple[tuple[str, float, float], ...] = (
    ("before 1500", -np.inf, 1500.0),
    ("1500–1800", 1500.0, 1800.0),
    ("after 1800", 1800.0, np.inf),
)
ALL_ERAS = "all"
# Fewer test rows than this in an era: no R², Spearman or interval is reported for it.
MIN_ERA_ROWS = 10


def test_mask(results: ProbeResults) -> np.ndarray:
    return results.test_mask


def _targets(results: ProbeResults, rows: np.ndarray) -> np.ndarray:
    return results.truth()[rows]


def r2_interval_of(
    y: np.ndarray, pred: np.ndarray, point: float | None = None, n_boot: int = N_BOOT
) -> Interval:
    """Mean-over-targets R² of `pred` against `y` with its 95% interval; `point`
    replaces the full-sample R² (the figure the results report)."""
    counts = resample_counts(len(y), n_boot, SEED)
    full = float(r2_samples(y, pred, np.ones((1, len(y))))[0])
    return interval(full if point is None else point, r2_samples(y, pred, counts))


def probe_r2(results: ProbeResults, layer: int, n_boot: int = N_BOOT) -> Interval:
    """The test R² of one layer's probe (its metrics' figure) with its 95% interval."""
    rows = test_mask(results)
    pred = np.asarray(results.predictions[results.layer_position(layer)], dtype=np.float64)
    return r2_interval_of(
        _targets(results, rows), pred[rows], results.metric_at(layer), n_boot=n_boot
    )


def baseline_r2(results: ProbeResults, name: str, n_boot: int = N_BOOT) -> Interval | None:
    """A baseline's test R² with its 95% interval; None without its stored predictions."""
    pred = results.baseline_prediction(name)
    if pred is None:
        return None
    rows = test_mask(results)
    point = results.baseline(name)
    return r2_interval_of(
        _targets(results, rows),
        np.asarray(pred, dtype=np.float64)[rows],
        point if np.isfinite(point) else None,
        n_boot=n_boot,
    )


def layer_band(results: ProbeResults, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Per layer: ``layer``, ``lo``, ``hi`` (the 95% interval of its test R²)."""
    rows = test_mask(results)
    preds = np.asarray(results.predictions, dtype=np.float64)[:, rows]
    lo, hi = layer_r2_intervals(_targets(results, rows), preds, n_boot=n_boot, seed=SEED)
    return pd.DataFrame({"layer": results.layers.astype(int), "lo": lo, "hi": hi})


# ------------------------------------------------------------------ Spearman
def spearman(y: np.ndarray, pred: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties); nan when either side is constant."""
    return float(spearman_samples(y, pred, np.ones((1, len(y))))[0])


def spearman_samples(y: np.ndarray, pred: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Spearman's rho of one target in every resample (`counts`: [n_boot, n]) -> [n_boot]."""
    y1 = np.asarray(y, dtype=np.float64).reshape(-1)
    p1 = np.asarray(pred, dtype=np.float64).reshape(-1)
    n = len(y1)
    reps = np.rint(counts).astype(np.int64)
    index = np.repeat(np.tile(np.arange(n), len(reps)), reps.ravel()).reshape(len(reps), n)
    ry = rankdata(y1[index], axis=1)
    rp = rankdata(p1[index], axis=1)
    ry -= ry.mean(axis=1, keepdims=True)
    rp -= rp.mean(axis=1, keepdims=True)
    denom = np.sqrt((ry**2).sum(axis=1) * (rp**2).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (ry * rp).sum(axis=1) / denom
    return np.where(denom > 0, rho, np.nan)


# ---------------------------------------------------------------------- eras
def era_labels(entities: pd.DataFrame) -> pd.Series | None:
    """Each entity's era: the table's ``era`` column when it has one, else from ``year``
    (:data:`ERAS`); None for a table with neither."""
    if "era" in entities:
        return entities["era"].astype("string").fillna("").astype(str)
    if "year" not in entities:
        return None
    year = entities["year"].to_numpy(dtype=np.float64)
    labels = np.full(len(year), "", dtype=object)
    for label, start, stop in ERAS:
        labels[(year >= start) & (year < stop)] = label
    return pd.Series(labels, index=entities.index, dtype=object).astype(str)


def _era_order(entities: pd.DataFrame, labels: pd.Series) -> list[str]:
    """Eras in time order (by their earliest year), the unlabelled left out."""
    present = [e for e in pd.unique(labels) if e]
    if "year" not in entities:
        return sorted(present)
    first = entities.groupby(labels.to_numpy())["year"].min()
    return sorted(present, key=lambda e: float(first.get(e, np.inf)))


@dataclass(frozen=True)
class EraScore:
    """Test R² and Spearman of one era's test rows (all test rows for :data:`ALL_ERAS`)."""

    era: str
    n: int
    r2: Interval | None  # None: fewer than MIN_ERA_ROWS test rows
    spearman: Interval | None


def era_scores(
    results: ProbeResults, layer: int, pred: np.ndarray | None = None, n_boot: int = N_BOOT
) -> list[EraScore]:
    """All test rows, then each era's, for a time result with one target: R² around the
    rows' own mean and Spearman, each with its 95% interval. `pred` [n_entities, 1]
    scores a baseline's predictions instead of the layer's probe. Empty for results
    without eras."""
    ent = results.entities
    labels = era_labels(ent)
    if labels is None or len(results.target_names) != 1:
        return []
    probe = pred is None
    if pred is None:
        pred = np.asarray(results.predictions[results.layer_position(layer)], dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64).reshape(len(ent))
    y = ent[results.target_names[0]].to_numpy(dtype=np.float64)
    test = test_mask(results)
    out = []
    groups = [(ALL_ERAS, test)] + [
        (era, test & (labels.to_numpy() == era)) for era in _era_order(ent, labels)
    ]
    for era, rows in groups:
        n = int(rows.sum())
        if n < MIN_ERA_ROWS:
            out.append(EraScore(era, n, None, None))
            continue
        counts = resample_counts(n, n_boot, SEED)
        yr, pr = y[rows], p[rows]
        r2_point = float(r2_samples(yr, pr, np.ones((1, n)))[0])
        rho_point = spearman(yr, pr)
        if probe and era == ALL_ERAS:  # the figures the results report
            r2_point = results.metric_at(layer)
            rho_point = results.metric_at(layer, "spearman")
        r2 = interval(r2_point, r2_samples(yr, pr, counts))
        rho = interval(rho_point, spearman_samples(yr, pr, counts))
        out.append(EraScore(era, n, r2, rho))
    return out


def baseline_intervals(
    results: ProbeResults, control: ProbeResults | None = None, n_boot: int = N_BOOT
) -> dict[str, Interval | float]:
    """:meth:`ProbeResults.baseline_values` with a 95% interval wherever predictions are
    stored (the baselines' since the build stores them, the control's always): label ->
    Interval, or the bare test R² of a baseline without stored predictions."""
    values: dict[str, Interval | float] = dict(results.baseline_values(None))
    names = {"names only": "name_only"}
    for label in list(values):
        name = names.get(label, "group_mean")
        found = baseline_r2(results, name, n_boot=n_boot)
        if found is not None:
            values[label] = found
    if control is not None:
        values["random init"] = probe_r2(control, control.best_layer(), n_boot=n_boot)
    return values


def summary_table(
    results: ProbeResults,
    baselines: dict[str, Interval | float] | None = None,
    control: ProbeResults | None = None,
) -> pd.DataFrame:
    """The probe at the layer chosen on training rows and what it is read against, one
    row each: ``test R²`` (``point ± half-width``), ``95% interval`` and ``test n``.
    `baselines`: :func:`baseline_intervals` when already computed."""
    layer = results.best_layer()
    values: dict[str, Interval | float] = {
        f"probe, layer {layer}": probe_r2(results, layer),
        **(baselines if baselines is not None else baseline_intervals(results, control)),
    }
    n_test = int(test_mask(results).sum())
    rows = []
    for label, value in values.items():
        given = value if isinstance(value, Interval) else None
        point = given.point if given is not None else float(value)  # type: ignore[arg-type]
        if not np.isfinite(point):
            continue
        has = given is not None and np.isfinite(given.lo)
        n = n_test
        if label == "random init" and control is not None:
            n = int(test_mask(control).sum())
        rows.append(
            {
                "": label,
                "test R²": given.pm() if has and given is not None else f"{point:.2f}",
                "95% interval": f"[{given.lo:.2f}, {given.hi:.2f}]"
                if has and given is not None
                else "",
                "test n": n,
            }
        )
    return pd.DataFrame(rows)
