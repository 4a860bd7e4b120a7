"""Rules that can fail on ties (issue 29): each handed a constructed predictor whose
answer is known — a constant, a shuffled and a tied one among them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.analysis.findings import (
    beats_controls,
    linear_like_mlp,
    places_within_groups,
    rises_then_plateaus,
    sharper_with_scale,
)
from core.probe.bootstrap import MARGIN, Interval, verdict_beats
from core.probe.within import WithinFit, within_target
from core.results.probe_results import ProbeResults
from core.results.within import (
    WITHIN,
    WITHIN_PREDICTIONS,
    _rewrite,
    decomposition_of,
    load_within,
    within_tables,
)
from tests.analysis.test_verdicts import N_BOOT, FakeContext, _analysis, _with_r2, _world
from tests.support.synthetic import (
    CONTINENTS,
    save_synthetic,
    space_entities,
    synthetic_results,
    time_entities,
)


def test_one_margin_makes_a_tie_fail() -> None:
    assert verdict_beats(Interval(0.0, -0.02, 0.02)) == "does not hold"  # SmolLM2 US
    assert verdict_beats(Interval(0.01, -0.01, 0.019)) == "does not hold"
    assert verdict_beats(Interval(0.05, 0.01, 0.09)) == "holds"
    assert verdict_beats(Interval(0.01, -0.03, 0.05)) == "inconclusive"
    assert verdict_beats(Interval(-0.1, -0.2, -0.05)) == "does not hold"
    assert verdict_beats(Interval(-0.05, -0.09, -0.01), lower=True) == "holds"  # an error
    assert MARGIN == 0.02


def test_an_asymmetric_interval_prints_as_a_range() -> None:
    assert Interval(0.52, -0.33, 0.68).compact() == "0.52 [-0.33, 0.68]"  # dated events
    assert Interval(0.35, 0.31, 0.39).compact() == "0.35 ± 0.04"


# ------------------------------------------------------------------ beats the controls
def test_a_probe_equal_to_its_name_only_control_does_not_hold() -> None:
    res, y, test = _world()
    probe = np.asarray(res.predictions[res.layer_position(res.best_layer())], dtype=float)
    control = synthetic_results(
        space_entities(1500, "world", seed=0), "space", 6, 8, random_init=True, skill=0.0
    )
    ctx = FakeContext((res, control), None, n_boot=N_BOOT, names=probe.copy())
    found = beats_controls(res, ctx)[0]
    assert found.verdict == "does not hold", found
    assert "no advantage" in found.why


# -------------------------------------------------------------------------- plateau
def test_a_curve_that_collapses_after_mid_depth_does_not_plateau() -> None:
    res, y, test = _world(1200)
    rng = np.random.default_rng(2)
    noise = rng.normal(size=y.shape)
    # rises from 0.1 to 0.6 by half depth, then falls back to 0.1 (six blocks)
    values = [0.1, 0.4, 0.6, 0.6, 0.3, 0.1]
    res.predictions = np.stack([_with_r2(y, v, rng, noise) for v in values])
    found = rises_then_plateaus(res, FakeContext((res,), None, n_boot=N_BOOT))[0]
    assert found.verdict == "does not hold", found
    assert "later fall" in found.statistic


# ---------------------------------------------------------------------- linear ≈ MLP
def test_two_no_information_predictors_are_not_testable_on_linear_vs_mlp() -> None:
    res, y, test = _world(2000, seed=3)
    mean = np.broadcast_to(y[~test].mean(axis=0), y.shape).copy()
    analysis = _analysis(
        len(y),
        test,
        y,
        mlp_pred=mean[None],
        ridge_pred=mean[None].copy(),
        manifest={"mlp_fitted_layers": [res.best_layer()], "mlp_hidden": 64},
    )
    ctx = FakeContext((res,), None, n_boot=N_BOOT, analysis=analysis)
    found = linear_like_mlp(res, ctx)[0]
    assert found.verdict == "not testable", found
    assert "name-only" in found.why


# ----------------------------------------------------------------------------- scale
def test_a_scale_pair_whose_smaller_model_is_its_own_random_init_is_not_comparable() -> None:
    world = space_entities(1200, "world", seed=8)
    small = synthetic_results(world, "space", 6, 8, "qwen2.5-coder-0.5b", seed=1, skill=0.3)
    small_control = synthetic_results(
        world, "space", 6, 8, "qwen2.5-coder-0.5b", seed=1, skill=0.3, random_init=True
    )
    large = synthetic_results(world, "space", 6, 8, "qwen2.5-coder-1.5b", seed=2)
    large_control = synthetic_results(
        world, "space", 6, 8, "qwen2.5-coder-1.5b", seed=3, skill=0.05, random_init=True
    )
    members = (small, small_control, large, large_control)
    for r in members:
        r.manifest["dataset_hash"] = "same"
    names = np.zeros((1200, 2))  # far below every model
    found = sharper_with_scale(large, FakeContext(members, None, n_boot=N_BOOT, names=names))
    assert len(found) == 1
    assert found[0].verdict == "not comparable", found[0]
    assert "qwen2.5-coder-0.5b − its random init" in found[0].why


# -------------------------------------------------------------------------- fragile
def test_a_verdict_carried_by_one_test_row_reads_fragile() -> None:
    people = time_entities(600, seed=4)
    people["is_test"] = np.arange(600) % 5 == 0
    first_test = int(np.flatnonzero(people["is_test"])[0])
    people.loc[first_test, "year"] = -490.0  # one ancient event
    people.loc[first_test, "name"] = "Marathon"
    res = synthetic_results(people, "time", 6, 8, dataset="dated_events", skill=0.0)
    y = people[["year"]].to_numpy(float)
    rng = np.random.default_rng(0)
    names = y.mean() + rng.normal(0, y[people["year"] > 0].std(), y.shape)  # no skill
    probe = names + 0.003 * (y - names)  # a hair better than the names (no advantage)
    probe[first_test] = -490.0  # ... and it knows the ancient one
    res.predictions = np.stack([probe] * 6)
    control = synthetic_results(
        people, "time", 6, 8, dataset="dated_events", random_init=True, skill=0.0, seed=5
    )
    control.predictions = np.stack([names] * 6)
    found = beats_controls(res, FakeContext((res, control), None, n_boot=N_BOOT, names=names))[0]
    assert found.verdict == "fragile", found
    assert "Marathon" in found.why


# -------------------------------------------------------------------- within groups
def _grouped(cache_root: Path, within_pred: str, n: int = 900) -> ProbeResults:
    """World places in continents (the grouping column "country"): the overall probe at
    each country's true centre; a within-group probe of the kind asked for, saved."""
    ent = space_entities(n, "world", seed=11)
    ent["country"] = ent["continent"]
    res = synthetic_results(ent, "space", 4, 8, dataset="world_places")
    centre = np.array([CONTINENTS[c] for c in ent["country"]])
    res.predictions = np.stack([centre] * 4)
    save_synthetic(cache_root, res)
    assert res.path is not None
    y = ent[["lat", "lon"]].to_numpy(float)
    test = ent["is_test"].to_numpy(bool)
    target = within_target(y, ent["country"].to_numpy(), test)
    rng = np.random.default_rng(3)
    z = target.offset
    on = np.broadcast_to(target.rows[:, None], z.shape)
    pred = {
        "centre": np.where(on, 0.0, np.nan),  # at the country's centre
        "constant": np.where(on, 1.5, np.nan),
        "shuffled": np.where(on, rng.permutation(np.nan_to_num(z)), np.nan),
        "good": z + rng.normal(0, 0.3, z.shape) * np.nanstd(z, axis=0),
        "tied": np.where(on, 0.0, np.nan),  # the same as its name-only control
    }[within_pred]
    names = np.where(on, 0.0, np.nan)
    fit = WithinFit(
        target,
        [0, 1, 2, 3],
        np.stack([pred] * 4),
        np.ones(4),
        np.zeros(4, dtype=bool),
        np.array([0.1, 0.2, 0.3, 0.4]),
        names,
    )
    table, layer, preds = within_tables(fit, test, n_boot=N_BOOT)
    info = {"grouping": "country", "min_train_rows": target.min_train, "layer": layer}
    _rewrite(
        res.path,
        {
            WITHIN: lambda p: table.to_parquet(p, index=False),
            WITHIN_PREDICTIONS: lambda p: np.save(p, preds),
        },
        {"within": info},
    )
    return ProbeResults.load(res.path, verify=True)


