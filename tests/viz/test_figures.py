"""Figures: content, escaping, local outlines, offline export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.probe.metrics import haversine_km
from core.viz import figures as figs
from core.viz import outlines as geo
from tests.support.synthetic import space_entities, synthetic_results, time_entities


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    res = synthetic_results(space_entities(200, "world", seed=3), "space", n_layers=4, d_model=8)
    return res.predictions_at(3)


@pytest.fixture(scope="module")
def people():  # type: ignore[no-untyped-def]
    return synthetic_results(time_entities(300, seed=2), "time", n_layers=4, d_model=8)


def test_great_circle_is_lat_lon_ordered() -> None:
    # Paris -> London is about 344 km; swapping lat/lon gives something else entirely
    km = haversine_km(
        np.array([48.8566]), np.array([2.3522]), np.array([51.5074]), np.array([-0.1278])
    )
    assert 330 < km[0] < 360
    assert haversine_km(np.array([0.0]), np.array([0.0]), np.array([0.0]), np.array([180.0]))[
        0
    ] == pytest.approx(20015, rel=1e-3)


def test_map_colours_by_group_with_hover(world: pd.DataFrame) -> None:
    fig = figs.map_figure(world, scope="world", color="continent")
    groups = {t.name for t in fig.data if t.type == "scattergeo" and t.mode == "markers"}
    assert groups == set(world["continent"].unique())
    trace = next(t for t in fig.data if t.mode == "markers")
    assert "error %{customdata[2]" in trace.hovertemplate and "true" in trace.hovertemplate
    assert sum(len(t.lat) for t in fig.data if t.mode == "markers") == len(world)
    assert fig.layout.geo.projection.type == "natural earth"


def test_map_segments_add_lines_and_true_points(world: pd.DataFrame) -> None:
    fig = figs.map_figure(world, scope="world", color="continent", segments=True)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 1 and len(lines[0].lat) == 3 * len(world)
    assert any(t.name == "true position" for t in fig.data)


def test_map_error_km_matches_haversine(world: pd.DataFrame) -> None:
    fig = figs.map_figure(world, scope="world")
    trace = next(t for t in fig.data if t.mode == "markers")
    custom = np.asarray(trace.customdata)
    expected = haversine_km(
        custom[:, 0], custom[:, 1], np.asarray(trace.lat), np.asarray(trace.lon)
    )
    np.testing.assert_allclose(custom[:, 2], expected, rtol=1e-9)


def test_names_are_escaped(world: pd.DataFrame) -> None:
    frame = world.copy()
    frame.loc[frame.index[0], "name"] = '<a href="javascript:alert(1)">x</a>'
    fig = figs.map_figure(frame, scope="world", color="continent")
    texts = [str(v) for t in fig.data if t.text is not None for v in np.atleast_1d(t.text)]
    assert any("&lt;a href=" in v for v in texts)
    assert not any("<a" in v for v in texts)


def test_many_groups_are_merged_into_other(world: pd.DataFrame) -> None:
    frame = world.assign(country=[f"c{i}" for i in range(len(world))])
    fig = figs.map_figure(frame, scope="world", color="country")
    names = [t.name for t in fig.data if t.mode == "markers"]
    assert len(names) == figs.MAX_GROUPS + 1 and names[-1] == figs.OTHER


def test_nyc_map_draws_local_borough_outlines_and_no_base_map() -> None:
    frame = synthetic_results(space_entities(50, "nyc", seed=1), "space", 2, 8).predictions_at(1)
    fig = figs.map_figure(frame, scope="nyc", color="borough")
    outline = fig.data[0]
    assert outline.mode == "lines" and len(outline.lon) > 100
    assert fig.layout.geo.visible is False  # no topojson is ever requested for NYC


def test_us_map_uses_albers_usa() -> None:
    frame = synthetic_results(space_entities(50, "usa", seed=1), "space", 2, 8).predictions_at(1)
    fig = figs.map_figure(frame, scope="usa", color="state")
    assert fig.layout.geo.projection.type == "albers usa" and fig.layout.geo.scope == "usa"


@pytest.mark.parametrize("name", ["world", "usa"])
def test_local_topojson_files_exist(name: str) -> None:
    path = geo.TOPOJSON_DIR / f"{name}_110m.json"
    data = json.loads(path.read_text())
    assert {"countries", "land", "coastlines"} <= set(data["objects"])


def test_scope_inference() -> None:
    assert geo.scope_for("nyc_places") == "nyc"
    assert geo.scope_for("us_places") == "usa"
    assert geo.scope_for("world_capitals") == "world"
    assert geo.scope_for("my.csv", np.array([40.7, 40.8]), np.array([-74.0, -73.9])) == "nyc"
    assert geo.scope_for("my.csv", np.array([30.0, 45.0]), np.array([-120.0, -80.0])) == "usa"
    assert geo.scope_for("my.csv", np.array([-30.0, 60.0]), np.array([-120.0, 100.0])) == "world"
    assert geo.topojson_url("") == "/app/static/topojson/"
    assert geo.topojson_url("/lens/") == "/lens/app/static/topojson/"


def test_timeline_has_identity_line_and_names(people) -> None:  # type: ignore[no-untyped-def]
    frame = figs.prediction_frame(people.entities, people.predictions[3], people.target_names)
    fig = figs.timeline_figure(frame, color="entity_type")
    identity = [t for t in fig.data if t.name == "y = x"]
    assert len(identity) == 1 and identity[0].x[0] == identity[0].y[0]
    assert all("%{text}" in t.hovertemplate for t in fig.data if t.name != "y = x")


@pytest.mark.parametrize(("by", "width"), [("decade", 10), ("century", 100)])
def test_residuals_by_period(people, by: str, width: int) -> None:  # type: ignore[no-untyped-def]
    frame = figs.prediction_frame(people.entities, people.predictions[3], people.target_names)
    fig = figs.residual_figure(frame, by=by)
    box = fig.data[0]
    n_bins = len(np.unique(np.floor(frame["year"] / width)))
    assert len(box.x) == n_bins
    expected = np.median(
        frame["residual"][np.floor(frame["year"] / width) == np.floor(frame["year"].min() / width)]
    )
    assert box.median[0] == pytest.approx(expected)


def test_layer_curves_and_selected_layer(people) -> None:  # type: ignore[no-untyped-def]
    fig = figs.layer_curves_figure(people.metrics, "time", selected_layer=2)
    names = {(t.name, t.yaxis) for t in fig.data}
    assert ("test", "y") in names and ("train", "y2") in names
    assert any(shape.x0 == 2 for shape in fig.layout.shapes)


def test_layer_curves_show_baselines_and_the_chosen_layer(people) -> None:  # type: ignore[no-untyped-def]
    baselines = {"names only": 0.31, "source mean": 0.2, "random init": float("nan")}
    fig = figs.layer_curves_figure(people.metrics, "time", baselines=baselines, chosen_layer=1)
    lines = {t.name: t for t in fig.data if t.name and "(" in t.name}
    assert set(lines) == {"names only (0.31)", "source mean (0.20)"}  # nan: not built, not drawn
    assert list(lines["names only (0.31)"].y) == [0.31, 0.31]
    assert all(t.yaxis == "y" for t in lines.values())  # on the R² panel
    star = next(t for t in fig.data if t.name == "layer chosen on training rows")
    test = people.metrics.query("split == 'test' and layer == 1")
    assert list(star.x) == [1] and star.y[0] == pytest.approx(float(test["r2"].iloc[0]))


def test_model_comparison_uses_normalised_depth(people) -> None:  # type: ignore[no-untyped-def]
    other = people.metrics.copy()
    fig = figs.model_comparison_figure([("a", people.metrics, 4), ("b (random init)", other, 8)])
    a, b = fig.data
    assert list(a.x) == [0.25, 0.5, 0.75, 1.0]
    assert list(b.x) == [0.125, 0.25, 0.375, 0.5]
    assert b.line.dash == "dash"


def test_alpha_figure_flags_grid_edge(people) -> None:  # type: ignore[no-untyped-def]
    fig = figs.alpha_figure(people.metrics, people.alphas, people.layers)
    assert fig.layout.yaxis.type == "log"
    flagged = [t for t in fig.data if "edge" in (t.name or "")]
    assert len(flagged) == 1 and list(flagged[0].x) == [0]


def test_live_figures() -> None:
    paths = {
        "Kyoto": np.array([[0.0, 0.0], [20.0, 100.0], [35.0, 135.7]]),
        "<b>x</b>": np.zeros((3, 2)),
    }
    fig = figs.live_map_figure(paths, [0, 1, 2], 1, "world")
    big = [t for t in fig.data if t.mode == "markers+text"]
    assert [t.lat[0] for t in big] == [20.0, 0.0]
    assert big[1].text[0] == "&lt;b&gt;x&lt;/b&gt;"
    years = figs.live_time_figure(
        {"Napoleon": np.array([[1700.0], [1790.0], [1810.0]])}, [0, 1, 2], 2
    )
    assert list(years.data[0].y) == [1700.0, 1790.0, 1810.0]


def test_presentation_style_is_larger(world: pd.DataFrame) -> None:
    small = figs.map_figure(world, "world", style=figs.Style(False))
    large = figs.map_figure(world, "world", style=figs.Style(True))
    assert large.layout.font.size > small.layout.font.size
    assert large.layout.height > small.layout.height


def test_headline_and_helpers(people) -> None:  # type: ignore[no-untyped-def]
    h = figs.headline(people.metrics, 3, "time")
    r2, mae = h["test_r2"], h["test_mae_year"]
    assert r2 is not None and 0 < r2 <= 1 and mae is not None and mae > 0
    assert h["test_proximity_error"] is not None
    assert figs.headline(people.metrics, 99, "time")["test_r2"] is None
    idx = figs.sample_rows(1000, 100)
    assert len(idx) == 100 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, figs.sample_rows(1000, 100))
    assert figs.group_columns(people.entities)[:1] == ["group"]


def test_plotly_config_points_at_local_topojson() -> None:
    cfg = figs.plotly_config("/app/static/topojson/", filename="map")
    assert cfg["topojsonURL"] == "/app/static/topojson/"
    assert cfg["toImageButtonOptions"]["filename"] == "map"


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="kaleido needs Debian chromium (apt-get install -y chromium)",
)
def test_export_png_and_svg_offline(world: pd.DataFrame) -> None:
    fig = figs.map_figure(world.head(30), "world", color="continent")
    png = figs.figure_image(fig, "png", width=500, height=300, scale=1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = figs.figure_image(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])), "svg", width=300, height=200)
    assert svg.lstrip().startswith(b"<svg")


def test_layer_curves_shade_the_test_interval(people) -> None:  # type: ignore[no-untyped-def]
    from core.probe.bootstrap import Interval

    test = people.metrics[people.metrics["split"] == "test"].sort_values("layer")
    band = pd.DataFrame({"layer": test["layer"], "lo": test["r2"] - 0.05, "hi": test["r2"] + 0.05})
    fig = figs.layer_curves_figure(
        people.metrics, "time", test_band=band, baselines={"names only": Interval(0.3, 0.25, 0.37)}
    )
    upper, lower = (t for t in fig.data if t.legendgroup == "test 95% interval")
    assert lower.fill == "tonexty" and lower.yaxis == "y"  # on the R² panel
    curve = next(t for t in fig.data if t.name == "test" and t.yaxis == "y")
    assert (np.asarray(lower.y) <= np.asarray(curve.y)).all()
    assert (np.asarray(curve.y) <= np.asarray(upper.y)).all()
    assert any(t.name == "names only (0.30 ± 0.06)" for t in fig.data)


def test_model_comparison_draws_bands_around_test_r2(people) -> None:  # type: ignore[no-untyped-def]
    test = people.metrics[people.metrics["split"] == "test"]
    band = pd.DataFrame({"layer": test["layer"], "lo": test["r2"] - 0.1, "hi": test["r2"] + 0.1})
    fig = figs.model_comparison_figure([("a", people.metrics, 4)], bands={"a": band})
    assert [t.fill for t in fig.data].count("tonexty") == 1
    line = fig.data[-1]
    assert line.name == "a" and all(t.legendgroup == "a" for t in fig.data)


def test_published_figures_are_drawn_as_reference_marks() -> None:
    from core.results.anchors import PUBLISHED_ANCHORS
    from core.viz.figures import model_comparison_figure

    metrics = pd.DataFrame({"layer": [0, 1], "split": ["test", "test"], "r2": [0.1, 0.3]})
    marks = {a.model: a.world_r2 for a in PUBLISHED_ANCHORS}
    fig = model_comparison_figure([("m", metrics, 2)], references=marks)
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert sorted(s.y0 for s in lines) == sorted(marks.values())
    texts = {a.text for a in fig.layout.annotations}
    assert "Llama-2-7b 0.88" in texts and "Pythia-14M 0.34" in texts
