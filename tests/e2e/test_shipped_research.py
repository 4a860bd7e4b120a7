"""The Research page of a fresh install, in a real browser: every analysis the project
ships for the default model is drawn from the shipped cache, no command needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.analysis.beside_paper import PAPER_MLP_7B
from core.results.shipped import DEMO_ANALYSES, DEMO_MODELS, DEMO_STEERING
from tests.e2e.conftest import screenshot, start_streamlit, stop_streamlit
from tests.e2e.test_browser import TIMEOUT, wait_for_app

pytestmark = pytest.mark.e2e

SHIPPED_CACHE = Path(__file__).resolve().parents[2] / "cache"
DEFAULT = DEMO_MODELS[0]
# the section headings every shipped analysis of the default model draws
SECTIONS = ("Probe against controls", "Space and time neurons", "Prompt sensitivity")


@pytest.fixture(scope="module")
def shipped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # the shipped cache is only read; the dashboard writes nothing under a results root
    proc, base = start_streamlit(SHIPPED_CACHE, tmp_path_factory.mktemp("log") / "st.log")
    yield base
    stop_streamlit(proc)


@pytest.mark.parametrize("dataset", [a.dataset for a in DEMO_ANALYSES if a.model == DEFAULT])
def test_every_shipped_section_renders(shipped_server: str, page, dataset: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{shipped_server}/research?model={DEFAULT}&dataset={dataset}")
    wait_for_app(page, "Research")
    sections = list(SECTIONS)
    sections.append("Block hold-out by")
    if (DEFAULT, dataset) in DEMO_STEERING:
        sections.append("Steering: does the model use the probe's direction?")
    for heading in sections:
        page.get_by_role("heading", name=heading).first.wait_for(timeout=TIMEOUT)
    titles = page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].map(t => t.textContent)"
    )
    assert any(t.startswith("Cross-prompt transfer") for t in titles), titles
    assert page.get_by_text("python -m core analyze").count() == 0  # nothing to run
    if dataset in PAPER_MLP_7B:  # the paper has a figure to set ours beside
        assert page.get_by_text("Beside the paper:").count() >= 1
    screenshot(page, f"research-shipped-{dataset}")
