"""The within-group figures and captions (core.viz.within_figures) and the offsets they
draw (core.results.within.group_offsets)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.probe.bootstrap import Interval
from core.probe.within import centred_by_group
from core.results.within import group_offsets
from core.viz import figures as figs
from core.viz import within_figures as wfigs
from tests.support.synthetic import space_entities, synthetic_results


def _metrics(n_layers: int = 4) -> pd.DataFrame:
    rows = []
    for layer in range(n_layers):
        for split in ("train", "test"):
            rows.append({"layer": layer, "split": split, "r2": 0.1 * layer, "proximity_error": 0.3})
    return pd.DataFrame(rows)


def _curve() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": [2, 0, 1, 3],
            "r2": [0.2, -0.1, 0.05, 0.15],
            "lo": [0.1, -0.2, -0.05, 0.05],
            "hi": [0.3, 0.0, 0.15, 0.25],
        }
    )


def test_within_curve_and_band_join_the_r2_panel() -> None:
    base = figs.layer_curves_figure(_metrics(), "space", chosen_layer=3)
    n_before = len(base.data)
    fig = wfigs.with_within_curve(
        base, _curve(), "country", chosen_layer=2, name_only=Interval(0.02, -0.01, 0.05)
    )
    by_name = {t.name: t for t in fig.data[n_before:]}
    line = by_name["within country (test)"]
    assert list(line.x) == [0, 1, 2, 3] and list(line.y) == [-0.1, 0.05, 0.2, 0.15]
    assert line.yaxis == "y" and line.line.color == wfigs.WITHIN_COLOUR
    band = [t for t in fig.data[n_before:] if t.name == "within country 95% interval"]
    assert [list(t.y) for t in band] == [[0.0, 0.15, 0.3, 0.25], [-0.2, -0.05, 0.1, 0.05]]
    assert band[1].fill == "tonexty" and band[1].fillcolor.startswith("rgba(")
    star = by_name["within country: layer chosen on training rows"]
    assert list(star.x) == [2] and list(star.y) == [0.2] and star.marker.symbol == "star"
    names = by_name["within country: names only (0.02 ± 0.03)"]
    assert list(names.x) == [0.0, 3.0] and list(names.y) == [0.02, 0.02]
    assert names.line.dash == "dot"
    # the overall curve is still there, untouched
    assert {"train", "test", "layer chosen on training rows"} <= {t.name for t in fig.data}


def test_within_curve_without_intervals_or_control_draws_the_line_only() -> None:
    curve = _curve().assign(lo=np.nan, hi=np.nan)
    fig = wfigs.with_within_curve(figs.layer_curves_figure(_metrics(), "space"), curve, "era")
    names = [t.name for t in fig.data]
    assert "within era (test)" in names
    assert not any("interval" in n or "names only" in n or "chosen" in n for n in names)
    empty = figs.layer_curves_figure(_metrics(), "space")
    n = len(empty.data)
    assert len(wfigs.with_within_curve(empty, curve.iloc[:0], "era").data) == n


def _offsets() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["A<b>", "B", "C", "D"],
            "group": ["France", "France", "Peru", "Peru"],
            "true_lat": [1.0, -1.0, 2.0, -2.0],
            "pred_lat": [0.5, -0.5, -3.0, 3.0],
            "true_lon": [0.0, 0.0, 1.0, -1.0],
            "pred_lon": [0.2, -0.2, 0.0, 0.0],
        }
    )


def test_offsets_figure_plots_true_against_predicted_offsets() -> None:
    fig = wfigs.within_offsets_figure(_offsets(), ("lat", "lon"), "country", title="t")
    points = [t for t in fig.data if t.mode == "markers"]
    assert {t.name for t in points} == {"France", "Peru"}
    lat = {t.name: (list(t.x), list(t.y)) for t in points if t.xaxis == "x"}
    assert lat["France"] == ([1.0, -1.0], [0.5, -0.5])
    assert lat["Peru"] == ([2.0, -2.0], [-3.0, 3.0])
    lon = {t.name: list(t.y) for t in points if t.xaxis == "x2"}
    assert lon == {"France": [0.2, -0.2], "Peru": [0.0, 0.0]}
    # one legend entry per group; names are shown as text
    assert sum(bool(t.showlegend) for t in points) == 2
    assert "A&lt;b&gt;" in list(points[0].text) + list(points[1].text)
    # y = x over one shared range per panel, so a flat cloud looks flat
    diagonal = [t for t in fig.data if t.name == "y = x (placed exactly)"]
    assert len(diagonal) == 2 and list(diagonal[0].x) == list(diagonal[0].y)
    layout = fig.layout
    assert tuple(layout.xaxis.range) == tuple(layout.yaxis.range)
    assert np.allclose(layout.xaxis.range, (-3.15, 3.15))
    assert tuple(layout.xaxis2.range) == tuple(layout.yaxis2.range)
    assert np.allclose(layout.xaxis2.range, (-1.05, 1.05))
    assert "country's centre" in layout.xaxis.title.text
    assert [a.text for a in layout.annotations] == ["latitude (°)", "longitude (°)"]


def test_offsets_figure_merges_rare_groups_into_other() -> None:
    n = figs.MAX_GROUPS + 5
    frame = pd.DataFrame(
        {
            "name": [f"e{i}" for i in range(2 * n)],
            "group": [f"g{i % n}" for i in range(2 * n)],
            "true_year": np.arange(2 * n, dtype=float),
            "pred_year": np.zeros(2 * n),
        }
    )
    fig = wfigs.within_offsets_figure(frame, ("year",), "decade")
    points = [t for t in fig.data if t.mode == "markers"]
    assert len(points) == figs.MAX_GROUPS + 1
    other = [t for t in points if t.name == figs.OTHER]
    assert len(other) == 1 and len(other[0].x) == 2 * 5
    assert other[0].marker.color == figs.OTHER_COLOUR
    assert sum(len(t.x) for t in points) == 2 * n


def _split(share: float, within: tuple[float, float, float]) -> dict[str, Interval]:
    return {
        "r2": Interval(0.5, 0.47, 0.53),
        "r2_between": Interval(0.69, 0.65, 0.71),
        "r2_within": Interval(*within),
        "within_corr": Interval(-0.05, -0.1, 0.0),
        "group_share": Interval(share, share - 0.06, share + 0.02),
    }


def test_between_caption_states_the_share_and_r2_within() -> None:
    text = wfigs.between_caption(_split(1.34, (-5.42, -5.99, -4.63)), "country", 17)
    assert text.startswith(
        "Between countries: putting every test entity at its country's predicted centre "
        "gives 134% [128%, 136%] of layer 17's test R² (0.50 ± 0.03)"
    )
    assert "R²_between 0.69 [0.65, 0.71]" in text
    assert "Within a country, R²_within is -5.42 [-5.99, -4.63]" in text
    assert "correlation of predicted with true offsets -0.05 ± 0.05" in text
    assert "worse than the country's own centre" in text


@pytest.mark.parametrize(
    ("within", "phrase"),
    [((0.3, 0.2, 0.4), "better than the borough's centre"), ((0.0, -0.1, 0.1), "cannot be told")],
)
def test_between_caption_reads_the_within_interval(
    within: tuple[float, float, float], phrase: str
) -> None:
    assert phrase in wfigs.between_caption(_split(0.9, within), "borough", 3)


def test_between_caption_without_a_positive_r2_has_no_share() -> None:
    split = _split(float("nan"), (-0.89, -1.3, -0.45))
    split["r2"] = Interval(-0.06, -0.23, 0.11)
    text = wfigs.between_caption(split, "borough", 5)
    assert "layer 5's test R² is -0.06 ± 0.17, so the share of it that boroughs explain is " in text
    assert "nan" not in text


def test_within_curve_caption_names_target_grouping_and_numbers() -> None:
    text = wfigs.within_curve_caption(
        "state", "space", 31, 250, 5, 12, Interval(0.12, 0.05, 0.19), Interval(0.01, -0.02, 0.04)
    )
    assert "each entity's position (lat, lon) minus its state's training mean" in text
    assert "the 31 states with at least 5 training rows (250 test rows" in text
    assert (
        "At layer 12, chosen on training rows: test R² 0.12 ± 0.07, names only 0.01 ± 0.03." in text
    )
    year = wfigs.within_curve_caption("era", "time", 3, 40, 5, 2, Interval(0.4, 0.3, 0.5), None)
    assert "each entity's year minus its era's training mean" in year and "names only" not in year
    note = wfigs.within_missing_note("borough", "/cache/results/x")
    assert "not built yet" in note and "python -m core.results.within /cache/results/x" in note


# ------------------------------------------------------------------ offsets
def test_centred_by_group_subtracts_each_groups_mean() -> None:
    values = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 0.0], [7.0, 7.0]])
    codes = np.array([0, 0, 1, -1])
    out = centred_by_group(values, codes)
    assert np.allclose(out[:3], [[-1.0, -5.0], [1.0, 5.0], [0.0, 0.0]])
    assert np.isnan(out[3]).all()


def test_group_offsets_are_test_rows_around_their_groups_centres() -> None:
    ent = space_entities(300, "usa", seed=3)
    res = synthetic_results(ent, "space", 3, 8, dataset="us_places", seed=3)
    frame = group_offsets(res, 2)
    assert frame is not None and frame.attrs["grouping"] == "state"
    test = ent[ent["is_test"]].reset_index(drop=True)
    sizes = test["state"].value_counts()
    assert len(frame) == int(sizes[sizes >= 2].sum())  # groups of one test row are left out
    assert set(frame["name"]) <= set(test["name"])
    for _, rows in frame.groupby("group"):
        for col in ("true_lat", "true_lon", "pred_lat", "pred_lon"):
            assert abs(rows[col].mean()) < 1e-9  # offsets from the group's own centre
    # a predictor at its group's true centre has no predicted offset at all
    at_centre = res.predictions.copy()
    y = ent[["lat", "lon"]].to_numpy(float)
    for state in ent["state"].unique():
        rows = (ent["state"] == state).to_numpy() & ent["is_test"].to_numpy()
        at_centre[2, rows] = y[rows].mean(0)
    res.predictions = at_centre
    centred = group_offsets(res, 2)
    assert centred is not None
    assert np.allclose(centred[["pred_lat", "pred_lon"]], 0.0)
    assert not np.allclose(centred[["true_lat", "true_lon"]], 0.0)
    # one true offset by hand
    name = frame["name"].iloc[0]
    row = test[test["name"] == name].iloc[0]
    mates = test[test["state"] == row["state"]]
    assert frame["true_lat"].iloc[0] == pytest.approx(row["lat"] - mates["lat"].mean())
    assert group_offsets(res, 2, "borough") is None
