"""Controls: what a probe scores without the model's signal.

* train-mean baseline: predict the training mean for everyone (R² = 0 on train by
  construction, below 0 elsewhere);
* shuffled targets: the same ridge probe fitted on a seeded permutation of the training
  targets (R² near 0 on held-out rows if the probe is not overfitting noise);
* name-only: character 1-3-gram TF-IDF of the entity text, no language model, the same
  ridge probe (how much can spelling alone tell);
* random-init model: read from that control's own results (``--random-init`` builds).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from core.analysis.common import MAX_PROXIMITY_ROWS
from core.common.config import ProbeSpec
from core.probe.baselines import fit_ridge, mean_predictions, name_only_predictions
from core.probe.metrics import split_metrics
from core.probe.ridge import RidgeProbe, loo_r2

log = logging.getLogger(__name__)


def ridge(x: np.ndarray, y: np.ndarray, spec: ProbeSpec | None = None) -> RidgeProbe:
    """The probe every analysis uses: the build's (alpha by exact leave-one-out over the
    default grid, in units of the layer's trace(Xc^T Xc)/d)."""
    return fit_ridge(x, y, spec)


def split_rows(
    y: np.ndarray,
    pred: np.ndarray,
    is_test: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
    **labels: object,
) -> list[dict[str, object]]:
    """One metrics row per split (train, test), with `labels` added."""
    rows: list[dict[str, object]] = []
    for split, mask in (("train", ~is_test), ("test", is_test)):
        if mask.sum() < 2:
            continue
        rows.append(
            {
                **labels,
                "split": split,
                "n": int(mask.sum()),
                **split_metrics(y[mask], pred[mask], target_names, kind, MAX_PROXIMITY_ROWS),
            }
        )
    return rows


def shuffled_probe_predictions(
    x: np.ndarray, y: np.ndarray, is_test: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Predictions [n, T] of a ridge probe fitted on permuted training targets."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    train = np.flatnonzero(~is_test)
    perm = np.random.default_rng(seed).permutation(len(train))
    probe = ridge(x[train], y2[train][perm])
    return np.asarray(probe.predict(x)).reshape(y2.shape)


def layer_controls(
    x: np.ndarray,
    y: np.ndarray,
    is_test: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
    layer: int,
    seed: int = 0,
) -> tuple[list[dict[str, object]], np.ndarray]:
    """Metrics rows of the probe and the shuffled-target control at one layer, and the
    probe's predictions (for reuse by other analyses)."""
    x = np.asarray(x, dtype=np.float64)
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    probe = ridge(x[~is_test], y2[~is_test])
    pred = np.asarray(probe.predict(x)).reshape(y2.shape)
    rows = split_rows(
        y2, pred, is_test, target_names, kind, layer=layer, control="probe", alpha=probe.alpha_
    )
    # the training rows' leave-one-out R² (z units, mean over targets): what layer
    # choices use, so no choice looks at test rows
    for row in rows:
        row["loo_r2"] = loo_r2(probe) if row["split"] == "train" else float("nan")
    shuffled = shuffled_probe_predictions(x, y2, is_test, seed)
    rows += split_rows(y2, shuffled, is_test, target_names, kind, layer=layer, control="shuffled")
    return rows, pred


def constant_controls(
    texts: Sequence[str],
    y: np.ndarray,
    is_test: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
) -> list[dict[str, object]]:
    """Controls that do not depend on the layer (train mean, name-only); layer = -1."""
    rows = split_rows(
        y, mean_predictions(y, is_test), is_test, target_names, kind, layer=-1, control="mean"
    )
    for row in rows:
        # A constant prediction ties with every other one, and proximity error counts only
        # strictly closer predictions: it would read 0 (perfect). It is undefined here.
        row["proximity_error"] = float("nan")
    rows += split_rows(
        y,
        name_only_predictions(texts, y, is_test),
        is_test,
        target_names,
        kind,
        layer=-1,
        control="name_only",
    )
    return rows
