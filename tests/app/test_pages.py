"""AppTest of every page: widgets drive the content, the URL round-trips, empty states."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from core.ui import view_state as vs
from pages._state import WIDGETS, widget_key
from tests.app.conftest import make_app

ORIGINAL_PAGES_MANAGER_INIT = PagesManager.__init__


def charts(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def chart_configs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(c.proto.config) for c in at.get("plotly_chart")]


def arr(value: Any) -> np.ndarray:
    """A trace array from chart JSON (plotly packs numpy arrays as base64 'bdata')."""
    if isinstance(value, dict) and "bdata" in value:
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return (
            data.reshape(value["shape"])
            if "shape" in value and isinstance(value["shape"], list)
            else data
        )
    return np.asarray(value)


def marker_traces(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        t for t in spec["data"] if t.get("mode") == "markers" and t.get("name") != "true position"
    ]


def n_points(spec: dict[str, Any]) -> int:
    return sum(len(arr(t.get("lat", t.get("y")))) for t in marker_traces(spec))


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_widget_keys_follow_their_url_parameters() -> None:
    """Every synced widget's key is its URL parameter's, prefixed (bench/ and
    tests/reliability drive widgets by these keys)."""
    assert {fld: f"w_{key}" for fld, key in vs.QUERY_KEYS.items()} == WIDGETS
    assert widget_key("layer") == "w_layer" and widget_key("seg") == "w_seg"
    with pytest.raises(KeyError):
        widget_key("segments")  # a view-state field, not a URL parameter


# -------------------------------------------------------------------- maps
def test_maps_default_view(demo_env: Path) -> None:
    at = make_app().run()
    no_exceptions(at)
    assert texts(at, "title") == ["Maps"]
    assert at.query_params["model"] == "smollm2-135m"
    assert at.query_params["dataset"] == "world_places"
    assert at.query_params["layer"] == "5"  # the layer the synthetic results choose on train
    labels = [m.label for m in at.metric]
    # the synthetic world places have continents but no country column: no
    # "In the right country" metric, and no "lands in" on the hover
    assert labels == ["Layer", "Test R²", "Median error (test)", "Proximity error (test)"]
    (spec,) = charts(at)
    assert {t["type"] for t in spec["data"]} == {"scattergeo"}
    (config,) = chart_configs(at)
    assert config["topojsonURL"] == "/app/static/topojson/"
    assert [b.proto.label for b in at.get("download_button")] == [
        "PNG",
        "SVG",
        "Probes (safetensors)",
        "Predictions, all layers (parquet)",
        "Predictions, layer 5 (CSV)",
    ]
    commands = [c.value for c in at.code]
    assert any(c.startswith("synthetic results") for c in commands)  # the recorded command


def test_layer_slider_changes_map_metrics_and_url(demo_env: Path) -> None:
    at = make_app().run()
    before = charts(at)[0]
    r2_before = at.metric[1].value
    at.select_slider(key=widget_key("layer")).set_value(1).run()
    no_exceptions(at)
    assert at.query_params["layer"] == "1"
    assert at.metric[0].value == "1 / 5"
    assert at.metric[1].value != r2_before
    assert charts(at)[0]["data"] != before["data"]


def test_query_params_round_trip(demo_env: Path) -> None:
    query = {
        "model": "gemma3-270m",
        "dataset": "world_places",
        "prompt": "empty",
        "layer": "2",
        "split": "all",
        "color": "continent",
        "seg": "1",
        "pts": "all",
    }
    at = make_app(query).run()
    no_exceptions(at)
    assert not at.info, texts(at, "info")
    assert at.query_params == query
    assert at.selectbox(key=widget_key("model")).value == "gemma3-270m"
    assert at.select_slider(key=widget_key("layer")).value == 2
    assert at.selectbox(key=widget_key("color")).value == "continent"
    assert at.toggle(key=widget_key("seg")).value is True
    spec = charts(at)[0]
    assert any(t.get("name") == "true → predicted" for t in spec["data"])
    assert n_points(spec) == 300  # split=all, no point cap


def test_bad_query_values_fall_back_with_visible_notes(demo_env: Path, tmp_path: Path) -> None:
    query = {
        "model": "no-such-model",
        "dataset": "../../etc/passwd",
        "layer": "99",
        "split": "sideways",
    }
    at = make_app(query).run()
    no_exceptions(at)
    notes = texts(at, "info")
    assert len(notes) == 4
    assert any("Model" in n for n in notes) and any("Layer" in n for n in notes)
    assert (
        at.query_params["model"] == "smollm2-135m" and at.query_params["dataset"] == "world_places"
    )
    assert at.query_params["split"] == "test" and at.query_params["layer"] == "5"
    # the notes go away once the state is valid
    at.run()
    assert not at.info


def test_split_colour_and_segments_drive_the_map(demo_env: Path) -> None:
    at = make_app().run()
    n_test = n_points(charts(at)[0])
    at.button_group(key=widget_key("split")).set_value("train").run()
    n_train = n_points(charts(at)[0])
    at.button_group(key=widget_key("split")).set_value("all").run()
    assert n_points(charts(at)[0]) == n_test + n_train == 300
    at.selectbox(key=widget_key("color")).set_value("continent").run()
    assert at.query_params["color"] == "continent"
    at.toggle(key=widget_key("seg")).set_value(True).run()
    assert at.query_params["seg"] == "1"
    assert any(t.get("mode") == "lines" for t in charts(at)[0]["data"])


def test_model_without_results_for_the_dataset_shows_its_build_command(demo_env: Path) -> None:
    at = make_app({"dataset": "historical_figures"}).run()
    at.selectbox(key=widget_key("model")).set_value("gemma3-270m").run()
    no_exceptions(at)
    assert at.query_params["dataset"] == "historical_figures" and "layer" not in at.query_params
    assert [c.value for c in at.code] == [
        "python -m core build --model gemma3-270m --dataset historical_figures --prompt empty"
    ]
    at.selectbox(key=widget_key("dataset")).set_value("world_places").run()
    assert at.query_params["layer"] == "5" and charts(at)


def test_layer_is_kept_across_datasets_with_the_same_layers(demo_env: Path) -> None:
    at = make_app({"layer": "3"}).run()
    assert at.query_params["layer"] == "3"
    at.selectbox(key=widget_key("dataset")).set_value("us_places").run()
    assert at.query_params["layer"] == "3"  # same layers: kept
    assert not at.info


@pytest.mark.parametrize(
    ("dataset", "scope_key"), [("us_places", "albers usa"), ("nyc_places", "mercator")]
)
def test_us_and_nyc_maps(demo_env: Path, dataset: str, scope_key: str) -> None:
    at = make_app({"dataset": dataset}).run()
    no_exceptions(at)
    spec = charts(at)[0]
    assert spec["layout"]["geo"]["projection"]["type"] == scope_key


@pytest.mark.parametrize(("dataset", "noun"), [("us_places", "state"), ("nyc_places", "borough")])
def test_right_container_metric_and_hover(demo_env: Path, dataset: str, noun: str) -> None:
    at = make_app({"dataset": dataset}).run()
    no_exceptions(at)
    labels = [m.label for m in at.metric]
    assert labels[-1] == f"In the right {noun} (test)" and len(labels) == 5
    metric = at.metric[-1]
    share = float(metric.value.rstrip("%"))
    assert 0 <= share <= 100
    assert "name-only baseline" in metric.help and f"the {noun} mean: " in metric.help
    assert f"of their own {noun}" in metric.help
    for trace in marker_traces(charts(at)[0]):
        assert "lands in: %{hovertext}" in trace["hovertemplate"]
        assert len(trace["hovertext"]) == len(arr(trace["lat"]))
    landed = {h for t in marker_traces(charts(at)[0]) for h in t["hovertext"]}
    assert f"no {noun} (sea or beyond the outlines)" in landed or len(landed) > 1
    # a layer change moves the predictions and with them the share
    at.select_slider(key=widget_key("layer")).set_value(0).run()
    no_exceptions(at)
    assert at.metric[-1].label == f"In the right {noun} (test)"


def test_name_only_share_fills_in_when_its_background_fit_ends(
    demo_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name-only refit (30-60 s on 8,000 places) never holds the page: the metric
    shows at once and its help gains the baseline's share when the fit is done."""
    from core.viz import containers as cont
    from pages import _widgets

    gate = threading.Event()
    real = cont.baseline_scores

    def slow(*args: Any, **kwargs: Any) -> Any:
        which = args[5] if len(args) > 5 else kwargs.get("baselines", cont.BASELINES)
        if "name_only" in which:
            gate.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(cont, "baseline_scores", slow)
    _widgets._name_only_job.clear()
    try:
        at = make_app({"dataset": "nyc_places"}).run()
        no_exceptions(at)
        assert "name-only baseline: being computed" in at.metric[-1].help
        assert "the borough mean: " in at.metric[-1].help
    finally:
        gate.set()
    deadline = time.monotonic() + 30
    while "being computed" in at.metric[-1].help and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    no_exceptions(at)
    assert re.search(r"name-only baseline: \d+\.\d%", at.metric[-1].help)
    _widgets._name_only_job.clear()


