"""AppTest of the Live probe page: names the dataset knows get their true point (or
year), the error of every layer and their split; other names get a note."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest

from tests.app.conftest import make_app
from tests.support.synthetic import space_entities, time_entities

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
    at = make_app({"names": f"{typed}\n{test['name']}\nKyoto"}).run()
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
    assert not any(t.get("name", "").startswith("Kyoto: true") for t in data)

    table = at.dataframe[0].value
    rows = table[table["name"] == typed]
    assert len(rows) == 6 and (rows["true lat"] == round(float(train["lat"]), 2)).all()
    assert np.isfinite(rows["error (km)"].to_numpy(float)).all()
    assert set(rows["row"]) == {"training"}
    assert set(table[table["name"] == str(test["name"])]["row"]) == {"test"}
    assert table[table["name"] == "Kyoto"]["error (km)"].isna().all()

    notes = _captions(at)
    assert "training row" in notes and "flatters" in notes and "never saw it" in notes
    assert "probe is off by" in notes and "km" in notes
    assert "'Kyoto' is not in world_places: no true position is known" in notes


def test_live_probe_example_keeps_its_names_and_says_no_truth_is_known(demo_env: Path) -> None:
    at = make_app().run()
    at.switch_page("pages/live_probe.py").run()
    _no_exceptions(at)
    notes = _captions(at)
    assert "An example: Paris, Tokyo" in notes
    assert "'Tokyo' is not in world_places: no true position is known" in notes
    assert not any("true position" in t.get("name", "") for t in _spec(at)["data"])


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
