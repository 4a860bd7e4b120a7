"""95% intervals from stored predictions: layer bands, baselines, eras."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from core.probe.bootstrap import resample_counts
from core.results import intervals
from tests.support.synthetic import space_entities, synthetic_results, time_entities


def _people(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """People across all three eras (the synthetic helper's are all after 1500)."""
    frame = time_entities(n, seed=seed)
    rng = np.random.default_rng(seed)
    frame["year"] = np.round(rng.uniform(-500, 2000, n))
    return frame


def test_band_encloses_the_test_curve() -> None:
    res = synthetic_results(space_entities(400, "world", seed=2), "space", 6, 8)
    band = intervals.layer_band(res)
    test = res.metrics[res.metrics["split"] == "test"].set_index("layer")["r2"]
    assert band["layer"].tolist() == res.layers.tolist()
    for _, row in band.iterrows():
        assert row["lo"] < test[int(row["layer"])] < row["hi"]
    # the chosen layer's interval is the same one the tables print
    layer = res.best_layer()
    one = intervals.probe_r2(res, layer)
    row = band[band["layer"] == layer].iloc[0]
    assert (one.lo, one.hi) == pytest.approx((row["lo"], row["hi"]))
    assert one.point == res.metric_at(layer)


def test_spearman_samples_match_scipy_on_each_resample() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    p = y + rng.normal(size=50)
    p[:5] = p[5]  # ties
    counts = resample_counts(50, n_boot=5, seed=1)
    got = intervals.spearman_samples(y, p, counts)
    for b in range(5):
        rows = np.repeat(np.arange(50), counts[b].astype(int))
        assert got[b] == pytest.approx(spearmanr(y[rows], p[rows]).statistic)
    assert intervals.spearman(y, p) == pytest.approx(spearmanr(y, p).statistic)
    assert np.isnan(intervals.spearman(y, np.ones(50)))


def test_eras_are_scored_on_their_own_test_rows() -> None:
    res = synthetic_results(_people(), "time", 4, 8, dataset="historical_figures")
    layer = res.best_layer()
    scores = intervals.era_scores(res, layer)
    assert [s.era for s in scores] == ["all", "before 1500", "1500–1800", "after 1800"]
    year = res.entities["year"].to_numpy()
    test = res.entities["is_test"].to_numpy(dtype=bool)
    pred = np.asarray(res.predictions[res.layer_position(layer)])[:, 0]
    eras = [year < 1500, (year >= 1500) & (year < 1800), year >= 1800]
    masks = [test] + [test & era for era in eras]
    assert [s.n for s in scores] == [int(m.sum()) for m in masks]
    assert scores[0].r2 is not None and scores[0].r2.point == res.metric_at(layer)
    for score, rows in zip(scores[1:], masks[1:], strict=True):
        assert score.r2 is not None and score.spearman is not None
        yr, pr = year[rows], pred[rows]
        r2 = 1 - ((yr - pr) ** 2).sum() / ((yr - yr.mean()) ** 2).sum()  # the era's own mean
        assert score.r2.point == pytest.approx(r2)
        assert score.spearman.point == pytest.approx(spearmanr(yr, pr).statistic)
        assert score.r2.lo <= score.r2.point <= score.r2.hi
    # a dataset's own era column is used when it has one
    labelled = res.entities.assign(era=np.where(year < 1000, "ancient", "later"))
    res.entities = labelled
    assert [s.era for s in intervals.era_scores(res, layer)] == ["all", "ancient", "later"]


def test_small_eras_get_no_numbers() -> None:
    people = _people(200)
    people.loc[people["year"] < 1500, "is_test"] = False
    people.loc[people.index[:3], ["year", "is_test"]] = [100.0, True]
    res = synthetic_results(people, "time", 3, 8)
    early = intervals.era_scores(res, res.best_layer())[1]
    assert early.era == "before 1500" and early.n == 3 and early.r2 is None


def test_baseline_intervals_need_stored_predictions() -> None:
    res = synthetic_results(space_entities(300, "world", seed=1), "space", 4, 8)
    values = intervals.baseline_intervals(res)
    assert values["names only"] == 0.1  # no stored predictions: the bare figure
    assert intervals.baseline_r2(res, "name_only") is None
    n = len(res.entities)
    y = res.entities[["lat", "lon"]].to_numpy()
    res.baseline_preds = {"name_only": y + np.random.default_rng(0).normal(0, 5, (n, 2))}
    got = intervals.baseline_intervals(res, control=res)
    name_only = got["names only"]
    assert isinstance(name_only, intervals.Interval) and name_only.point == 0.1  # the table's
    assert name_only.lo < name_only.hi
    assert isinstance(got["random init"], intervals.Interval)
    table = intervals.summary_table(res, got, control=res)
    assert table[""].tolist()[0] == f"probe, layer {res.best_layer()}"
    cells = dict(zip(table[""], table["test R²"], strict=True))
    assert "±" in cells["names only"] and "±" in cells["random init"]
    assert cells["group mean"] == "0.05"  # not stored: no interval to show
