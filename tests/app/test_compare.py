"""AppTest of the Compare page: two models at one normalised depth, one slider for both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from pages._state import widget_key
from tests.app.conftest import make_app
from tests.app.test_pages import charts, no_exceptions, texts

PAGE = "pages/compare.py"


def open_compare(query: dict[str, str] | None = None) -> AppTest:
    at = make_app(query).run()
    at.switch_page(PAGE).run()
    no_exceptions(at)
    return at


def panel_titles(spec: dict[str, Any]) -> list[str]:
    return [a["text"] for a in spec["layout"].get("annotations", [])]


def layers_shown(spec: dict[str, Any]) -> list[str]:
    return [t.split("<br>")[1].split(" · ")[0] for t in panel_titles(spec)]


def test_two_models_side_by_side_at_the_first_models_chosen_layer(demo_env: Path) -> None:
    at = open_compare()
    assert texts(at, "title") == ["Compare"]
    (spec,) = charts(at)
    # two maps in one figure, the larger model (by the size in its name) on the left
    assert "geo" in spec["layout"] and "geo2" in spec["layout"]
    titles = panel_titles(spec)
    assert [t.split("<br>")[0] for t in titles] == ["<b>gemma3-270m</b>", "<b>smollm2-135m</b>"]
    assert layers_shown(spec) == ["layer 5 of 6", "layer 5 of 6"]
    assert all("test R² 0." in t for t in titles)
    assert {t["geo"] for t in spec["data"]} == {"geo", "geo2"}
    assert at.slider(key=widget_key("depth")).value == 1.0  # (5 + 1) / 6
    assert at.selectbox(key=widget_key("left")).value == ""  # the default pair
    assert "gemma3-270m (default)" in at.selectbox(key=widget_key("left")).options
    assert "smollm2-135m (random init)" in at.selectbox(key=widget_key("right")).options
    assert "depth" not in at.query_params and "left" not in at.query_params
    assert [b.proto.label for b in at.get("download_button")] == ["PNG", "SVG"]
    assert not at.info


def test_one_slider_moves_both_panels_and_the_url_keeps_the_depth(demo_env: Path) -> None:
    at = open_compare()
    before = charts(at)[0]["data"]
    at.slider(key=widget_key("depth")).set_value(0.5).run()
    no_exceptions(at)
    spec = charts(at)[0]
    assert layers_shown(spec) == ["layer 2 of 6", "layer 2 of 6"]  # (2 + 1) / 6 = 0.5
    assert spec["data"] != before
    assert at.query_params["depth"] == "0.5"
    at.slider(key=widget_key("depth")).set_value(0.0).run()
    assert layers_shown(charts(at)[0]) == ["layer 0 of 6", "layer 0 of 6"]
    assert at.query_params["depth"] == "0"

    # a copied link reopens the same depth
    again = open_compare({"dataset": "world_places", "depth": "0.5"})
    assert again.slider(key=widget_key("depth")).value == 0.5
    assert layers_shown(charts(again)[0]) == ["layer 2 of 6", "layer 2 of 6"]
    assert again.query_params["depth"] == "0.5"


def test_models_are_picked_and_kept_in_the_url(demo_env: Path) -> None:
    at = open_compare()
    at.selectbox(key=widget_key("left")).set_value("smollm2-135m@random").run()
    no_exceptions(at)
    assert at.query_params["left"] == "smollm2-135m@random"
    titles = panel_titles(charts(at)[0])
    # the right panel's default moves to the largest trained model not already shown
    assert titles[0].startswith("<b>smollm2-135m (random init)</b>")
    assert titles[1].startswith("<b>gemma3-270m</b>")
    again = open_compare({"left": "smollm2-135m@random", "right": "smollm2-135m"})
    titles = panel_titles(charts(again)[0])
    assert [t.split("<br>")[0] for t in titles] == [
        "<b>smollm2-135m (random init)</b>",
        "<b>smollm2-135m</b>",
    ]
    assert not again.info


def test_a_time_dataset_with_one_model_shows_one_timeline_and_says_so(demo_env: Path) -> None:
    at = open_compare({"dataset": "historical_figures"})
    (spec,) = charts(at)
    assert "xaxis2" not in spec["layout"]
    assert any(t.get("name") == "y = x" for t in spec["data"])
    assert layers_shown(spec) == ["layer 5 of 6"]
    (note,) = texts(at, "info")
    assert "Only smollm2-135m has results on historical_figures" in note
    assert "python -m core build --model gemma3-270m --dataset historical_figures" in note
    at.slider(key=widget_key("depth")).set_value(0.3).run()
    assert layers_shown(charts(at)[0]) == ["layer 1 of 6"]  # depths 2/6 nearest 0.3


def test_presentation_mode_keeps_only_the_slider(demo_env: Path) -> None:
    at = open_compare({"pres": "1"})
    assert texts(at, "title") == ["world_places · depth 1.00"]
    assert all(s.key not in (widget_key("left"), widget_key("right")) for s in at.selectbox)
    assert not at.get("download_button")
    spec = charts(at)[0]
    assert spec["layout"]["font"]["size"] == 22
    at.slider(key=widget_key("depth")).set_value(0.5).run()
    assert layers_shown(charts(at)[0]) == ["layer 2 of 6", "layer 2 of 6"]


def test_bad_link_values_fall_back_with_notes(demo_env: Path) -> None:
    at = make_app({"depth": "7", "left": "../../etc/passwd"}).run()
    notes = texts(at, "info")  # shown on the run that reads the link
    assert any("Depth '7'" in n for n in notes) and any("Left model" in n for n in notes)
    at.switch_page(PAGE).run()
    no_exceptions(at)
    assert at.slider(key=widget_key("depth")).value == 1.0
    assert "depth" not in at.query_params and "left" not in at.query_params


def test_no_results_name_the_build_command(empty_env: Path) -> None:
    at = open_compare()
    assert texts(at, "title") == ["Compare"]
    assert not charts(at)
    assert "python -m core build --model smollm2-135m --dataset world_places --prompt empty" in [
        c.value for c in at.code
    ]


def scale_cache(root: Path) -> None:
    """Two sizes of one family and their controls on identical rows, and a model of
    another family on more rows besides."""
    from core.results.shipped import SCALE_MODELS
    from tests.support.synthetic import save_synthetic, space_entities, synthetic_results

    world = space_entities(300, "world", seed=4)
    small, large = SCALE_MODELS
    for model, layers, skill in ((small, 6, 0.5), (large, 8, 1.0)):
        save_synthetic(root, synthetic_results(world, "space", layers, 16, model, skill=skill))
        save_synthetic(
            root,
            synthetic_results(world, "space", layers, 16, model, random_init=True, skill=0.1),
        )
    bigger = space_entities(500, "world", seed=9)
    save_synthetic(root, synthetic_results(bigger, "space", 6, 16, "smollm2-135m"))


def test_the_scale_pair_shows_on_layers_and_opens_on_compare(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from core.results.shipped import SCALE_MODELS

    small, large = SCALE_MODELS
    scale_cache(tmp_path)
    monkeypatch.setenv("SPACETIME_CACHE", str(tmp_path))
    at = make_app({"model": large, "dataset": "world_places"}).run()
    at.switch_page("pages/layers.py").run()
    no_exceptions(at)
    assert any("Scale within a family" in s for s in texts(at, "subheader"))
    metrics = {m.label: m.value for m in at.metric}
    assert f"{large} − {small}, test R²" in metrics
    assert metrics[f"{large} − {small}, test R²"].startswith("+")  # the larger one is sharper
    (button,) = [b for b in at.button if b.label == "Open this pair on Compare"]
    button.click().run()
    no_exceptions(at)
    assert at.selectbox(key=widget_key("left")).value == small
    assert at.selectbox(key=widget_key("right")).value == large
    (spec,) = charts(at)
    assert [t.split("<br>")[0] for t in panel_titles(spec)] == [
        f"<b>{small}</b>",
        f"<b>{large}</b>",
    ]
    assert any("Both on the same 300 entities" in c.value for c in at.caption)
