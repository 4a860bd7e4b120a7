"""bench/live_places.py's held-out places and its choice, without a model: the sample is
fixed by the seed, leaves out every excluded (training) name, and its truth is the
place the gazetteer resolves the name to."""

from __future__ import annotations

from bench.live_places import choose, held_out_places, reason
from core.data import gazetteer


def test_the_held_out_places_are_seeded_and_leave_out_training_names() -> None:
    first = held_out_places({"tokyo", "paris"}, n=60, seed=0)
    again = held_out_places({"tokyo", "paris"}, n=60, seed=0)
    other = held_out_places({"tokyo", "paris"}, n=60, seed=1)
    assert first.names == again.names and first.digest == again.digest
    assert first.names != other.names
    assert len(first.names) == 60 == len(set(first.names))
    assert not {"Tokyo", "Paris"} & set(first.names)
    assert {"capital", "large city"} == set(first.kind)
    for name, lat, lon in zip(first.names, first.lat, first.lon, strict=True):
        match = gazetteer.lookup_place(name)
        assert match is not None and (match.place.lat, match.place.lon) == (lat, lon)
    with_tokyo = held_out_places(set(), n=10_000, seed=0)  # everything the pool has
    assert "Tokyo" in with_tokyo.names and len(with_tokyo.names) == with_tokyo.n_pool


def test_the_choice_is_the_lowest_median() -> None:
    rows: list[dict[str, object]] = [
        {"key": "a", "median_km": 3000.0, "p90_km": 7000.0, "n_entities": 8000, "probe": "A"},
        {"key": "b", "median_km": 1900.0, "p90_km": 6600.0, "n_entities": 8000, "probe": "B"},
        {"key": "c", "median_km": 1900.0, "p90_km": 6000.0, "n_entities": 1500, "probe": "C"},
    ]
    best = choose(rows)
    assert best["key"] == "c"  # equal medians: the lower 90th percentile
    places = held_out_places(set(), n=20, seed=0)
    text = reason(best, rows, places)
    assert "its median error is 1,900 km (90th percentile 6,000 km)" in text
    assert "against 1,900 km for the B probe" in text and "of this model's 3 shipped" in text
