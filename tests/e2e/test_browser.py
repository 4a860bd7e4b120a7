"""The dashboard in headless Chromium: pages load, the slider moves the map, the live
probe places a typed name, and no request leaves 127.0.0.1 (checked after each test
by the `page` fixture). Screenshots land in artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e

TIMEOUT = 45_000

FINGERPRINT = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd.data) return null;
  // arrays arrive base64-packed ({dtype, bdata}); compare them as sent
  return JSON.stringify(gd.data.map(t => [t.name, t.lat || t.y || null]));
}"""

TRACE_NAMES = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .flatMap(gd => (gd.data || []).map(t => t.name || ''))"""


def wait_for_app(tab, title: str) -> None:  # type: ignore[no-untyped-def]
    tab.get_by_role("heading", name=title, level=1).wait_for(timeout=TIMEOUT)
    tab.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=TIMEOUT
    )


def wait_for_chart(tab) -> None:  # type: ignore[no-untyped-def]
    tab.wait_for_selector(".js-plotly-plot .main-svg", timeout=TIMEOUT)
    tab.wait_for_function(FINGERPRINT, timeout=TIMEOUT)


def geo_outline_paths(tab) -> int:  # type: ignore[no-untyped-def]
    return int(
        tab.evaluate("() => document.querySelectorAll('.js-plotly-plot .geo .layer path').length")
    )


def test_timelines_layers_and_navigation_keep_the_state(server: str, page) -> None:  # type: ignore[no-untyped-def]
    # First in this file, so on a fresh server: its first request for a page URL is
    # routed by file name, and the page must come back through dashboard.py with the
    # shared controls and the URL's state (see pages/_state.context).
    page.goto(f"{server}/timelines?dataset=historical_figures&layer=3&by=century")
    wait_for_app(page, "Timelines")
    wait_for_chart(page)
    assert page.get_by_text("Page not found").count() == 0
    dataset_box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1)
    assert "historical_figures" in (
        dataset_box.inner_text() + str(dataset_box.locator("input").first.input_value())
    )
    assert "layer=3" in page.url and "by=century" in page.url
    assert len(page.query_selector_all(".js-plotly-plot")) == 2
    assert "y = x" in page.evaluate(TRACE_NAMES)
    screenshot(page, "timelines")

    page.locator('[data-testid="stSidebarNav"] a', has_text="Layers").click()
    wait_for_app(page, "Layers")
    wait_for_chart(page)
    page.wait_for_url(re.compile(r"/layers\?.*dataset=historical_figures"), timeout=TIMEOUT)
    assert len(page.query_selector_all(".js-plotly-plot")) == 3
    screenshot(page, "layers")

    # server-side export (kaleido, offline): the first figure as SVG
    with page.expect_download(timeout=TIMEOUT) as download:
        page.get_by_test_id("stDownloadButton").nth(1).get_by_role("button").click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".svg")
    assert path is not None and Path(path).read_bytes()[:200].lstrip().startswith(b"<svg")


def test_world_map_changes_with_the_layer_slider(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    wait_for_app(page, "Maps")
    wait_for_chart(page)
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot .geo .layer path').length > 10",
        timeout=TIMEOUT,
    )
    assert any("/app/static/topojson/world_110m.json" in url for url in page.requests)
    assert "layer=5" in page.url
    screenshot(page, "maps-world")
    before = page.evaluate(FINGERPRINT)

    slider = page.locator('[data-testid="stSlider"] input[type="range"]').first
    slider.focus()
    page.keyboard.press("Home")  # the first layer
    page.wait_for_url(re.compile(r"layer=0"), timeout=TIMEOUT)
    page.wait_for_function(f"() => ({FINGERPRINT})() !== {json.dumps(before)}", timeout=TIMEOUT)
    assert page.get_by_test_id("stMetricValue").first.inner_text() == "0 / 5"
    screenshot(page, "maps-world-layer0")

    # the URL reopens the same view in a new session
    page.goto(page.url)
    wait_for_app(page, "Maps")
    wait_for_chart(page)
    assert page.get_by_test_id("stMetricValue").first.inner_text() == "0 / 5"


@pytest.mark.parametrize(
    ("dataset", "topojson"), [("us_places", "usa_110m.json"), ("nyc_places", None)]
)
def test_us_and_nyc_maps_use_local_outlines(
    server: str, page, dataset: str, topojson: str | None
) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/?dataset={dataset}&seg=1")
    wait_for_app(page, "Maps")
    wait_for_chart(page)
    names = page.evaluate(TRACE_NAMES)
    assert "true → predicted" in names
    if topojson:
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot .geo .layer path').length > 10",
            timeout=TIMEOUT,
        )
        assert any(url.endswith(f"/app/static/topojson/{topojson}") for url in page.requests)
    else:
        # boroughs are drawn from static/outlines as a trace: no base map is fetched
        assert "outlines" in names
        assert not any("topojson" in url for url in page.requests)
    screenshot(page, f"maps-{dataset}")


def test_live_probe_places_a_typed_name(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/live_probe?dataset=world_places")
    wait_for_app(page, "Live probe")
    # an example is probed before anything is typed
    page.wait_for_function(
        "() => (" + TRACE_NAMES + ")().some(n => n.startsWith('Paris: layer'))", timeout=TIMEOUT
    )
    box = page.locator('[data-testid="stTextArea"] textarea')
    box.fill("Kyoto")
    box.press("Control+Enter")
    page.wait_for_function(
        "() => (" + TRACE_NAMES + ")().some(n => n.startsWith('Kyoto: layer'))", timeout=TIMEOUT
    )
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot .scattergeo .point').length >= 7",
        timeout=TIMEOUT,
    )
    page.wait_for_url(re.compile(r"names=Kyoto"), timeout=TIMEOUT)
    screenshot(page, "live-probe")


def test_live_probe_steers_paris_toward_tokyo(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/live_probe?dataset=world_places&names=Paris")
    wait_for_app(page, "Live probe")
    page.get_by_text("Push a name along a probe direction").click()
    page.get_by_text("Pushed along the probe", exact=True).wait_for(timeout=TIMEOUT)
    from playwright.sync_api import expect

    # the input can render a moment before Streamlit fills in its value: wait for it
    expect(page.get_by_label(re.compile(r"^Toward"))).to_have_value("Tokyo", timeout=TIMEOUT)
    page.get_by_text("Control: random direction", exact=True).wait_for(timeout=TIMEOUT)
    page.get_by_text("Paris is located in the country of").first.wait_for(timeout=TIMEOUT)
    page.wait_for_function(
        "() => (" + TRACE_NAMES + ")().includes('target: Tokyo')", timeout=TIMEOUT
    )
    names = page.evaluate(TRACE_NAMES)
    assert any(n.startswith("pushed along the probe") for n in names)
    assert any(n.startswith("random direction (control)") for n in names)
    # the untouched, steered and control continuations: three text blocks
    assert page.locator('[data-testid="stCode"]').count() >= 3
    screenshot(page, "live-probe-steer")


def test_live_probe_years_and_presentation_mode(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(
        f"{server}/live_probe?dataset=historical_figures&names=Napoleon%0AAda+Lovelace&pres=1"
    )
    wait_for_app(page, "Live probe")
    page.wait_for_function(
        "() => (" + TRACE_NAMES + ")().includes('Ada Lovelace')", timeout=TIMEOUT
    )
    assert not page.get_by_test_id("stSidebar").is_visible()
    screenshot(page, "live-probe-years-presentation")


def test_compare_page_moves_both_models_with_one_slider(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/compare?dataset=world_places")
    wait_for_app(page, "Compare")
    wait_for_chart(page)
    titles = """() => [...document.querySelectorAll(
      '.js-plotly-plot .gtitle, .js-plotly-plot .annotation-text')].map(e => e.textContent)"""
    before = page.evaluate(titles)
    assert sum("layer" in t for t in before) >= 2, before  # one panel title per model
    slider = page.locator('[data-testid="stSlider"] input[type="range"]').first
    slider.focus()
    page.keyboard.press("Home")  # depth 0: every model's first layer
    page.wait_for_url(re.compile(r"depth=0(&|$)"), timeout=TIMEOUT)
    page.wait_for_function(
        f"() => ({titles})().filter(t => t.includes('layer 0 of')).length >= 2",
        timeout=TIMEOUT,
    )
    screenshot(page, "compare")
