"""Baselines that say what a probe's number means, computed from the dataset alone.

* name-only: character 1-3-gram TF-IDF of the entity text (fitted on training texts), the
  same ridge as the probes: what spelling alone tells;
* group mean: each entity predicted at the training-rows mean target of its container or
  source (country, state, borough; outlet or file for time datasets): what knowing only
  the group gives, a bar the model may or may not clear;
* train mean: everyone at the training mean (R² 0 on train, below 0 elsewhere).

Each baseline's predictions for every entity are stored with the results
(``baseline_predictions.npy``), so a view or a bootstrap reads them without a refit.
The random-init control is a build of its own (``--random-init``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.common.config import ProbeSpec
from core.probe.metrics import split_metrics
from core.probe.ridge import RidgeProbe

# The column whose groups the group-mean baseline averages over: the first one present.
# "occupation" (historical figures: WordNet's hypernym of the person) comes before "source",
# which holds one value for nearly every person.
REFERENCE_COLUMNS = ("borough", "state", "country", "occupation", "source")
# The baselines every build stores, in this order (a group mean only where a column applies).
BASELINE_NAMES: tuple[str, ...] = ("name_only", "group_mean", "train_mean")
NAME_FEATURES = 4096


def reference_column(frame: pd.DataFrame) -> str | None:
    """The container (space) or source (time) column of an entity table, if any."""
    return next((c for c in REFERENCE_COLUMNS if c in frame and frame[c].nunique() > 1), None)


def fit_ridge(x: np.ndarray, y: np.ndarray, spec: ProbeSpec | None = None) -> RidgeProbe:
    """The probes' ridge (alpha by leave-one-out on the training rows given)."""
    spec = spec or ProbeSpec()
    return RidgeProbe.from_spec(spec).fit(x, y)


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


def baseline_predictions(
    entities: pd.DataFrame,
    target_names: tuple[str, ...],
    spec: ProbeSpec | None = None,
    names: Sequence[str] = BASELINE_NAMES,
) -> dict[str, np.ndarray]:
    """Each baseline's prediction [n, T] (target units) for every entity, in `names`'
    order; the group mean is absent when the table has no reference column."""
    y = entities[list(target_names)].to_numpy(dtype=np.float64)
    is_test = entities["is_test"].to_numpy(dtype=bool)
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name == "name_only":
            out[name] = name_only_predictions(list(entities["text"]), y, is_test, spec)
        elif name == "group_mean":
            column = reference_column(entities)
            if column is not None:
                out[name] = group_mean_predictions(y, is_test, entities[column])
        elif name == "train_mean":
            out[name] = mean_predictions(y, is_test)
        else:
            raise ValueError(f"unknown baseline {name!r}; expected one of {BASELINE_NAMES}")
    return out


def baseline_table(
    entities: pd.DataFrame,
    target_names: tuple[str, ...],
    kind: str,
    spec: ProbeSpec | None = None,
    predictions: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per (baseline, split) with the probes' metrics, from the entity table and
    the baselines' predictions (:func:`baseline_predictions`, computed when not given)."""
    if predictions is None:
        predictions = baseline_predictions(entities, target_names, spec)
    y = entities[list(target_names)].to_numpy(dtype=np.float64)
    is_test = entities["is_test"].to_numpy(dtype=bool)
    sources = {"name_only": "text", "group_mean": reference_column(entities), "train_mean": ""}
    rows = []
    for baseline, pred in predictions.items():
        pred = np.asarray(pred, dtype=np.float64).reshape(y.shape)
        for split, mask in (("train", ~is_test), ("test", is_test)):
            if mask.sum() < 2:
                continue
            rows.append(
                {
                    "baseline": baseline,
                    "column": sources.get(baseline) or "",
                    "split": split,
                    "n": int(mask.sum()),
                    **split_metrics(y[mask], pred[mask], target_names, kind),
                }
            )
    return pd.DataFrame(rows)
