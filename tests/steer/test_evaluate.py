"""Reading steered answers, and the batch evaluation's table on the tiny model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from core.common.config import BuildConfig, SteerConfig
from core.results.build import build
from core.steer.answers import PlaceReader, read_year
from core.steer.evaluate import (
    evaluate_steering,
    headline_layer,
    load_steering,
    pair_targets,
    sample_test_pairs,
    save_steering,
    steering_dir,
)
from core.steer.report import PROTOCOL, headline, steer_reading


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


def test_headline_layer_is_chosen_on_training_rows_before_the_last_block(
    tiny, places, cache_root
) -> None:  # type: ignore[no-untyped-def]
    results = build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    last = results.n_model_layers - 1
    train = results.metrics[results.metrics["split"] == "train"]
    metric = "loo_r2" if "loo_r2" in train else "r2"
    expected = int(train[train["layer"] != last].sort_values(metric)["layer"].iloc[-1])
    assert headline_layer(results) == expected != last
    # the test rows never choose: make the test split's best layer another one
    metrics = results.metrics.copy()
    test_rows = metrics["split"] == "test"
    metrics.loc[test_rows, "r2"] = np.where(metrics.loc[test_rows, "layer"] == expected, -9.0, 9.0)
    assert headline_layer(dataclasses.replace(results, metrics=metrics)) == expected


def test_pairs_are_test_entities_and_chance_is_a_derangement() -> None:
    frame = pd.DataFrame(
        {
            "group": ["a", "b", "c", "d"] * 30,
            "year": np.arange(120) * 60.0,
            "is_test": np.arange(120) % 3 == 0,
        }
    )
    for seed in (0, 1, 2):
        rows, partners, shuffled = sample_test_pairs(frame, "space", "group", 25, seed)
        test = frame["is_test"].to_numpy()
        assert test[rows].all() and test[partners].all() and test[shuffled].all()
        assert (frame["group"].to_numpy()[rows] != frame["group"].to_numpy()[partners]).all()
        # every shuffled target is another sampled entity's assigned one, never its own
        assert sorted(shuffled) == sorted(partners) and (shuffled != partners).mean() > 0.5
        assert not (shuffled == rows).any()
    first, second = (
        sample_test_pairs(frame, "space", "group", 25, 0),
        sample_test_pairs(frame, "space", "group", 25, 1),
    )
    assert not np.array_equal(first[0], second[0])  # seeds draw different samples


def test_evaluation_table_and_round_trip(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    results = build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    head = headline_layer(results)
    other = next(v for v in (0, 1) if v != head)
    summary, examples, facts = evaluate_steering(
        tiny,
        results,
        "",
        SteerConfig(layers=(other,), strengths=(2.0,), n=8, question="{name} is in"),
    )
    # the pre-registered layer and strength 1 join the cells asked for
    assert facts["layers"] == sorted({other, head}) and facts["strengths"] == [1.0, 2.0]
    assert facts["headline_layer"] == head and facts["protocol"] == PROTOCOL
    assert facts["seeds"] == [0, 1, 2] and facts["n"] == 8 and facts["test_only"]
    assert facts["config"] == {
        "layers": [other],
        "n": 8,
        "strengths": [2.0],
        "seeds": [0, 1, 2],
        "question": "{name} is in",
    }
    # pooled: 3 seeds x 8 pushes per cell
    assert (summary["n"] == 24).all() and (summary["seeds"] == 3).all()
    assert list(summary["direction"][:1]) == ["none"]
    shuffled = summary[summary["direction"] == "shuffled"]
    assert list(zip(shuffled["layer"], shuffled["strength"], strict=True)) == [(head, 1.0)]
    assert set(summary[summary["preregistered"]]["direction"]) == {
        "none",
        "probe",
        "random",
        "shuffled",
    }
    # only test entities, as pushed and as targets
    test = results.entities["is_test"].to_numpy()
    assert test[examples["entity"]].all() and test[examples["target_entity"]].all()
    assert test[examples["pushed_toward"]].all()
    # chance: pushed toward another's target, scored against the entity's own
    chance = examples[examples["direction"] == "shuffled"]
    assert (chance["pushed_toward"] != chance["target_entity"]).any()
    assert (
        examples[examples["direction"] != "shuffled"]["pushed_toward"]
        == examples[examples["direction"] != "shuffled"]["target_entity"]
    ).all()
    # strength 1 along the probe: the layer's reading is the target, the random one is not
    cell = summary[(summary["layer"] == head) & (summary["strength"] == 1.0)].set_index("direction")
    assert (
        cell.loc["probe", "reading_error_at_layer"]
        < 0.05
        < cell.loc["random", "reading_error_at_layer"]
    )
    assert cell.loc["shuffled", "reading_error_at_layer"] > 0.05  # it reads another target
    assert cell.loc["probe", "delta_norm"] == cell.loc["random", "delta_norm"] > 0
    assert len(examples) == len(summary) * 24 and facts["answer_column"] == "group"
    folder = save_steering(
        steering_dir(cache_root, "k1"), summary, examples, {**facts, "command": "x"}
    )
    loaded = load_steering(folder)
    assert loaded is not None
    pd.testing.assert_frame_equal(loaded[0], summary)
    text = headline(loaded)
    assert f"layer {head}, strength 1" in text and "3 seeds pooled" in text
    assert text.endswith(("beats chance.", "includes 0.", "worse than chance."))
    assert "Pre-registered cell" in steer_reading(summary)
    assert load_steering(steering_dir(cache_root, "missing")) is None


def test_wilson_intervals_bracket_the_rate() -> None:
    from core.viz.steer_figures import wilson_interval

    low, high = wilson_interval([0, 20, 200], [200, 200, 200])
    assert low[0] == 0.0 and 0 < high[0] < 0.02
    assert low[1] < 0.1 < high[1] and round(low[1], 3) == 0.066 and round(high[1], 3) == 0.149
    assert high[2] == 1.0 and low[2] > 0.98
