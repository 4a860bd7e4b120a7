"""Reading steered answers, and the batch evaluation's table on the tiny model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.common.config import BuildConfig
from core.results.build import build
from core.steer.answers import PlaceReader, read_year
from core.steer.evaluate import (
    evaluate_steering,
    load_steering,
    pair_targets,
    save_steering,
    steering_dir,
)


def test_place_reader_finds_the_first_place_named() -> None:
    reader = PlaceReader(["France", "South Korea", "United States", "Niger", "Nigeria"])
    assert reader.read(" France, which borders Spain") == "France"
    assert reader.read("the south of SOUTH KOREA") == "South Korea"
    assert reader.read(" the USA.") == "United States"
    assert reader.read(" Nigeria") == "Nigeria"  # not the shorter Niger
    assert reader.read(" South America. It is") is None
    assert reader.read("") is None


def test_read_year() -> None:
    assert read_year(" 1815, after the battle") == 1815.0
    assert read_year(" the 4th of July, 1776") == 1776.0
    assert read_year(" 44 BC in Rome") == -44.0
    assert read_year(" 3.14 and then 20") is None
    assert read_year(" unknown") is None


def test_pairs_cross_groups_and_years() -> None:
    frame = pd.DataFrame({"group": ["a", "a", "b", "b", "c"] * 4, "year": np.arange(20) * 60.0})
    rows, partners = pair_targets(frame, "space", "group", 12, seed=3)
    assert (
        len(rows) == 12
        and (frame["group"].to_numpy()[rows] != frame["group"].to_numpy()[partners]).all()
    )
    rows, partners = pair_targets(frame, "time", None, 12, seed=3)
    assert (
        np.abs(frame["year"].to_numpy()[rows] - frame["year"].to_numpy()[partners]) >= 100
    ).all()


def test_evaluation_table_and_round_trip(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    results = build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    summary, examples, facts = evaluate_steering(
        tiny, results, "", layers=[1], strengths=(1.0, 2.0), n=10, question="{name} is in"
    )
    assert list(summary["direction"]) == ["none", "probe", "random", "probe", "random"]
    assert (summary["n"] == 10).all() and summary["rate"].between(0, 1).all()
    # strength 1 along the probe: the layer's reading is the target, the random one is not
    probe1 = summary[(summary["direction"] == "probe") & (summary["strength"] == 1.0)].iloc[0]
    random1 = summary[(summary["direction"] == "random") & (summary["strength"] == 1.0)].iloc[0]
    assert probe1["reading_error_at_layer"] < 0.05 < random1["reading_error_at_layer"]
    assert probe1["delta_norm"] == random1["delta_norm"] > 0
    assert len(examples) == 5 * 10 and facts["answer_column"] == "group"
    folder = save_steering(steering_dir(cache_root, "k1"), summary, examples, {"command": "x"})
    loaded = load_steering(folder)
    assert loaded is not None
    pd.testing.assert_frame_equal(loaded[0], summary)
    assert load_steering(steering_dir(cache_root, "missing")) is None


def test_wilson_intervals_bracket_the_rate() -> None:
    from core.viz.steer_figures import wilson_interval

    low, high = wilson_interval([0, 20, 200], [200, 200, 200])
    assert low[0] == 0.0 and 0 < high[0] < 0.02
    assert low[1] < 0.1 < high[1] and round(low[1], 3) == 0.066 and round(high[1], 3) == 0.149
    assert high[2] == 1.0 and low[2] > 0.98