def test_time_dataset_on_maps_points_to_timelines(demo_env: Path) -> None:
    at = make_app({"dataset": "historical_figures"}).run()
    assert any("Timelines" in n for n in texts(at, "info"))
    assert not charts(at)


# --------------------------------------------------------------- timelines
def test_timelines_page(demo_env: Path) -> None:
    at = make_app({"dataset": "historical_figures"}).run()
    at.switch_page("pages/timelines.py").run()
    no_exceptions(at)
    assert texts(at, "title") == ["Timelines"]
    scatter, resid = charts(at)
    assert any(t.get("name") == "y = x" for t in scatter["data"])
    assert resid["data"][0]["type"] == "box"
    decade_bins = len(arr(resid["data"][0]["x"]))
    at.button_group(key=widget_key("by")).set_value("century").run()
    assert at.query_params["by"] == "century"
    assert len(arr(charts(at)[1]["data"][0]["x"])) < decade_bins
    before = charts(at)[0]["data"]
    at.select_slider(key=widget_key("layer")).set_value(0).run()
    assert charts(at)[0]["data"] != before
    assert at.query_params["layer"] == "0"


# ------------------------------------------------------------------ layers
def test_layers_page(demo_env: Path) -> None:
    at = make_app().run()
    at.switch_page("pages/layers.py").run()
    no_exceptions(at)
    assert texts(at, "title") == ["Layers"]
    curves, compare, alphas = charts(at)
    names = {t["name"] for t in curves["data"]}
    assert {"train", "test", "layer chosen on training rows"} <= names
    # the baselines it has to be read against, its random-init control's among them
    baselines = {n.split(" (")[0] for n in names if n.endswith(")")}
    assert baselines == {"names only", "group mean", "random init"}
    assert len(compare["data"]) == 3  # smollm2, gemma3, smollm2 random init
    assert max(arr(t["x"]).max() for t in compare["data"]) <= 1.0
    assert any("edge" in t["name"] for t in alphas["data"])
    assert not at.select_slider  # no layer slider on this page
    at.multiselect(key=widget_key("cmp")).set_value(["gemma3-270m"]).run()
    assert at.query_params["cmp"] == "gemma3-270m"
    assert len(charts(at)[1]["data"]) == 1
    at.button_group(key=widget_key("metric")).set_value("proximity_error").run()
    assert at.query_params["metric"] == "proximity_error"
    assert "proximity error" in charts(at)[1]["layout"]["yaxis"]["title"]["text"]