def test_a_predictor_at_its_countrys_true_centre_places_nothing_within(cache_root: Path) -> None:
    res = _grouped(cache_root, "centre")
    split = decomposition_of(res, res.best_layer(), "country", n_boot=N_BOOT)
    assert split is not None and split["r2"].point > 0.5
    assert split["r2_within"].point <= 0.0  # all of its R² lies between countries
    assert split["group_share"].point >= 1.0
    found = places_within_groups(res, FakeContext((res,), None, n_boot=N_BOOT))[0]
    assert found.verdict == "does not hold", found
    assert "within-country" in found.statistic and "R²_within" in found.evidence


@pytest.mark.parametrize("kind", ["constant", "shuffled", "tied"])
def test_the_within_rule_fails_a_constant_a_shuffled_and_a_tied_probe(
    cache_root: Path, kind: str
) -> None:
    res = _grouped(cache_root, kind)
    found = places_within_groups(res, FakeContext((res,), None, n_boot=N_BOOT))[0]
    assert found.verdict == "does not hold", (kind, found)


def test_the_within_rule_holds_for_a_probe_that_places_entities(cache_root: Path) -> None:
    res = _grouped(cache_root, "good")
    within = load_within(res)
    assert within is not None and within.grouping == "country"
    found = places_within_groups(res, FakeContext((res,), None, n_boot=N_BOOT))[0]
    assert found.verdict == "holds", found


def test_the_within_rule_is_not_tested_without_the_probe(cache_root: Path) -> None:
    ent = space_entities(300, "world", seed=1)
    ent["country"] = ent["continent"]
    res = synthetic_results(ent, "space", 4, 8, dataset="world_places")
    found = places_within_groups(res, FakeContext((res,), None, n_boot=N_BOOT))[0]
    assert found.verdict == "not tested" and "core.results.within" in found.why
