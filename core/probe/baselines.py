"""Baselines that say what a probe's number means, computed from the dataset alone.

* name-only: character 1-3-gram TF-IDF of the entity text (fitted on training texts), the
  same ridge as the probes: what spelling alone tells;
* group mean: each entity predicted at the training-rows mean target of its container or
  source (country, state, borough; outlet or file for time datasets): what knowing only
  the group gives, a bar the model may or may not clear;
* train mean: everyone at the training mean (R² 0 on train, below 0 elsewhere).

The random-init control is a build of its own (``--random-init``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.common.config import ProbeSpec
from core.probe.metrics import split_metrics
from core.probe.ridge import RidgeProbe, alpha_grid

# The column whose groups the group-mean baseline averages over: the first one present.
REFERENCE_COLUMNS = ("borough", "state", "country", "source")
NAME_FEATURES = 4096


def reference_column(frame: pd.DataFrame) -> str | None:
    """The container (space) or source (time) column of an entity table, if any."""
    return next((c for c in REFERENCE_COLUMNS if c in frame and frame[c].nunique() > 1), None)


def fit_ridge(x: np.ndarray, y: np.ndarray, spec: ProbeSpec | None = None) -> RidgeProbe:
    """The probes' ridge (alpha by leave-one-out on the training rows given)."""
    spec = spec or ProbeSpec()
    return RidgeProbe(
        alphas=alpha_grid(*spec.alpha_grid), method=spec.method, alpha_scale=spec.alpha_scale
    ).fit(x, y)


def name_features(
    texts: Sequence[str], train: np.ndarray, max_features: int = NAME_FEATURES
) -> np.ndarray:
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


def name_only_predictions(
    texts: Sequence[str], y: np.ndarray, is_test: np.ndarray, spec: ProbeSpec | None = None
) -> np.ndarray:
    """Predictions [n, T] of the probes' ridge on name-only TF-IDF features."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    feats = name_features(texts, ~is_test)
    probe = fit_ridge(feats[~is_test], y2[~is_test], spec)
    return np.asarray(probe.predict(feats)).reshape(y2.shape)


def mean_predictions(y: np.ndarray, is_test: np.ndarray) -> np.ndarray:
    """Every entity predicted at the mean of the training targets: [n, T]."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    return np.broadcast_to(y2[~is_test].mean(axis=0), y2.shape).copy()


def group_mean_predictions(y: np.ndarray, is_test: np.ndarray, groups: pd.Series) -> np.ndarray:
    """Each entity at its group's training-rows mean target; a group with no training
    row gets the training mean. [n, T]"""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    keys = groups.astype(str).to_numpy()
    train = pd.DataFrame(y2[~is_test]).groupby(keys[~is_test]).mean()
    pred = train.reindex(keys).to_numpy()
    fallback = y2[~is_test].mean(axis=0)
    return np.where(np.isnan(pred), fallback, pred)


def baseline_table(
    entities: pd.DataFrame,
    target_names: tuple[str, ...],
    kind: str,
    spec: ProbeSpec | None = None,
) -> pd.DataFrame:
    """One row per (baseline, split) with the probes' metrics, from the entity table."""
    y = entities[list(target_names)].to_numpy(dtype=np.float64)
    is_test = entities["is_test"].to_numpy(dtype=bool)
    preds: dict[str, tuple[np.ndarray, str]] = {
        "name_only": (name_only_predictions(list(entities["text"]), y, is_test, spec), "text"),
    }
    column = reference_column(entities)
    if column is not None:
        preds["group_mean"] = (group_mean_predictions(y, is_test, entities[column]), column)
    rows = []
    for baseline, (pred, source) in preds.items():
        for split, mask in (("train", ~is_test), ("test", is_test)):
            if mask.sum() < 2:
                continue
            rows.append(
                {
                    "baseline": baseline,
                    "column": source,
                    "split": split,
                    "n": int(mask.sum()),
                    **split_metrics(y[mask], pred[mask], target_names, kind),
                }
            )
    return pd.DataFrame(rows)