def test_layers_page_sets_a_globe_probe_beside_latlon(demo_env: Path) -> None:
    import dataclasses
    import shutil

    from core.results.probe_results import ProbeResults

    world = demo_env / "results" / "smollm2-135m__world_places__empty__synthetic"
    latlon = ProbeResults.load(world)
    metrics = latlon.metrics.assign(
        r2_x=0.5, r2_y=0.4, r2_z=0.6, km_median=latlon.metrics["km_median"] * 0.9
    )
    n_layers, _, d = latlon.coef.shape
    globe = dataclasses.replace(
        latlon,
        coef=np.zeros((n_layers, 3, d), dtype=np.float32),
        intercept=np.zeros((n_layers, 3), dtype=np.float32),
        metrics=metrics,
        manifest={**latlon.manifest, "probe": {"target": "globe"}},
    )
    folder = demo_env / "results" / f"{world.name}-globe"
    globe.save(folder)
    try:
        at = make_app().run()
        at.switch_page("pages/layers.py").run()
        no_exceptions(at)
        assert "Globe target vs lat/lon" in texts(at, "subheader")
        fig = next(c for c in charts(at) if "two probe targets" in c["layout"]["title"]["text"])
        assert {t["name"] for t in fig["data"]} == {"lat/lon", "globe (x, y, z)"}
        table = at.dataframe[0].value
        assert "R² x / y / z" in table.columns and len(table) == 2
        # the map still shows the lat/lon probe
        at.switch_page("pages/maps.py").run()
        assert "globe" not in " ".join(texts(at, "caption")).lower()
    finally:
        shutil.rmtree(folder)


