"""AppTest of the Live probe page: names the dataset knows get their true point (or
year), the error of every layer and their split; names it lacks get the offline
gazetteer's; names neither knows say "not found" beside their prediction."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.results.probe_results import ProbeResults
from core.ui import live
from tests.app.conftest import make_app
from tests.support.synthetic import (
    demo_cache,
    save_synthetic,
    space_entities,
    synthetic_results,
    time_entities,
)

N = 300  # demo_root's entities per dataset (tests/app/conftest.py)


def _spec(at: AppTest) -> dict[str, Any]:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def _arr(value: Any) -> np.ndarray:
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def _captions(at: AppTest) -> str:
    return "\n".join(str(c.value).replace("\\", "") for c in at.caption)


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_live_probe_shows_the_true_point_and_the_error_in_km(demo_env: Path) -> None:
    world = space_entities(N, "world", seed=1)
    train = world[~world["is_test"]].iloc[0]
    test = world[world["is_test"]].iloc[0]
    typed = f"  {str(train['name']).upper()} "  # any case, stray spaces
    at = make_app({"names": f"{typed}\n{test['name']}\nXyzzyville"}).run()
    at.switch_page("pages/live_probe.py").run()
    _no_exceptions(at)
    typed = typed.strip()  # the page keeps names stripped

    data = _spec(at)["data"]
    star = next(t for t in data if t.get("name", "").startswith(f"{typed}: true position"))
    assert "training row" in star["name"] and star["marker"]["symbol"] == "star"
    assert star["text"] == [f"{typed} (true)"]
    assert _arr(star["lat"])[0] == np.float64(train["lat"])
    assert _arr(star["lon"])[0] == np.float64(train["lon"])
    assert "test row" in next(
        t["name"]
        for t in data
        if "true position" in t.get("name", "") and t["name"].startswith(str(test["name"]))
    )
    big = next(t for t in data if t.get("name", "").startswith(f"{typed}: layer "))
    assert "off by" in big["name"] and " km" in big["name"] and "off by" in big["hovertemplate"]
    path = next(t for t in data if t.get("name") == f"{typed}: path over layers")
    assert "km" in path["hovertemplate"]
    assert not any(t.get("name", "").startswith("Xyzzyville: true") for t in data)

    table = at.dataframe[0].value
    rows = table[table["name"] == typed]
    assert len(rows) == 6 and (rows["true lat"] == round(float(train["lat"]), 2)).all()
    assert np.isfinite(rows["error (km)"].to_numpy(float)).all()
    assert set(rows["row"]) == {"training"}
    assert set(table[table["name"] == str(test["name"])]["row"]) == {"test"}
    assert table[table["name"] == "Xyzzyville"]["error (km)"].isna().all()

    notes = _captions(at)
    assert "training row" in notes and "flatters" in notes and "never saw it" in notes
    assert "probe is off by" in notes and "km" in notes
    assert "'Xyzzyville' is not found in world_places or the offline gazetteer" in notes
    lines = _markdown(at)
    assert any(
        line.startswith("Xyzzyville: predicted ") and "not found" in line for line in lines
    ), lines


def _markdown(at: AppTest) -> list[str]:
    return [str(m.value).replace("\\", "") for m in at.markdown]


def test_live_probe_example_shows_the_gazetteers_truth_and_km(demo_env: Path) -> None:
    # the synthetic world_places has no Paris or Tokyo row: the gazetteer places them
    at = make_app().run()
    at.switch_page("pages/live_probe.py").run()
    _no_exceptions(at)
    notes = _captions(at)
    assert "An example: Paris, Tokyo" in notes
    assert "'Tokyo' is not in world_places; the gazetteer's match: GeoNames city Tokyo" in notes
    data = _spec(at)["data"]
    star = next(t for t in data if t.get("name", "").startswith("Tokyo: true position"))
    assert "gazetteer: Tokyo, Japan" in star["name"]
    assert abs(_arr(star["lat"])[0] - 35.69) < 0.05 and abs(_arr(star["lon"])[0] - 139.69) < 0.05
    big = next(t for t in data if t.get("name", "").startswith("Tokyo: layer "))
    off = re.search(r"off by ([\d,]+) km", big["name"])
    assert off is not None
    km = float(off.group(1).replace(",", ""))
    line = next(m for m in _markdown(at) if m.startswith("Tokyo: predicted "))
    assert re.fullmatch(
        r"Tokyo: predicted (in [A-Z][^,]*|outside every country [^,]*), "
        r"[\d,]+ km from Tokyo, Japan( \(the right country\))?",
        line,
    ), line
    assert f"{km:,.0f} km from Tokyo, Japan" in line  # the same layer as the map
    table = at.dataframe[0].value
    assert set(table[table["name"] == "Tokyo"]["row"]) == {"gazetteer"}


def test_live_probe_shows_the_true_year_and_the_error_in_years(demo_env: Path) -> None:
    people = time_entities(N, seed=7)
    person = people.iloc[0]
    at = make_app({"dataset": "historical_figures", "names": str(person["name"])}).run()
    at.switch_page("pages/live_probe.py").run()
    _no_exceptions(at)
    data = _spec(at)["data"]
    line = next(t for t in data if "true year" in t.get("name", ""))
    assert list(_arr(line["y"])) == [float(person["year"])] * 2
    assert "off by" in data[0]["hovertemplate"] and "years" in data[0]["hovertemplate"]
    table = at.dataframe[0].value
    assert np.isfinite(table["error (years)"].to_numpy(float)).all()
    assert (table["true year"] == float(person["year"])).all()
    assert f"true year {person['year']:.0f}" in _captions(at)


def test_live_probe_dates_a_person_the_dataset_lacks_from_wordnet(demo_env: Path) -> None:
    at = make_app({"dataset": "historical_figures", "names": "Napoleon"}).run()
    at.switch_page("pages/live_probe.py").run()
    _no_exceptions(at)
    data = _spec(at)["data"]
    line = next(t for t in data if "true year" in t.get("name", ""))
    assert list(_arr(line["y"])) == [1821.0] * 2 and "gazetteer: Napoleon I" in line["name"]
    headline = next(m for m in _markdown(at) if m.startswith("Napoleon: predicted "))
    assert re.fullmatch(
        r"Napoleon: predicted -?\d+( BC)?, [\d,]+ years from 1821 \(Napoleon I\)", headline
    )
    assert "WordNet: Napoleon I, died 1821" in _captions(at)


# ------------------------------------------------ the probe the benchmark chose
@pytest.fixture(scope="module")
def chosen_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo cache plus a second, smaller smollm2 world_places results folder, and a
    live_probes.json (as bench/live_places.py writes it) that chooses the smaller one."""
    root = tmp_path_factory.mktemp("chosen-cache")
    demo_cache(root, n=N, n_layers=6, d_model=32)
    small = space_entities(N, "world", seed=1).iloc[:200].reset_index(drop=True)
    # probes of layers 0-4 only: its best layer is not the selection's (5)
    res = synthetic_results(
        small, "space", 6, 32, "smollm2-135m", "world_places", layers=range(5), seed=9
    )
    save_synthetic(root, res, key="smollm2-135m__world_places__empty__small")
    choice = {
        "key": "smollm2-135m__world_places__empty__small",
        "target": "latlon",
        "n_entities": 200,
        "layer": 4,
        "median_km": 1234.5,
        "p90_km": 4567.8,
        "right_country": 0.25,
        "reason": "on 300 held-out places its median error is 1,234 km (test reason)",
    }
    (root / live.LIVE_CHOICES_FILE).write_text(
        json.dumps(
            {
                "dataset": "world_places",
                "prompt": "empty",
                "command": "python -m bench.live_places",
                "choices": {"smollm2-135m": choice},
            }
        )
    )
    return root


