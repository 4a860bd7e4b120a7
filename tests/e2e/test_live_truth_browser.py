"""The live probe a speaker stands behind, in headless Chromium: the opening example
shows Tokyo's true point and its error in km, a name nobody knows still shows its
prediction and says "not found", and Timelines opens with a chart on a fresh start.
The server is tests/e2e/conftest.py's (synthetic results, a stand-in model): the truth
comes from the offline gazetteer, the predictions are meaningless."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import TIMEOUT, TRACE_NAMES, wait_for_app, wait_for_chart

pytestmark = pytest.mark.e2e


def _has_trace(prefix: str) -> str:
    return "() => (" + TRACE_NAMES + f")().some(n => n.startsWith({prefix!r}))"


def test_the_opening_live_probe_shows_tokyos_true_point_and_km(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/live_probe")
    wait_for_app(page, "Live probe")
    page.wait_for_function(
        _has_trace("Tokyo: true position (gazetteer: Tokyo, Japan)"), timeout=TIMEOUT
    )
    names = page.evaluate(TRACE_NAMES)
    big = next(n for n in names if n.startswith("Tokyo: layer "))
    assert re.fullmatch(r"Tokyo: layer \d+, off by [\d,]+ km", big), big
    # the star sits on Tokyo
    star = page.evaluate(
        """() => [...document.querySelectorAll('.js-plotly-plot')].flatMap(gd => gd.data)
          .find(t => (t.name || '').startsWith('Tokyo: true position'))"""
    )
    assert star["text"] == ["Tokyo (true)"]
    km = big.rsplit("off by ", 1)[1]
    sentence = page.get_by_text(re.compile(r"^Tokyo: predicted .* km from Tokyo, Japan"))
    sentence.first.wait_for(timeout=TIMEOUT)
    assert km in sentence.first.inner_text()  # the same layer as the map
    page.get_by_text(re.compile(r"^Paris: predicted .* km from Paris, France")).first.wait_for(
        timeout=TIMEOUT
    )
    page.get_by_text(re.compile(r"^Probe: ")).first.wait_for(timeout=TIMEOUT)
    screenshot(page, "live-probe-truth")


def test_an_unknown_name_shows_its_prediction_and_not_found(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/live_probe?dataset=world_places")
    wait_for_app(page, "Live probe")
    page.wait_for_function(_has_trace("Paris: layer"), timeout=TIMEOUT)
    box = page.locator('[data-testid="stTextArea"] textarea')
    box.fill("Xyzzyville")
    box.press("Control+Enter")
    page.wait_for_function(_has_trace("Xyzzyville: layer"), timeout=TIMEOUT)
    page.get_by_text(re.compile(r"^Xyzzyville: predicted .*not found")).first.wait_for(
        timeout=TIMEOUT
    )
    assert not any(n.startswith("Xyzzyville: true") for n in page.evaluate(TRACE_NAMES))
    page.wait_for_url(re.compile(r"names=Xyzzyville"), timeout=TIMEOUT)
    screenshot(page, "live-probe-not-found")


def test_timelines_opens_with_a_chart_on_a_fresh_start(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")  # a first visit: Maps on the default world_places
    wait_for_app(page, "Maps")
    wait_for_chart(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Timelines").click()
    wait_for_app(page, "Timelines")
    wait_for_chart(page)
    page.wait_for_url(re.compile(r"/timelines\?.*dataset=historical_figures"), timeout=TIMEOUT)
    assert len(page.query_selector_all(".js-plotly-plot")) == 2
    assert "y = x" in page.evaluate(TRACE_NAMES)
    page.get_by_text("Timelines draws time datasets").first.wait_for(timeout=TIMEOUT)
    screenshot(page, "timelines-fresh-start")

    # a space dataset picked on the page: the switch is a button
    page.goto(f"{server}/timelines?dataset=us_places")
    wait_for_app(page, "Timelines")
    page.get_by_role("button", name="Show historical_figures").click()
    wait_for_chart(page)
    page.wait_for_url(re.compile(r"dataset=historical_figures"), timeout=TIMEOUT)


GEO_BOXES = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const box = r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width});
  return {
    plot: box(gd.getBoundingClientRect()),
    geos: [...gd.querySelectorAll('.geolayer > g.geo')].map(g => box(g.getBoundingClientRect())),
    legend: box(gd.querySelector('.legend').getBoundingClientRect()),
  };
}"""


def test_the_compare_maps_take_the_full_width(server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/compare?dataset=world_places")
    wait_for_app(page, "Compare")
    wait_for_chart(page)
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot .geolayer > g.geo').length == 2",
        timeout=TIMEOUT,
    )
    # both maps drawn with their outlines (fetched from /app/static) before measuring
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .geolayer > g.geo')]"
        ".every(g => g.querySelectorAll('.layer path').length > 10)",
        timeout=TIMEOUT,
    )
    page.wait_for_timeout(500)
    boxes = page.evaluate(GEO_BOXES)
    left, right = sorted(boxes["geos"], key=lambda b: b["left"])
    assert left["width"] + right["width"] >= 0.9 * boxes["plot"]["width"], boxes
    assert boxes["legend"]["top"] >= max(left["bottom"], right["bottom"]) - 1, boxes  # below