# -------------------------------------------------------------- live probe
def test_live_probe_space(demo_env: Path) -> None:
    at = make_app().run()
    at.switch_page("pages/live_probe.py").run()
    no_exceptions(at)
    # before anything is typed, an example is probed; it stays out of the URL
    (example,) = charts(at)
    # the predictions' labelled points (the gazetteer's true points are stars "… (true)")
    assert [
        t["text"]
        for t in example["data"]
        if t.get("mode") == "markers+text" and not t["text"][0].endswith("(true)")
    ] == [["Paris"], ["Tokyo"]]
    assert "names" not in at.query_params
    assert any(str(c.value).startswith("An example: Paris, Tokyo") for c in at.caption)
    at.text_area(key=widget_key("names")).input("Kyoto\nLake Titicaca").run()
    no_exceptions(at)
    assert at.query_params["names"] == "Kyoto\nLake Titicaca"
    assert any("SPACETIME_FAKE_MODEL" in w for w in texts(at, "warning"))
    (spec,) = charts(at)
    big = [
        t
        for t in spec["data"]
        if t.get("mode") == "markers+text" and not t["text"][0].endswith("(true)")
    ]
    assert [t["text"] for t in big] == [["Kyoto"], ["Lake Titicaca"]]
    paths = [t for t in spec["data"] if t.get("mode") == "lines+markers"]
    assert all(len(arr(t["lat"])) == 6 for t in paths)  # one point per layer
    table = at.dataframe[0].value
    assert len(table) == 12 and set(table["name"]) == {"Kyoto", "Lake Titicaca"}
    # the selected layer moves the big point along the path
    lat_at_5 = arr(big[0]["lat"])[0]
    at.select_slider(key=widget_key("layer")).set_value(0).run()
    big0 = [t for t in charts(at)[0]["data"] if t.get("mode") == "markers+text"][0]
    assert (
        arr(big0["lat"])[0] == pytest.approx(arr(paths[0]["lat"])[0])
        and arr(big0["lat"])[0] != lat_at_5
    )


def test_live_probe_steers_a_name_toward_a_target(demo_env: Path) -> None:
    at = make_app({"names": "Paris"}).run()
    at.switch_page("pages/live_probe.py").run()
    at.toggle(key="steer_on").set_value(True).run()
    no_exceptions(at)
    assert at.text_input(key="steer_target").value == "Tokyo"
    assert at.select_slider(key="steer_layer").value == 3  # the middle of six layers
    blocks = [c.value for c in at.code]
    assert len(blocks) == 3 and all(isinstance(b, str) and b for b in blocks)
    labels = " ".join(m.value for m in at.markdown)
    assert "Pushed along the probe" in labels and "Control: random direction" in labels
    assert "Paris is located in the country of" in labels
    spec = charts(at)[-1]
    names = [t.get("name", "") for t in spec["data"]]
    assert "target: Tokyo" in names
    assert any(n.startswith("pushed along the probe") for n in names)
    assert any(n.startswith("random direction (control)") for n in names)
    star = next(t for t in spec["data"] if t.get("name") == "target: Tokyo")
    assert arr(star["lat"])[0] == pytest.approx(35.69, abs=0.01)
    # strength 0: the push is no push, so all three readings coincide
    at.slider(key="steer_strength").set_value(0.0).run()
    spec = charts(at)[-1]
    paths = {t["name"]: arr(t["lat"]) for t in spec["data"] if t.get("mode") == "lines+markers"}
    before = paths["untouched: path over layers"]
    assert np.allclose(paths["pushed along the probe: path over layers"], before, atol=1e-3)
    at.text_input(key="steer_target").input("Nowhere-in-particular").run()
    assert any("No place called" in w for w in texts(at, "warning"))


