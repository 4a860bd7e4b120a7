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
from core.probe.metrics import split_metrics
from core.probe.ridge import RidgeProbe, alpha_grid

log = logging.getLogger(__name__)


def ridge(x: np.ndarray, y: np.ndarray, alphas: np.ndarray | None = None) -> RidgeProbe:
    """The probe every analysis uses (alpha by exact leave-one-out over the default grid)."""
    return RidgeProbe(alphas=alpha_grid() if alphas is None else alphas).fit(x, y)


def loo_r2(probe: RidgeProbe) -> float:
    """Leave-one-out R² on the probe's own training rows at its chosen alpha.

    The solver's error is the mean squared LOO residual of z-scored targets (each of
    variance 1 on the training rows), so 1 minus it is the LOO R² averaged over targets.
    """
    return 1.0 - float(probe.cv_errors_[probe.alpha_index_])


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


def mean_baseline(y: np.ndarray, is_test: np.ndarray) -> np.ndarray:
    """Every entity predicted at the mean of the training targets: [n, T]."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    return np.broadcast_to(y2[~is_test].mean(axis=0), y2.shape).copy()


def shuffled_probe_predictions(
    x: np.ndarray, y: np.ndarray, is_test: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Predictions [n, T] of a ridge probe fitted on permuted training targets."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    train = np.flatnonzero(~is_test)
    perm = np.random.default_rng(seed).permutation(len(train))
    probe = ridge(x[train], y2[train][perm])
    return np.asarray(probe.predict(x)).reshape(y2.shape)


def name_features(texts: Sequence[str], train: np.ndarray, max_features: int = 4096) -> np.ndarray:
    """Character 1-3-gram TF-IDF (fitted on the training texts only), dense float64."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(1, 3),
        lowercase=True,
        max_features=max_features,
        sublinear_tf=True,
    )
    vec.fit([texts[int(i)] for i in np.flatnonzero(train)])
    return np.asarray(vec.transform(list(texts)).toarray(), dtype=np.float64)


def name_only_predictions(texts: Sequence[str], y: np.ndarray, is_test: np.ndarray) -> np.ndarray:
    """Predictions [n, T] of the same ridge probe on name-only TF-IDF features."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    feats = name_features(texts, ~is_test)
    probe = ridge(feats[~is_test], y2[~is_test])
    return np.asarray(probe.predict(feats)).reshape(y2.shape)


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
        y, mean_baseline(y, is_test), is_test, target_names, kind, layer=-1, control="mean"
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
