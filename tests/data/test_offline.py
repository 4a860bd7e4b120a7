"""The eight offline datasets: schema, value ranges, splits, prompts and determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.data.build_cache import cache_key
from core.data.prompts import random_prefix
from core.data.registry import get_spec, load_dataset
from core.data.schema import EntityDataset

OFFLINE = (
    "world_places",
    "us_places",
    "nyc_places",
    "nyc_zipcodes",
    "historical_figures",
    "artworks",
    "headlines",
    "dated_events",
)
MIN_ROWS = {
    "world_places": 30_000,
    "us_places": 20_000,
    "nyc_places": 600,
    "nyc_zipcodes": 150,
    "historical_figures": 2_000,
    "artworks": 10_000,
    "headlines": 3_000,
    "dated_events": 1_000,
}
QUESTIONS = {
    "world_places": "What are the lat/lon coordinates of ",
    "us_places": "Where in the United States is ",
    "nyc_places": "Where in New York City is ",
    "nyc_zipcodes": "Where in New York City is ",
    "historical_figures": "When did ",
    "artworks": "When was the release date of ",
    "headlines": "Publication date of: ",
    "dated_events": "When did ",
}
GROUPS = {
    "world_places": "country",
    "us_places": "state",
    "nyc_places": "borough",
    "nyc_zipcodes": "borough",
    "historical_figures": "century",
    "artworks": "decade",
    "headlines": None,
    "dated_events": "decade",
}


@pytest.mark.parametrize("name", OFFLINE)
def test_schema_and_size(offline: dict[str, EntityDataset], name: str) -> None:
    data = offline[name]
    frame = data.frame
    assert data.name == name
    assert len(frame) >= MIN_ROWS[name]
    for column in ("name", "text", "is_test", "group", *data.target_names):
        assert column in frame, column
    assert frame["name"].is_unique
    assert frame["name"].notna().all() and (frame["text"].str.strip().str.len() > 0).all()
    assert frame["is_test"].dtype == bool
    assert np.isfinite(data.targets()).all()
    assert frame["group"].notna().all()
    group_column = GROUPS[name]
    if group_column:
        assert group_column in frame
    assert data.source and data.licence
    assert isinstance(frame.index, pd.RangeIndex)


@pytest.mark.parametrize("name", OFFLINE)
def test_split_is_about_a_fifth(offline: dict[str, EntityDataset], name: str) -> None:
    assert 0.17 <= offline[name].is_test().mean() <= 0.23


@pytest.mark.parametrize("name", OFFLINE)
def test_prompts(offline: dict[str, EntityDataset], name: str) -> None:
    data = offline[name]
    assert data.prompts["empty"] == ""
    assert data.prompts["random"] == random_prefix()
    assert QUESTIONS[name] in data.prompts.values()
    text = data.frame["text"].iloc[0]
    for prompt in data.prompts:
        assert data.texts(prompt)[0].endswith(text)  # the entity's last token comes last


def test_space_ranges(offline: dict[str, EntityDataset]) -> None:
    world = offline["world_places"].frame
    assert world["lat"].between(-90, 90).all() and world["lon"].between(-180, 180).all()
    assert {"city", "country", "airport", "volcano"} <= set(world["entity_type"])
    assert world["continent"].nunique() >= 6
    us = offline["us_places"].frame
    assert us["lat"].between(24, 50).all() and us["lon"].between(-125, -66).all()
    assert not us["state"].isin(["Alaska", "Hawaii", "Puerto Rico"]).any()
    assert us["state"].nunique() == 49  # lower 48 + DC
    nyc = offline["nyc_places"].frame
    assert nyc["lat"].between(40.45, 40.95).all() and nyc["lon"].between(-74.3, -73.65).all()
    assert set(nyc["borough"]) == {"Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island"}
    assert {"subway_station", "park", "cemetery", "neighborhood"} <= set(nyc["entity_type"])


def test_known_places(offline: dict[str, EntityDataset]) -> None:
    world = offline["world_places"].frame.set_index("name")
    assert (
        abs(world.loc["Paris", "lat"] - 48.85) < 0.1 and world.loc["Paris", "country"] == "France"
    )
    assert "Springfield" not in world.index  # ambiguous names are dropped, not guessed
    us = offline["us_places"].frame.set_index("name")
    assert "Springfield" not in us.index and not us.index.str.endswith(", Illinois").any()
    assert us.loc["Chicago", "state"] == "Illinois"


def test_time_ranges(offline: dict[str, EntityDataset]) -> None:
    people = offline["historical_figures"].frame.set_index("name")
    assert people["year"].between(-3000, 2025).all()
    assert people.loc["Julius Caesar", "year"] == -44
    assert people.loc["Johann Sebastian Bach", "year"] == 1750
    assert people.loc["Johann Sebastian Bach", "century"] == "18th c."
    art = offline["artworks"].frame
    assert art["year"].between(1940, 2014).all()
    assert art["text"].str.contains("'s |' ", regex=True).all()
    assert art.groupby("creator")["is_test"].nunique().max() == 1  # whole creators held out
    news = offline["headlines"].frame
    assert news["year"].between(2011, 2016).all()
    assert (news["year"] % 1 != 0).mean() > 0.99  # fractional years
    assert news["year"].max() - news["year"].min() > 3  # health-desk tweets, 2011-15


@pytest.mark.parametrize("name", OFFLINE)
def test_deterministic(offline: dict[str, EntityDataset], name: str) -> None:
    """A fresh build hashes the same as the cached one (and so as the first build)."""
    rebuilt = get_spec(name).builder()
    assert rebuilt.content_hash == offline[name].content_hash
    pd.testing.assert_frame_equal(rebuilt.frame, offline[name].frame)


def test_head_is_a_mixed_sample(offline: dict[str, EntityDataset]) -> None:
    head = offline["world_places"].head(2000).frame
    assert len(head) == 2000
    assert head["entity_type"].nunique() >= 3 and head["continent"].nunique() >= 6


def test_cache_entry_per_builder_version(
    session_cache: Path, offline: dict[str, EntityDataset]
) -> None:
    for name in OFFLINE:
        folder = session_cache / "datasets" / cache_key(get_spec(name))
        assert (folder / "entities.parquet").is_file() and (folder / "manifest.json").is_file()
    again = load_dataset("nyc_places", cache_root=session_cache, limit=10)
    assert len(again) == 10 and again.content_hash != offline["nyc_places"].content_hash
