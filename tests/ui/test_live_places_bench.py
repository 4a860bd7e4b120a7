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
        {"key": k, "median_km": m, "p90_km": p, "n_entities": n, "probe": k.upper()}
        for k, m, p, n in (("a", 3000.0, 7000.0, 8000), ("b", 1900.0, 6600.0, 8000),
                           ("c", 1900.0, 6000.0, 1500))
    ]  # fmt: skip
    for row in rows:
        row["right_country"] = 0.25
    best = choose(rows)
    assert best["key"] == "c"  # equal medians: the lower 90th percentile
    text = reason(best, rows, 300)
    assert text.startswith("on 300 well-known places held out of every probe's training rows")
    assert "its median error is 1,900 km (90th percentile 6,000 km; 25% land in the right" in text
    assert "against 1,900 km for its B probe" in text and "of this model's 3 shipped" in text
    assert reason(best, rows[2:], 300).endswith("the only shipped world_places probe of this model")
