"""Intervals on screen: the Layers page's band, the Research page's ± tables, and the
Maps page reading the stored baselines instead of refitting them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.results.upgrade import upgrade_results
from tests.app.conftest import make_app
from tests.app.test_pages import arr, charts, no_exceptions
from tests.support.synthetic import demo_cache, save_synthetic, synthetic_results, time_entities


@pytest.fixture(scope="module")
def stored_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo cache whose results store their baselines' predictions, with people across
    all three eras."""
    root = tmp_path_factory.mktemp("stored-cache")
    folders = demo_cache(root, n=200, n_layers=4, d_model=16)
    people = time_entities(1200, seed=8)
    people["year"] = np.linspace(-400, 2000, len(people)).round()
    folders.append(
        save_synthetic(
            root,
            synthetic_results(people, "time", 4, 16, dataset="historical_figures", seed=8),
        )
    )
    upgrade_results(folders)
    return root


@pytest.fixture
def stored_env(stored_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SPACETIME_CACHE", str(stored_root))
    monkeypatch.setenv("SPACETIME_FAKE_MODEL", "tests.support.tiny:tiny_model")
    yield stored_root


def _frames(at: Any) -> dict[str, Any]:
    """The page's tables by what they hold (AppTest keeps no dataframe keys)."""
    out = {}
    for d in at.dataframe:
        frame = d.value
        if "95% interval" in frame:
            out["r_intervals"] = frame
        elif "era" in frame:
            out["r_eras"] = frame
    return out


def test_layers_page_shades_the_test_curve(stored_env: Path) -> None:
    at = make_app().run()
    at.switch_page("pages/layers.py").run()
    no_exceptions(at)
    curves = charts(at)[0]
    band = [t for t in curves["data"] if t.get("legendgroup") == "test 95% interval"]
    assert len(band) == 2 and band[1]["fill"] == "tonexty"
    test = next(t for t in curves["data"] if t.get("name") == "test" and t.get("yaxis") == "y")
    lo, hi, y = (arr(v).astype(float) for v in (band[1]["y"], band[0]["y"], test["y"]))
    assert (lo <= y).all() and (y <= hi).all()
    legends = [t["name"] for t in curves["data"] if t.get("name", "").startswith("names only")]
    assert legends and "±" in legends[0]  # the stored name-only predictions give it one


def test_research_page_tables_show_intervals_and_eras(stored_env: Path) -> None:
    at = make_app({"dataset": "historical_figures"}).run()
    at.switch_page("pages/research.py").run()
    no_exceptions(at)
    frames = _frames(at)
    table = frames["r_intervals"]
    assert table[""].iloc[0].startswith("probe, layer ")
    assert table["test R²"].str.contains("±|\\[", regex=True).all()
    eras = frames["r_eras"]
    assert eras["era"].tolist() == ["all", "before 1500", "1500–1800", "after 1800"]
    assert eras["Spearman"].str.contains("±|\\[", regex=True).all()


def test_maps_read_the_stored_name_only_predictions(
    stored_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.viz import containers as cont

    def refit(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the name-only ridge was refitted")

    monkeypatch.setattr(cont, "name_only_predictions", refit)
    at = make_app({"dataset": "nyc_places"}).run()
    no_exceptions(at)
    helptext = at.metric[-1].help
    assert "being computed" not in helptext
    assert "name-only baseline: " in helptext and "%" in helptext.split("name-only")[1]