def test_live_probe_opens_on_the_benchmarks_probe_and_says_why(
    chosen_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPACETIME_CACHE", str(chosen_root))
    monkeypatch.setenv("SPACETIME_FAKE_MODEL", "tests.support.tiny:tiny_model")
    at = make_app().run()
    assert "__synthetic" in _captions(at)  # the Maps page: the selection's own results
    at.switch_page("pages/live_probe.py").run()
    _no_exceptions(at)
    notes = _captions(at)
    assert "results `smollm2-135m__world_places__empty__small`" in notes
    assert "Probe: smollm2-135m's lat/lon-target, 200-row world_places probe at layer" in notes
    assert "chosen by `python -m bench.live_places`: on 300 held-out places" in notes
    # opened on the chosen probe's own best layer, in the slider and the link alike
    chosen = json.loads((chosen_root / live.LIVE_CHOICES_FILE).read_text())
    best = ProbeResults.load(chosen_root / "results" / chosen["choices"]["smollm2-135m"]["key"])
    assert best.best_layer() != 5  # the selection's own best layer
    assert at.select_slider[0].value == best.best_layer()
    assert at.query_params["layer"] == str(best.best_layer())
    assert f"probe at layer {best.best_layer()}, chosen by" in notes
    table = at.dataframe[0].value
    assert len(table[table["name"] == "Tokyo"]) == 5  # every layer of the chosen probe

    at.toggle(key="live_own_probe").set_value(True).run()
    _no_exceptions(at)
    notes = _captions(at)
    assert "results `smollm2-135m__world_places__empty__synthetic`" in notes
    assert "the selected results' own, as asked; the benchmark's choice" in notes


def test_a_missing_chosen_folder_falls_back_to_the_selection(
    chosen_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads((chosen_root / live.LIVE_CHOICES_FILE).read_text())
    data["choices"]["smollm2-135m"]["key"] = "smollm2-135m__world_places__empty__gone"
    assert live.live_choice(data, "smollm2-135m", "world_places", "empty") is not None
    assert live.live_choice(data, "smollm2-135m", "us_places", "empty") is None
    assert live.live_choice(data, "gemma3-270m", "world_places", "empty") is None
    root = tmp_path / "cache"
    shutil.copytree(chosen_root, root)
    (root / live.LIVE_CHOICES_FILE).write_text(json.dumps(data))
    monkeypatch.setenv("SPACETIME_CACHE", str(root))
    monkeypatch.setenv("SPACETIME_FAKE_MODEL", "tests.support.tiny:tiny_model")
    at = make_app().run()
    at.switch_page("pages/live_probe.py").run()
    _no_exceptions(at)
    assert "results `smollm2-135m__world_places__empty__synthetic`" in _captions(at)
    assert any("__gone" in str(i.value) and "not in this cache" in str(i.value) for i in at.info)


def test_a_layer_the_chosen_probe_lacks_opens_its_best(
    chosen_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPACETIME_CACHE", str(chosen_root))
    monkeypatch.setenv("SPACETIME_FAKE_MODEL", "tests.support.tiny:tiny_model")
    at = make_app().run()
    at.switch_page("pages/live_probe.py").run()
    at.select_slider[0].set_value(2).run()  # picked on the page: kept
    assert at.query_params["layer"] == "2"
    at.switch_page("pages/maps.py").run()
    at.select_slider[0].set_value(5).run()  # the selection has layer 5, the chosen probe not
    at.switch_page("pages/live_probe.py").run()
    _no_exceptions(at)
    best = ProbeResults.load(chosen_root / "results" / "smollm2-135m__world_places__empty__small")
    assert at.select_slider[0].value == best.best_layer() != 5
    assert at.query_params["layer"] == str(best.best_layer())
