"""Splits that do not leak by spelling, the opt-in zip codes, and people's eras and
occupations (issue 23)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data.frames import finalize
from core.data.historical_figures import MIN_OCCUPATION, era_of
from core.data.nyc_places import head_words, split_groups
from core.data.registry import get_spec
from core.data.schema import EntityDataset
from core.data.splits import balanced_group_split
from core.data.us_places import match_key, split_key
from core.probe.baselines import reference_column
from core.results.shipped import DEMO_DATASETS

MAX_CROSS_SPLIT = 0.05


def _nyc_table(texts: list[str], borough: str = "Brooklyn") -> pd.DataFrame:
    frame = pd.DataFrame({"text": texts, "borough": borough})
    frame["name"] = frame["text"]
    frame["lat"], frame["lon"] = 40.7, -73.9
    frame["split_group"] = split_groups(frame["text"], frame["borough"])
    return finalize(frame, "space", split_by="split_group", balance_groups=True)


def test_neighbourhood_variants_land_in_one_split() -> None:
    """A random split by name puts some of these variants on opposite sides."""
    families = [
        ["Sunset Park (West)", "Sunset Park (East)", "Sunset Park (Central)"],
        ["Crown Heights (North)", "Crown Heights (South)", "Crown Heights"],
        ["86 St", "86 St (6 train)", "86 St (R train)"],
        ["Bay Ridge", "Bay Ridge Av", "Bay Ridge-95 St"],
        ["Flatbush (West)", "East Flatbush-Farragut", "Flatbush Av-Brooklyn College"],
        ["Bedford-Stuyvesant (East)", "Bedford-Stuyvesant (West)", "Bedford Av"],
        ["Kings Hwy (N train)", "Kings Hwy (B train)", "Kings Hwy (F train)"],
        ["Coney Island-Sea Gate", "Coney Island-Stillwell Av", "Sea Gate"],
        ["Park Slope", "Park Pl", "Park Slope (North)"],
        ["Williamsburg", "East Williamsburg", "South Williamsburg"],
    ]
    table = _nyc_table([t for family in families for t in family]).set_index("name")
    for family in families:
        sides = table.loc[family, "is_test"]
        assert sides.nunique() == 1, sides.to_dict()
    assert table.loc["Sunset Park (West)", "is_test"] == table.loc["Sunset Park (East)", "is_test"]
    assert table["is_test"].any() and not table["is_test"].all()


def test_head_word_rule() -> None:
    assert head_words("Sunset Park (West)") == ["sunset"]
    assert head_words("86 St (6 train)") == head_words("86 St") == ["86"]
    assert head_words("W 4 St-Washington Sq") == ["4", "washington"]
    assert head_words("East New York (North)") == ["york"]
    assert head_words("St. George-New Brighton") == ["george", "brighton"]
    assert head_words("Upper East Side-Carnegie Hill") == ["side", "carnegie"]
    assert head_words("Prince's Bay") == ["princes"]
    assert head_words("Van Nest") != head_words("Van Cortlandt Park")
    groups = split_groups(
        pd.Series(["Riverdale", "Riverdale-Spuyten Duyvil", "Spuyten Duyvil", "Sunset Park"]),
        pd.Series(["Bronx", "Bronx", "Bronx", "Brooklyn"]),
    )
    assert groups.tolist() == ["Bronx: riverdale"] * 3 + ["Brooklyn: sunset"]


def test_balanced_group_split_fills_a_fifth_with_whole_groups() -> None:
    groups = pd.Series([f"g{i}" for i in range(300) for _ in range(1 + i % 7)])
    test = balanced_group_split(groups, 0.2, seed=0)
    assert abs(test.mean() - 0.2) < 0.01
    assert pd.Series(test).groupby(groups.to_numpy()).nunique().max() == 1
    np.testing.assert_array_equal(test, balanced_group_split(groups.iloc[::-1], 0.2)[::-1])


def _cross_split_share(keys: list[set[str]], is_test: np.ndarray) -> float:
    """Share of test rows with a key that some training row also has."""
    train = set().union(*(k for k, t in zip(keys, is_test, strict=True) if not t))
    test = [bool(k & train) for k, t in zip(keys, is_test, strict=True) if t]
    return float(np.mean(test))


def test_nyc_test_names_share_no_head_word_with_training_names(
    offline: dict[str, EntityDataset],
) -> None:
    frame = offline["nyc_places"].frame
    keys = [
        {f"{b}: {h}" for h in head_words(t)}
        for t, b in zip(frame["text"], frame["borough"], strict=True)
    ]
    assert _cross_split_share(keys, frame["is_test"].to_numpy()) <= MAX_CROSS_SPLIT
    assert frame.groupby("split_group")["is_test"].nunique().max() == 1
    assert not frame["text"].str.fullmatch(r"\d{5}").any()  # zip codes are their own set
    assert "zip" not in set(frame["entity_type"])


def test_us_test_names_share_no_family_with_training_names(
    offline: dict[str, EntityDataset],
) -> None:
    frame = offline["us_places"].frame
    keys = [{k} for k in split_key(frame["text"])]
    assert _cross_split_share(keys, frame["is_test"].to_numpy()) <= MAX_CROSS_SPLIT
    assert frame["text"].str.casefold().is_unique  # "Alexandria City" / "Alexandria city"
    names = set(frame["name"])
    assert "Alexandria city" not in names and "Alexandria City" not in names  # the city stays
    assert "Alexandria" in names
    assert not {"DuPage County", "Dupage County"} <= names


def test_us_split_key_merges_case_and_type_variants() -> None:
    keys = split_key(
        pd.Series(
            ["Alexandria City", "Alexandria city", "Alexandria", "Hale County Airport",
             "Hale County", "Garden City Regional Airport", "Garden City", "Ft. Worth",
             "Fort Worth", "Carson City"]
        )
    )  # fmt: skip
    assert keys.tolist() == ["alexandria"] * 3 + ["hale"] * 2 + ["garden"] * 2 + [
        "fort worth"
    ] * 2 + ["carson"]
    assert match_key(pd.Series(["St. Louis"])).tolist() == ["saint louis"]


def test_zip_codes_are_an_opt_in_dataset(offline: dict[str, EntityDataset]) -> None:
    spec = get_spec("nyc_zipcodes")
    assert spec.offline and spec.kind == "space"
    assert "nyc_zipcodes" not in DEMO_DATASETS
    frame = offline["nyc_zipcodes"].frame
    assert len(frame) >= 150 and frame["text"].str.fullmatch(r"\d{5}").all()
    # the finding that moved them out: the 3-digit prefix gives the borough every time
    assert frame.groupby("zip_prefix")["borough"].nunique().max() == 1


def test_people_have_an_era_and_a_pooled_occupation(offline: dict[str, EntityDataset]) -> None:
    frame = offline["historical_figures"].frame
    assert set(frame["era"]) == {"before 1500", "1500–1800", "after 1800"}
    assert (frame["era"] == era_of(frame["year"])).all()
    assert (frame["hypernym"].str.len() > 0).all() and (frame["occupation"].str.len() > 0).all()
    wordnet = frame[frame["source"] == "wordnet"]
    assert (wordnet["hypernym"] != "person").all()  # WordNet always names the class
    train = frame[~frame["is_test"]]
    counts = train.loc[train["occupation"] != "other", "occupation"].value_counts()
    assert counts.min() >= MIN_OCCUPATION
    assert frame["occupation"].nunique() > 50
    assert reference_column(frame) == "occupation"  # the group-mean baseline's column


@pytest.mark.parametrize(
    ("year", "era"),
    [(-44, "before 1500"), (1499, "before 1500"), (1500, "1500–1800"), (1799, "1500–1800"),
     (1800, "after 1800"), (1950, "after 1800")],
)  # fmt: skip
def test_era_boundaries(year: float, era: str) -> None:
    assert era_of(pd.Series([year])).iloc[0] == era
