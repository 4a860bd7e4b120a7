"""Which country / state / borough a prediction lands in, and the share that is right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.common.config import ProbeSpec
from core.viz import containers as cont
from core.viz import figures as figs

PARIS = (48.86, 2.35)
ATLANTIC = (35.0, -40.0)
DENVER = (39.74, -104.99)
BROOKLYN = (40.65, -73.95)  # Flatbush, well inside the borough


def test_a_point_in_france_predicted_in_france_counts() -> None:
    frame = pd.DataFrame(
        {"pred_lat": [PARIS[0]], "pred_lon": [PARIS[1]], "is_test": [True], "country": ["France"]}
    )
    landed, score = cont.container_score(frame, "world")
    assert landed.tolist() == ["France"]
    assert (score.hits, score.n, score.n_unmatched, score.share) == (1, 1, 0, 1.0)
    assert score.noun == "country" and score.column == "country"


def test_a_point_in_the_atlantic_lands_nowhere() -> None:
    assert cont.lands_in([ATLANTIC[0]], [ATLANTIC[1]], "world").tolist() == [None]
    # and it never counts as right, whatever the label
    frame = pd.DataFrame(
        {"pred_lat": [ATLANTIC[0]], "pred_lon": [ATLANTIC[1]], "is_test": [True]}
    ).assign(country="Portugal")
    _, score = cont.container_score(frame, "world")
    assert (score.hits, score.n, score.share) == (0, 1, 0.0)


def test_longitudes_wrap_and_bad_points_land_nowhere() -> None:
    out = cont.lands_in([PARIS[0], PARIS[0], np.nan, 95.0], [PARIS[1] + 360, np.inf, 0, 0], "world")
    assert out.tolist() == ["France", None, None, None]
    assert cont.lands_in([], [], "world").tolist() == []


def test_us_states() -> None:
    out = cont.lands_in([DENVER[0], 30.27, ATLANTIC[0]], [DENVER[1], -97.74, ATLANTIC[1]], "usa")
    assert out.tolist() == ["Colorado", "Texas", None]
    frame = pd.DataFrame(
        {
            "pred_lat": [DENVER[0], DENVER[0], 30.27],
            "pred_lon": [DENVER[1], DENVER[1], -97.74],
            "is_test": [True, True, True],
            "state": ["Colorado", "CO", "Colorado"],  # names and postal codes both match
        }
    )
    _, score = cont.container_score(frame, "usa")
    assert (score.hits, score.n, score.noun) == (2, 3, "state")


def test_nyc_boroughs() -> None:
    out = cont.lands_in(
        [BROOKLYN[0], 40.7831, 40.58, 40.85, 40.73, 40.69],
        [BROOKLYN[1], -73.9712, -74.15, -73.88, -73.80, -74.03],  # the last in the harbour
        "nyc",
    )
    assert out.tolist() == ["Brooklyn", "Manhattan", "Staten Island", "Bronx", "Queens", None]
    assert cont.match_container("Kings County", "nyc") == "Brooklyn"
    assert cont.match_container("the Bronx", "nyc") == "Bronx"


def test_alias_and_normalised_name_matching() -> None:
    match = cont.match_container
    assert match("United States of America", "world") == "United States"
    assert match("USA", "world") == match("us", "world") == "United States"
    assert match("côte d’ivoire", "world") == match("Ivory Coast", "world") == "Ivory Coast"
    assert match("The Bahamas", "world") == "Bahamas"
    assert match("Bosnia & Herzegovina", "world") == "Bosnia and Herzegovina"
    assert match("Dem. Rep. Congo", "world") == "Democratic Republic of the Congo"
    assert match("FRA", "world") == match("fr", "world") == "France"
    assert match("Kosovo", "world") == "Kosovo"  # an id-less feature, named by position
    assert match("Hong Kong", "world") == "China"  # drawn inside China at 1:110m
    assert match("Tuvalu", "world") is None  # too small for 1:110m
    assert match("Atlantis", "world") is None and match(None, "world") is None
    assert match(float("nan"), "world") is None
    assert match("Washington, D.C.", "usa") == "District of Columbia"
    assert match("new york", "usa") == "New York"
    assert cont.normalise("  Saint-Martin ") == cont.normalise("St. Martin") == "saint martin"


def test_outlines_load_once_with_names() -> None:
    world = cont.container_outlines("world")
    assert world is cont.container_outlines("world")  # cached
    assert {"France", "Kosovo", "United States"} <= set(world["container"])
    assert world.geometry.is_valid.all() and world.crs.to_epsg() == 4326
    assert cont.container_outlines("usa")["container"].nunique() == 51  # 50 states and DC
    assert set(cont.container_outlines("nyc")["container"]) == {
        "Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island",
    }  # fmt: skip
    with pytest.raises(ValueError, match="scope"):
        cont.container_outlines("mars")


def test_share_on_a_tiny_table() -> None:
    frame = pd.DataFrame(
        {
            "pred_lat": [PARIS[0], PARIS[0], ATLANTIC[0], -8.52, 52.52, PARIS[0]],
            "pred_lon": [PARIS[1], PARIS[1], ATLANTIC[1], 179.2, 13.40, PARIS[1]],
            "is_test": [True, True, True, True, False, False],
            # right; wrong (Paris for a German place); at sea; Tuvalu has no outline;
            # two training rows: right and wrong
            "country": ["France", "Germany", "Spain", "Tuvalu", "Germany", "Italy"],
        }
    )
    landed, test = cont.container_score(frame, "world")
    assert landed.tolist() == ["France", "France", None, None, "Germany", "France"]
    assert (test.hits, test.n, test.n_unmatched) == (1, 3, 1)
    assert test.share == pytest.approx(1 / 3)
    _, train = cont.container_score(frame, "world", split="train")
    assert (train.hits, train.n, train.n_unmatched) == (1, 2, 0)
    _, every = cont.container_score(frame, "world", split="all")
    assert (every.hits, every.n, every.n_unmatched) == (2, 5, 1)
    empty = cont.score_landings(landed, landed, np.zeros(6, bool), "world", "country", "test")
    assert empty.n == 0 and np.isnan(empty.share)


def test_container_column_needs_labels_that_name_outlines() -> None:
    entities = pd.DataFrame({"country": ["France", "Tuvalu"], "continent": ["EU", "OC"]})
    assert cont.container_column(entities, "world") == "country"
    assert cont.container_column(entities.drop(columns="country"), "world") is None
    assert cont.container_column(entities.assign(country=["Atlantis", ""]), "world") is None
    assert cont.container_column(entities, "usa") is None  # no state column


def _clustered(n_per: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centres = {"France": (46.6, 2.4), "Germany": (51.0, 10.3), "Spain": (40.2, -3.6)}
    rows = []
    for country, (lat, lon) in centres.items():
        for i in range(n_per):
            rows.append(
                {
                    "name": f"{country[:3]}ville{i}",
                    "text": f"{country[:3]}ville{i}",
                    "lat": lat + rng.normal(0, 0.8),
                    "lon": lon + rng.normal(0, 0.8),
                    "country": country,
                    "is_test": i % 4 == 0,
                }
            )
    return pd.DataFrame(rows)


def test_baseline_predictions_and_scores() -> None:
    entities = _clustered()
    spec = ProbeSpec(alpha_grid=(-2.0, 4.0, 7))
    preds = cont.baseline_predictions(entities, spec)
    assert set(preds) == {"name_only", "group_mean"}
    assert all(p.shape == (len(entities), 2) for p in preds.values())
    scores = cont.baseline_scores(entities, "world", spec=spec)
    n_test = int(entities["is_test"].sum())
    assert scores["group_mean"].n == scores["name_only"].n == n_test
    assert scores["group_mean"].share == 1.0  # each country's mean lies inside it
    only = cont.baseline_scores(entities, "world", baselines=("group_mean",))
    assert set(only) == {"group_mean"}
    no_groups = entities.drop(columns="country").assign(country="France")
    assert set(cont.baseline_predictions(no_groups, spec)) == {"name_only"}
    with pytest.raises(ValueError, match="baseline"):
        cont.baseline_predictions(entities, spec, ("random",))


def test_probe_spec_from_a_manifest() -> None:
    manifest = {"probe": {"alpha_grid": [-8.0, 6.0, 57], "alpha_scale": "trace", "method": "loo"}}
    assert cont.probe_spec(manifest) == ProbeSpec((-8.0, 6.0, 57), "trace", "loo")
    assert cont.probe_spec({}) == ProbeSpec()


def test_random_points_land_on_land_at_about_the_land_share() -> None:
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-60, 80, 8000), rng.uniform(-180, 180, 8000)
    out = cont.lands_in(lat, lon, "world")
    assert 0.15 < np.mean([o is not None for o in out]) < 0.5


def test_map_hover_says_where_the_prediction_lands() -> None:
    frame = pd.DataFrame(
        {
            "name": ["Paris", "Nowhere <b>"],
            "lat": [PARIS[0], 0.0],
            "lon": [PARIS[1], 0.0],
            "pred_lat": [PARIS[0], ATLANTIC[0]],
            "pred_lon": [PARIS[1], ATLANTIC[1]],
        }
    )
    plain = figs.map_figure(frame, "world")
    assert all("lands in" not in (t.hovertemplate or "") for t in plain.data)
    landed = cont.lands_in(frame["pred_lat"], frame["pred_lon"], "world")
    fig = figs.map_figure(frame.assign(lands_in=landed), "world")
    (trace,) = [t for t in fig.data if t.mode == "markers"]
    assert "lands in: %{hovertext}" in trace.hovertemplate
    assert list(trace.hovertext) == ["France", "–"]
    assert np.asarray(trace.customdata).dtype.kind == "f"  # still a numeric array
    escaped = figs.map_figure(frame.assign(lands_in=["<i>x</i>", None]), "world")
    (trace,) = [t for t in escaped.data if t.mode == "markers"]
    assert list(trace.hovertext) == ["&lt;i&gt;x&lt;/i&gt;", "–"]


def test_stored_baseline_predictions_are_read_not_refitted(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.support.synthetic import space_entities, synthetic_results

    res = synthetic_results(space_entities(150, "nyc", seed=2), "space", 3, 8, dataset="nyc_places")
    n = len(res.entities)
    truth = res.entities[["lat", "lon"]].to_numpy()
    res.baseline_preds = {"name_only": truth.copy(), "train_mean": np.zeros((n, 2))}

    def refit(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the name-only ridge was refitted")

    monkeypatch.setattr(cont, "name_only_predictions", refit)
    stored = cont.stored_baselines(res)
    assert set(stored) == {"name_only", "train_mean"}
    scores = cont.baseline_scores(res.entities, "nyc", stored=stored)
    assert set(scores) == {"name_only", "group_mean"}  # the group mean is instant
    exact = scores["name_only"]  # true coordinates land in their own borough, mostly
    assert exact.n and exact.share > 0.8