def test_live_probe_time_and_markup_is_text(demo_env: Path) -> None:
    at = make_app({"dataset": "historical_figures", "names": "<img src=x onerror=alert(1)>"}).run()
    at.switch_page("pages/live_probe.py").run()
    no_exceptions(at)
    (spec,) = charts(at)
    assert spec["data"][0]["name"] == "&lt;img src=x onerror=alert(1)&gt;"
    assert len(arr(spec["data"][0]["y"])) == 6
    assert at.dataframe[0].value["name"].iloc[0] == "<img src=x onerror=alert(1)>"  # shown as text


def test_live_probe_reports_a_model_that_does_not_load(
    demo_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.ui import live

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("weights not converted")

    st.cache_resource.clear()
    monkeypatch.setattr(live, "load_probe_model", broken)
    at = make_app({"names": "Kyoto"}).run()
    at.switch_page("pages/live_probe.py").run()
    assert any("weights not converted" in e for e in texts(at, "error"))
    st.cache_resource.clear()


# ------------------------------------------------------------ empty states
@pytest.mark.parametrize(
    "page", ["pages/maps.py", "pages/timelines.py", "pages/layers.py", "pages/live_probe.py"]
)
def test_empty_state_names_the_build_command(empty_env: Path, page: str) -> None:
    at = make_app().run()
    at.switch_page(page).run()
    no_exceptions(at)
    codes = [c.value for c in at.code]
    assert (
        "python -m core build --model smollm2-135m --dataset world_places --prompt empty" in codes
    )
    assert not charts(at)


def test_empty_state_for_a_random_init_control(demo_env: Path) -> None:
    at = make_app({"model": "smollm2-135m@random", "dataset": "us_places"}).run()
    codes = [c.value for c in at.code]
    assert codes == [
        "python -m core build --model smollm2-135m --dataset us_places --prompt empty --random-init"
    ]


def test_unreadable_results_say_how_to_rebuild(
    tmp_path: Path, demo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    root = tmp_path / "cache"
    shutil.copytree(demo_root, root)
    broken = root / "results" / "smollm2-135m__world_places__empty__synthetic"
    (broken / "entities.parquet").write_bytes(b"not parquet")
    monkeypatch.setenv("SPACETIME_CACHE", str(root))
    at = make_app().run()
    no_exceptions(at)
    assert any("cannot be read" in e for e in texts(at, "error"))
    assert [c.value for c in at.code] == [
        "synthetic results (tests.support.synthetic) for smollm2-135m / world_places / empty"
    ]
    at.switch_page("pages/layers.py").run()
    no_exceptions(at)


# ------------------------------------------------------------ presentation
def test_presentation_mode(demo_env: Path) -> None:
    at = make_app({"pres": "1"}).run()
    no_exceptions(at)
    spec = charts(at)[0]
    assert spec["layout"]["font"]["size"] == 22
    assert not at.get("download_button")
    assert all(s.key != widget_key("color") for s in at.selectbox)  # page controls are hidden
    assert at.select_slider(key=widget_key("layer")).value == 5  # the slider stays for the talk
    at.button(key="exit_pres").click().run()
    assert "pres" not in at.query_params
    assert charts(at)[0]["layout"]["font"]["size"] == 13


# ---------------------------------------------------------------- routing
def test_first_request_for_a_page_goes_through_the_entry_script(
    demo_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a fresh server: v1 routing runs a page alone; it must come back with controls."""
    monkeypatch.setattr(PagesManager, "__init__", ORIGINAL_PAGES_MANAGER_INIT)
    at = make_app({"dataset": "historical_figures", "layer": "3", "by": "century"}).run()
    at.switch_page("pages/timelines.py").run()
    no_exceptions(at)
    assert texts(at, "title") == ["Timelines"]
    assert at.selectbox(key=widget_key("dataset")).value == "historical_figures"
    assert at.query_params["by"] == "century" and at.query_params["layer"] == "3"
    assert len(charts(at)) == 2
