"""Scale within one family: pairs on identical rows, their paired gain and its verdict."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.findings import findings
from core.results import scale
from core.results.catalog import discover
from core.results.shipped import (
    DEMO_DATASETS,
    SAMPLE_LIMITS,
    SCALE_MODELS,
    demo_builds,
    same_rows_table,
    scoreboard,
    scoreboard_markdown,
    shipped_results,
)
from tests.support.synthetic import save_synthetic, space_entities, synthetic_results

SMALL, LARGE = SCALE_MODELS


def _family(skill_small: float, skill_large: float, controls: bool = True, n: int = 600):  # type: ignore[no-untyped-def]
    world = space_entities(n, "world", seed=4)
    out = [
        synthetic_results(world, "space", 6, 16, SMALL, skill=skill_small, seed=1),
        synthetic_results(world, "space", 8, 16, LARGE, skill=skill_large, seed=2),
    ]
    if controls:
        out += [
            synthetic_results(world, "space", 6, 16, SMALL, random_init=True, skill=0.1, seed=3),
            synthetic_results(world, "space", 8, 16, LARGE, random_init=True, skill=0.1, seed=4),
        ]
    return out


def test_families_come_from_the_registry_or_the_name() -> None:
    assert scale.family_of(SMALL) == scale.family_of(LARGE) == "Qwen2.5-Coder"
    assert scale.family_of("smollm2-135m") != scale.family_of("gemma3-270m")
    assert scale.family_of("meta-llama/Llama-2-7b-hf") == scale.family_of("Llama-2-13b-hf")
    assert scale.is_coder(LARGE) and not scale.is_coder("gemma3-270m")
    assert scale.family_label(LARGE).endswith(scale.CODER_MARK)


def test_a_bigger_sharper_model_of_one_family_holds() -> None:
    results = _family(0.5, 1.0)
    (pair,) = scale.with_controls(results)
    assert (pair.small.model, pair.large.model) == (SMALL, LARGE)
    gain = scale.scale_gain(pair, n_boot=200)
    assert gain.gain.lo > 0 and gain.beyond_control is not None
    assert gain.verdict == "holds"
    # the point is the paired difference of the two models' own chosen layers
    expected = pair.large.metric_at(pair.large.best_layer()) - pair.small.metric_at(
        pair.small.best_layer()
    )
    assert gain.gain.point == pytest.approx(expected, abs=0.02)


def test_a_worse_bigger_model_does_not_hold_and_a_tie_is_inconclusive() -> None:
    assert scale.scale_gain(scale.with_controls(_family(1.0, 0.4))[0], 200).verdict == (
        "does not hold"
    )
    tie = scale.scale_gain(scale.with_controls(_family(0.8, 0.8, n=200))[0], 200)
    assert tie.gain.straddles(0.0)
    assert tie.verdict == "inconclusive"


def test_pairs_need_one_family_and_identical_rows() -> None:
    world = space_entities(400, "world", seed=4)
    other_family = [
        synthetic_results(world, "space", 6, 16, "smollm2-135m"),
        synthetic_results(world, "space", 6, 16, "gemma3-270m"),
    ]
    assert scale.with_controls(other_family) == []
    fewer_rows = [
        synthetic_results(world, "space", 6, 16, SMALL),
        synthetic_results(world.iloc[:300], "space", 6, 16, LARGE),
    ]
    assert scale.with_controls(fewer_rows) == []
    resplit = world.copy()
    resplit["is_test"] = ~resplit["is_test"]
    assert not (
        synthetic_results(world, "space", 6, 16, SMALL).meta.shares_rows(
            synthetic_results(resplit, "space", 6, 16, LARGE).meta
        )
    )


def test_the_scoreboard_marks_families_and_shows_the_scale_pair(cache_root) -> None:  # type: ignore[no-untyped-def]
    for res in _family(0.5, 1.0):
        save_synthetic(cache_root, res)
    results = shipped_results(cache_root)
    board = scoreboard(results, with_paper=False)
    assert board.loc[("world_places", LARGE), "family"] == scale.family_label(LARGE)
    text = scoreboard_markdown(results)
    assert "Scale within a family" in text and scale.CODER_NOTE in text
    assert f"{LARGE} − {SMALL}" in text
    same = same_rows_table(results)
    assert set(same.loc["world_places"].index) == {SMALL, LARGE}


def test_the_findings_test_scale_within_the_family_only() -> None:
    world = space_entities(600, "world", seed=4)
    results = [
        *_family(0.5, 1.0),
        synthetic_results(world, "space", 6, 16, "smollm2-135m", skill=0.2),
        synthetic_results(world, "space", 6, 16, "gemma3-270m", skill=1.0),
    ]
    found = findings(results, None, n_boot=200)
    title = next(t for t in found if "bigger model" in t)
    (only,) = found[title]
    assert only.model == f"{LARGE} vs {SMALL}"
    assert only.verdict == "holds"
    assert "beyond random init" in only.statistic


def test_the_catalog_offers_identical_rows_and_the_scale_pair(cache_root) -> None:  # type: ignore[no-untyped-def]
    world = space_entities(600, "world", seed=4)
    for res in _family(0.5, 1.0):
        save_synthetic(cache_root, res)
    bigger = space_entities(900, "world", seed=9)
    save_synthetic(cache_root, synthetic_results(bigger, "space", 6, 16, "smollm2-135m"), "big")
    save_synthetic(
        cache_root, synthetic_results(world, "space", 6, 16, "smollm2-135m"), "same-rows"
    )
    catalog = discover(cache_root)
    assert catalog.find("smollm2-135m", "world_places", "empty").n_entities == 900  # type: ignore[union-attr]
    same = catalog.shared_sample("world_places", "empty")
    assert {e.model_id for e in same} >= {SMALL, LARGE, "smollm2-135m"}
    assert len({e.meta.rows for e in same}) == 1 and same[0].n_entities == len(world)
    left, right = catalog.pair("world_places", "empty", "smollm2-135m", LARGE)
    assert left is not None and right is not None and left.meta.shares_rows(right.meta)
    ((small, large),) = catalog.scale_pairs("world_places", "empty")
    assert (small.model, large.model) == (SMALL, LARGE)


def test_every_model_is_built_on_the_same_rows_with_its_control() -> None:
    builds = [b for b in demo_builds() if b.probe.target == "latlon"]
    for dataset in DEMO_DATASETS:
        on_rows = {
            (b.model, b.random_init)
            for b in builds
            if b.dataset == dataset and b.limit == SAMPLE_LIMITS.get(dataset)
        }
        for model in ("smollm2-135m", "gemma3-270m", *SCALE_MODELS):
            assert {(model, False), (model, True)} <= on_rows, (dataset, model)
    assert {b.dtype for b in builds if b.model in SCALE_MODELS} == {"bfloat16"}
    np.testing.assert_array_equal(len(builds), len({b.command() + str(b.probe) for b in builds}))


def test_a_smaller_model_that_reads_nothing_makes_the_pair_not_comparable() -> None:
    # the smaller "model" is no better than its random-init control: no scale reading
    results = _family(0.1, 1.0)
    gain = scale.scale_gain(scale.with_controls(results)[0], 200)
    assert gain.gain.lo > 0  # the larger model is far better...
    assert gain.verdict == "not comparable"  # ...but that says nothing about scale
    assert "does not beat its own controls" in gain.problem
    table = scale.scale_table(results, n_boot=200)
    row = table.iloc[0]
    assert row["verdict"].startswith("not comparable (the smaller model")
    assert "start tokens" in table.columns


def test_a_pair_without_the_larger_models_control_is_not_comparable() -> None:
    # the gain is clear, but how much of it a random model of that size would show is not
    results = _family(0.5, 1.0)[:3]  # the smaller model's control only
    (pair,) = scale.with_controls(results)
    assert pair.small_control is not None and pair.large_control is None
    gain = scale.scale_gain(pair, n_boot=200)
    assert gain.gain.lo > 0 and gain.beyond_control is None
    assert gain.verdict == "not comparable"
    assert gain.problem == f"{LARGE} has no random-init control on its rows"
