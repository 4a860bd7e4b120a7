"""No dead ends: Timelines opened on a space dataset switches to a time dataset (and Maps
back), keeping the model and the layer where they apply; a selection of the wrong kind
picked on the page gets the switch as a button."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.results import catalog as cat
from core.ui import navigation as nav
from tests.app.conftest import make_app


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_timelines_opens_on_a_time_dataset_with_a_chart(demo_env: Path) -> None:
    at = make_app().run()  # a fresh start: Maps on world_places
    assert at.query_params["dataset"] == "world_places"
    at.switch_page("pages/timelines.py").run()
    _ok(at)
    assert at.title[0].value == "Timelines"
    assert at.query_params["dataset"] == "historical_figures"
    assert at.query_params["model"] == "smollm2-135m"  # the model is kept
    assert len(at.get("plotly_chart")) == 2  # the timeline and the residuals
    assert any("Timelines draws time datasets" in str(i.value) for i in at.info)
    assert not at.button  # nothing to click: it opened on what it can draw

    at.switch_page("pages/maps.py").run()  # and back: Maps opens on a space dataset
    _ok(at)
    assert at.query_params["dataset"] == "world_places"
    assert len(at.get("plotly_chart")) == 1


def test_the_layer_is_kept_where_the_new_results_have_it(demo_env: Path) -> None:
    at = make_app({"layer": "2"}).run()
    at.switch_page("pages/timelines.py").run()
    _ok(at)
    assert at.query_params["dataset"] == "historical_figures"
    assert at.query_params["layer"] == "2"


def test_a_wrong_kind_picked_on_the_page_offers_the_switch(demo_env: Path) -> None:
    at = make_app().run()
    at.switch_page("pages/timelines.py").run()
    assert at.query_params["dataset"] == "historical_figures"
    at.sidebar.selectbox(key="w_dataset").set_value("us_places").run()  # picked here
    _ok(at)
    assert at.query_params["dataset"] == "us_places"  # not switched behind the visitor
    assert not at.get("plotly_chart")
    assert any("us_places is a space dataset" in str(i.value) for i in at.info)
    button = at.button(key="switch_to_time")
    assert button.label == "Show historical_figures"
    button.click().run()
    _ok(at)
    assert at.query_params["dataset"] == "historical_figures"
    assert len(at.get("plotly_chart")) == 2


def test_the_switch_prefers_the_models_own_results(demo_env: Path) -> None:
    catalog = cat.discover(demo_env)
    # gemma has only world_places in the demo cache: another model's time results
    assert not [e for e in catalog.entries if e.model == "gemma3-270m" and e.kind == "time"]
    other = nav.switch_to_kind(catalog, "gemma3-270m", "empty", 3, "time")
    assert other is not None and other.model == "smollm2-135m" and other.layer == 3
    own = nav.switch_to_kind(catalog, "smollm2-135m", "nope", None, "time")
    assert own is not None and own.model == "smollm2-135m"
    assert own.dataset == "historical_figures" and own.prompt == "empty" and own.layer is None
    space = nav.switch_to_kind(catalog, "smollm2-135m", "coords", 99, "space")
    assert space is not None and (space.dataset, space.prompt) == ("world_places", "coords")
    assert space.layer is None  # layer 99 is not in those results
    assert (
        nav.switch_to_kind(cat.Catalog(root=demo_env), "smollm2-135m", "empty", 1, "time") is None
    )


def test_a_link_naming_a_dataset_of_the_other_kind_is_kept(demo_env: Path) -> None:
    at = make_app({"dataset": "historical_figures"}).run()  # a link to Maps
    _ok(at)
    assert at.query_params["dataset"] == "historical_figures"
    assert at.button(key="switch_to_space").label == "Show world_places"
