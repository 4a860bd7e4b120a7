"""Baselines beside every number: name-only, group mean, train mean, and era Spearman."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.probe.baselines import (
    baseline_predictions,
    baseline_table,
    group_mean_predictions,
    name_only_predictions,
    reference_column,
)
from core.probe.metrics import regression_metrics


def test_group_mean_uses_training_rows_only() -> None:
    y = np.array([[1.0], [3.0], [10.0], [100.0], [7.0]])
    is_test = np.array([False, False, False, True, True])
    groups = pd.Series(["a", "a", "b", "a", "c"])
    pred = group_mean_predictions(y, is_test, groups)
    # the test row of group a gets a's training mean (2), not its own 100; an unseen
    # group falls back to the training mean
    assert pred[:, 0].tolist() == [2.0, 2.0, 10.0, 2.0, pytest.approx(14 / 3)]


def test_reference_column_is_the_container_or_source() -> None:
    frame = pd.DataFrame(
        {"state": ["Ohio", "Iowa"], "country": ["United States"] * 2, "source": ["x", "x"]}
    )
    assert reference_column(frame) == "state"
    assert reference_column(frame.drop(columns="state")) is None  # one value: no groups
    assert reference_column(pd.DataFrame({"source": ["nyt", "bbc"]})) == "source"


def test_name_only_reads_spelling() -> None:
    """Years written into the names are found by the character n-gram ridge alone."""
    rng = np.random.default_rng(0)
    years = rng.integers(1800, 2000, 400).astype(float)
    texts = [f"event of the {int(y) // 10 * 10}s number {i}" for i, y in enumerate(years)]
    is_test = np.arange(400) % 5 == 0
    pred = name_only_predictions(texts, years, is_test)
    assert regression_metrics(years[is_test], pred[is_test], ("year",), "time")["r2"] > 0.8


def test_baseline_table_rows() -> None:
    rng = np.random.default_rng(1)
    n = 200
    entities = pd.DataFrame(
        {
            "name": [f"p{i}" for i in range(n)],
            "text": [f"p{i}" for i in range(n)],
            "lat": rng.uniform(-50, 50, n),
            "lon": rng.uniform(-100, 100, n),
            "country": rng.choice(["A", "B", "C"], n),
            "is_test": np.arange(n) % 4 == 0,
        }
    )
    table = baseline_table(entities, ("lat", "lon"), "space")
    assert set(zip(table["baseline"], table["split"], strict=True)) == {
        (b, s) for b in ("name_only", "group_mean", "train_mean") for s in ("train", "test")
    }
    group = table[table["baseline"] == "group_mean"]
    assert set(group["column"]) == {"country"}
    assert (table.loc[table["split"] == "test", "n"] == 50).all()


def test_time_metrics_report_spearman_within_eras() -> None:
    """Well-placed ancient people carry the overall Spearman; among moderns it is ~0."""
    ancient = np.arange(-900.0, 600.0, 50.0)
    modern = np.arange(1800.0, 2000.0, 2.0)
    true = np.concatenate([ancient, modern])
    rng = np.random.default_rng(0)
    pred = np.concatenate([ancient, rng.permutation(modern)])
    m = regression_metrics(true, pred, ("year",), "time")
    assert m["spearman_after_1800"] == pytest.approx(
        pd.Series(modern).corr(pd.Series(pred[len(ancient) :]), method="spearman")
    )
    assert abs(m["spearman_after_1800"]) < 0.3 < m["spearman"]
    assert m["spearman_after_1500"] == m["spearman_after_1800"]


def test_baseline_predictions_reproduce_the_table() -> None:
    """The predictions a build stores are the ones its baseline metrics are computed from."""
    rng = np.random.default_rng(2)
    n = 240
    entities = pd.DataFrame(
        {
            "name": [f"p{i}" for i in range(n)],
            "text": [f"place {i % 7} {i}" for i in range(n)],
            "lat": rng.uniform(-50, 50, n),
            "lon": rng.uniform(-100, 100, n),
            "country": rng.choice(["A", "B", "C"], n),
            "is_test": np.arange(n) % 5 == 0,
        }
    )
    preds = baseline_predictions(entities, ("lat", "lon"))
    assert list(preds) == ["name_only", "group_mean", "train_mean"]
    assert all(p.shape == (n, 2) for p in preds.values())
    table = baseline_table(entities, ("lat", "lon"), "space", predictions=preds)
    y = entities[["lat", "lon"]].to_numpy()
    test = entities["is_test"].to_numpy()
    for name, pred in preds.items():
        row = table[(table["baseline"] == name) & (table["split"] == "test")].iloc[0]
        m = regression_metrics(y[test], pred[test], ("lat", "lon"), "space")
        assert row["r2"] == pytest.approx(m["r2"])
    assert np.allclose(preds["train_mean"], y[~test].mean(axis=0))
    assert table.equals(baseline_table(entities, ("lat", "lon"), "space"))  # same when refitted
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_predictions(entities, ("lat", "lon"), names=("random",))


def test_occupation_is_the_group_of_people_before_their_source() -> None:
    people = pd.DataFrame(
        {"source": ["wordnet"] * 9 + ["extra"], "occupation": ["poet", "general"] * 5}
    )
    assert reference_column(people) == "occupation"
    assert reference_column(people.drop(columns="occupation")) == "source"
