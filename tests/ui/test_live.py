"""Live probing refuses probes that cannot read the loaded model's activations, and
sets the truth beside the predictions of the names the dataset knows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from core.common.config import BuildConfig
from core.probe.metrics import haversine_km
from core.results.build import build
from core.results.probe_results import ProbeResults
from core.ui import live
from core.ui.live import incompatibility
from core.viz import figures as figs
from tests.support.synthetic import synthetic_results
from tests.support.tiny import tiny_model


def test_probes_need_the_start_token_they_were_fitted_with(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    results = build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    assert incompatibility(tiny, results) is None
    other = dataclasses.replace(tiny, start_token="<unk>")
    problem = incompatibility(other, results)
    assert problem is not None and "'<s>'" in problem and "'<unk>'" in problem
    assert "d_model" in str(incompatibility(tiny_model(d_model=16), results))


# ------------------------------------------------- the truth beside a live prediction
PARIS = (48.8566, 2.3522)
TOKYO = (35.6762, 139.6503)


def _places() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["Paris", "Tokyo", "Springfield", "springfield ", "Nowhere"],
            "text": ["Paris", "Tokyo", "Springfield", "Springfield", "Nowhere"],
            "lat": [PARIS[0], TOKYO[0], 39.8, 42.1, np.nan],
            "lon": [PARIS[1], TOKYO[1], -89.6, -72.6, 0.0],
            "is_test": [True, False, False, True, False],
        }
    )


def test_a_typed_name_meets_its_entity_case_insensitively_after_stripping() -> None:
    truths = live.match_names(["  tokyo ", "PARIS", "Kyoto"], _places(), ("lat", "lon"))
    tokyo = truths["  tokyo "]
    assert tokyo.known and tokyo.matches == 1 and tokyo.entity == "Tokyo"
    assert tokyo.values == TOKYO
    assert truths["PARIS"].values == PARIS
    assert not truths["Kyoto"].known  # exact match only: no prefix or substring
    assert live.match_names(["Par"], _places(), ("lat", "lon"))["Par"].matches == 0


def test_the_split_of_a_matched_entity_is_reported() -> None:
    truths = live.match_names(["Paris", "Tokyo"], _places(), ("lat", "lon"))
    assert truths["Paris"].is_test is True and truths["Paris"].split == "test row"
    assert truths["Tokyo"].is_test is False and truths["Tokyo"].split == "training row"
    note = live.truth_note(truths["Tokyo"], "space", "world_places")
    assert "training row" in note and "flatters" in note
    assert "never saw it" in live.truth_note(truths["Paris"], "space", "world_places")
    no_split = _places().drop(columns="is_test")
    bare = live.match_names(["Paris"], no_split, ("lat", "lon"))["Paris"]
    assert bare.known and bare.is_test is None and bare.split == "split unknown"


def test_an_unknown_name_has_no_truth_and_says_so() -> None:
    truth = live.match_names(["Kyoto"], _places(), ("lat", "lon"))["Kyoto"]
    assert truth.matches == 0 and truth.values is None and truth.errors is None
    assert "no true position is known" in live.truth_note(truth, "space", "world_places")
    assert "no true year is known" in live.truth_note(truth, "time", "historical_figures")
    # an entity without coordinates is no truth either
    assert not live.match_names(["Nowhere"], _places(), ("lat", "lon"))["Nowhere"].known
    # a table without the targets knows no name
    assert not live.match_names(["Paris"], _places(), ("year",))["Paris"].known


def test_an_ambiguous_name_uses_no_truth_and_says_so() -> None:
    truth = live.match_names(["Springfield"], _places(), ("lat", "lon"))["Springfield"]
    assert truth.ambiguous and truth.matches == 2 and truth.values is None
    note = live.truth_note(truth, "space", "us_places")
    assert "2 entities" in note and "no true position" in note


def test_the_error_is_great_circle_km_lat_then_lon() -> None:
    path = np.array([PARIS, TOKYO, (TOKYO[1], TOKYO[0])])  # the last: lat and lon swapped
    err = live.prediction_errors(path, TOKYO, "space")
    assert err.shape == (3,)
    assert err[0] == pytest.approx(9712, rel=0.01)  # Paris to Tokyo
    assert err[0] == pytest.approx(float(haversine_km(*PARIS, *TOKYO)))
    assert err[1] == pytest.approx(0.0, abs=1e-6)
    assert err[2] > 1000  # the order matters
    years = live.prediction_errors(np.array([[1700.0], [1790.0]]), (1769.0,), "time")
    assert list(years) == [69.0, 21.0]


def test_name_truths_table_and_figure_marks() -> None:
    frame = _places().dropna().reset_index(drop=True)
    res = synthetic_results(frame, "space", n_layers=3, d_model=8)
    paths = {"Tokyo": np.array([PARIS, (0.0, 0.0), TOKYO]), "Kyoto": np.zeros((3, 2))}
    truths = live.name_truths(paths, res, gazetteer=False)  # the dataset alone
    tokyo = truths["Tokyo"]
    assert tokyo.errors is not None and tokyo.errors[0] == pytest.approx(9712, rel=0.01)
    assert truths["Kyoto"].errors is None
    note = live.truth_note(tokyo, "space", res.dataset, res.layers, 0)
    assert "layer 0's probe is off by 9,7" in note and "km" in note

    table = live.prediction_table(paths, res.layers, res.target_names, res.kind, truths)
    assert len(table) == 6
    assert {"true lat", "true lon", "error (km)", "row"} <= set(table.columns)
    rows = table[table["name"] == "Tokyo"]
    assert list(rows["true lat"]) == [round(TOKYO[0], 2)] * 3
    assert rows["error (km)"].iloc[2] == pytest.approx(0.0)
    assert set(rows["row"]) == {"training"}
    assert table[table["name"] == "Kyoto"]["error (km)"].isna().all()
    unknown = live.prediction_table(
        {"Kyoto": paths["Kyoto"]}, res.layers, res.target_names, res.kind, truths
    )
    assert list(unknown.columns) == ["name", "layer", "predicted lat", "predicted lon"]

    marks = live.truth_marks(truths)
    assert marks["truths"] == {"Tokyo": TOKYO}
    assert marks["truth_labels"] == {"Tokyo": "training row"}
    assert set(marks["errors"]) == {"Tokyo"}
    fig = figs.live_map_figure(paths, res.layers, 0, "world", **marks)
    star = next(t for t in fig.data if (t.name or "").startswith("Tokyo: true position"))
    assert star.marker.symbol == "star" and (star.lat[0], star.lon[0]) == TOKYO
    assert star.text[0] == "Tokyo (true)" and "training row" in star.name
    big = next(t for t in fig.data if t.name and t.name.startswith("Tokyo: layer 0"))
    assert "off by 9,7" in big.name and "off by 9,7" in big.hovertemplate
    assert not any("Kyoto: true" in (t.name or "") for t in fig.data)


def test_time_truths_in_the_table_and_figure() -> None:
    frame = pd.DataFrame(
        {"name": ["Napoleon"], "text": ["Napoleon"], "year": [1769.0], "is_test": [True]}
    )
    truths = live.match_names(["napoleon"], frame, ("year",))
    truth = truths["napoleon"]
    paths = {"napoleon": np.array([[1700.0], [1790.0]])}
    truths = {
        "napoleon": dataclasses.replace(
            truth, errors=live.prediction_errors(paths["napoleon"], (1769.0,), "time")
        )
    }
    table = live.prediction_table(paths, [0, 1], ("year",), "time", truths)
    assert list(table["error (years)"]) == [69.0, 21.0] and set(table["row"]) == {"test"}
    assert "true year 1769" in live.truth_note(truths["napoleon"], "time", "historical_figures")
    fig = figs.live_time_figure(paths, [0, 1], 1, **live.truth_marks(truths))
    line = next(t for t in fig.data if "true year" in (t.name or ""))
    assert list(line.y) == [1769.0, 1769.0] and "test row" in line.name
    assert list(fig.data[0].customdata) == [69.0, 21.0]


def test_notes_are_escaped_for_markdown() -> None:
    assert live.markdown_text("*a* [b](c) $5 :red[x]") == r"\*a\* \[b\]\(c\) \$5 \:red\[x\]"


# ------------------------------------------- the gazetteer when the dataset has no answer
RIYADH = (24.69, 46.72)


def _world_results() -> ProbeResults:
    frame = _places().dropna().reset_index(drop=True)
    frame["country"] = ["France", "Japan", "United States", "United States"]
    return synthetic_results(frame, "space", n_layers=3, d_model=8)


def test_the_dataset_row_comes_first_then_the_gazetteer() -> None:
    res = _world_results()
    paths = {n: np.array([RIYADH] * 3) for n in ("Tokyo", "Kyoto", "Springfield", "Xyzzyville")}
    truths = live.name_truths(paths, res, scope="world")
    tokyo = truths["Tokyo"]  # a row of the dataset: its own position and split
    assert tokyo.source == "dataset" and tokyo.values == TOKYO and tokyo.split == "training row"
    assert tokyo.container == "Japan" and tokyo.label == "Tokyo, Japan"
    kyoto = truths["Kyoto"]  # not a row: the gazetteer's city
    assert kyoto.source == "gazetteer" and kyoto.split == "not a row"
    assert kyoto.values == pytest.approx((35.02, 135.75), abs=0.02)
    assert kyoto.container == "Japan" and kyoto.label == "Kyoto, Japan"
    assert "GeoNames city Kyoto, Japan" in kyoto.match
    assert kyoto.values is not None and kyoto.errors is not None
    assert kyoto.errors[0] == pytest.approx(float(haversine_km(*RIYADH, *kyoto.values)))
    # two rows share it: the gazetteer settles it, and says it picked the most populous
    spring = truths["Springfield"]
    assert spring.source == "gazetteer" and spring.matches == 2
    assert "the most populous of" in spring.match
    assert not truths["Xyzzyville"].known and truths["Xyzzyville"].source == ""
    marks = live.truth_marks(truths)
    assert marks["truth_labels"]["Kyoto"] == "gazetteer: Kyoto, Japan"
    assert marks["truth_labels"]["Tokyo"] == "training row"
    table = live.prediction_table(paths, res.layers, res.target_names, res.kind, truths)
    assert set(table[table["name"] == "Kyoto"]["row"]) == {"gazetteer"}


def test_a_us_map_prefers_the_us_place_of_a_shared_name() -> None:
    res = _world_results()
    paths = {"Paris": np.zeros((3, 2)), "Kyoto": np.zeros((3, 2))}
    truth = live.find_truths(["Paris", "Kyoto"], res, scope="usa", gazetteer=True)
    assert truth["Paris"].source == "dataset"  # a row: the dataset wins everywhere
    found = live.gazetteer_truth("Paris", "space", "us_places", "usa")
    assert found is not None and found.label == "Paris, Texas" and found.container == "Texas"
    abroad = live.gazetteer_truth("Kyoto", "space", "us_places", "usa")  # none in the US
    assert abroad is not None and abroad.container == "Japan"
    assert set(paths) == set(truth)


def test_the_country_a_prediction_falls_in() -> None:
    paths = {
        "Tokyo": np.array([PARIS, RIYADH, TOKYO]),
        "at sea": np.array([(0.0, -30.0)] * 3),
    }
    assert live.landing_containers(paths, [0, 1, 2], 1, "world") == {
        "Tokyo": "Saudi Arabia",
        "at sea": None,
    }
    assert live.landing_containers(paths, [0, 1, 2], 0, "world")["Tokyo"] == "France"
    assert live.landing_containers(paths, [0, 1, 2], 1, None) == {"Tokyo": None, "at sea": None}
    chicago = {"Chicago": np.array([(41.88, -87.63)])}
    assert live.landing_containers(chicago, [0], 0, "usa") == {"Chicago": "Illinois"}


def test_the_headline_sets_the_prediction_beside_the_truth() -> None:
    res = _world_results()
    paths = {"Kyoto": np.array([TOKYO, RIYADH, TOKYO]), "Xyzzyville": np.zeros((3, 2))}
    truths = live.name_truths(paths, res, scope="world")
    landed = live.landing_containers(paths, res.layers, 1, "world")
    kyoto = live.truth_headline(
        truths["Kyoto"], paths["Kyoto"], res.layers, 1, "space", "world_places", "world",
        landed["Kyoto"],
    )  # fmt: skip
    true = truths["Kyoto"].values
    assert true is not None
    km = float(haversine_km(*RIYADH, *true))
    assert kyoto == f"Kyoto: predicted in Saudi Arabia, {km:,.0f} km from Kyoto, Japan"
    right = live.truth_headline(
        truths["Kyoto"], paths["Kyoto"], res.layers, 2, "space", "world_places", "world", "Japan"
    )
    assert right.startswith("Kyoto: predicted in Japan, ") and right.endswith("(the right country)")
    unknown = live.truth_headline(
        truths["Xyzzyville"], paths["Xyzzyville"], res.layers, 1, "space", "world_places",
        "world", None,
    )  # fmt: skip
    assert unknown.startswith("Xyzzyville: predicted outside every country")
    assert "not found in world_places or the gazetteer" in unknown


def test_people_come_from_wordnet_on_people_datasets_only() -> None:
    napoleon = live.gazetteer_truth("Napoleon", "time", "historical_figures", None)
    assert napoleon is not None and napoleon.values == (1821.0,)
    assert napoleon.label == "Napoleon I" and "WordNet" in napoleon.match
    assert live.gazetteer_truth("Napoleon", "time", "artworks", None) is None
    path = np.array([[1700.0], [1790.0]])
    truth = dataclasses.replace(
        napoleon, errors=live.prediction_errors(path, napoleon.values, "time")
    )
    line = live.truth_headline(truth, path, [0, 1], 1, "time", "historical_figures")
    assert line == "Napoleon: predicted 1790, 31 years from 1821 (Napoleon I)"
