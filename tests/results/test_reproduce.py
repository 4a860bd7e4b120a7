"""The cross-machine tolerance: a perturbed rerun passes, a real change fails."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.results.probe_results import ProbeResults
from core.results.reproduce import TOLERANCE, compare_frames, compare_results, target_range
from tests.support.synthetic import space_entities, synthetic_results


@pytest.fixture(scope="module")
def shipped() -> ProbeResults:
    return synthetic_results(space_entities(400, "world", seed=2), "space", 6, 16)


def _rerun(res: ProbeResults, scale: float, seed: int = 1) -> ProbeResults:
    """`res` as another CPU would rebuild it: every float moved by about `scale` (relative)."""
    rng = np.random.default_rng(seed)
    metrics = res.metrics.copy()
    for col in metrics.select_dtypes("float").columns:
        metrics[col] = metrics[col] * (1 + scale * rng.uniform(-1, 1, len(metrics)))
    noise = rng.uniform(-1, 1, res.predictions.shape) * scale * target_range(res)
    return dataclasses.replace(
        res,
        metrics=metrics,
        predictions=res.predictions + noise,
        alphas=res.alphas * (1 + scale),
    )


def test_a_rerun_with_last_bit_drift_passes(shipped: ProbeResults) -> None:
    rerun = _rerun(shipped, 1e-6)
    assert not np.array_equal(rerun.predictions, shipped.predictions)  # bit-exact would fail
    assert compare_results(rerun, shipped) == []


def test_a_percent_drift_fails(shipped: ProbeResults) -> None:
    problems = compare_results(_rerun(shipped, 1e-2), shipped)
    assert any(p.startswith("predictions") for p in problems)
    assert any(p.startswith("metrics.r2") for p in problems)
    assert any("alpha" in p for p in problems)


def test_another_chosen_layer_fails(shipped: ProbeResults) -> None:
    metrics = shipped.metrics.copy()
    train = metrics["split"] == "train"
    other = int(metrics.loc[train & (metrics["layer"] != shipped.best_layer()), "layer"].iloc[0])
    metrics.loc[train & (metrics["layer"] == other), "loo_r2"] = 2.0
    problems = compare_results(dataclasses.replace(shipped, metrics=metrics), shipped)
    assert f"chosen layer L{other} vs L{shipped.best_layer()}" in problems


def test_r2_drift_just_inside_and_outside_the_bound(shipped: ProbeResults) -> None:
    table = shipped.metrics
    inside = table.assign(r2=table["r2"] + TOLERANCE.r2 / 2)
    outside = table.assign(r2=table["r2"] + TOLERANCE.r2 * 2)
    assert compare_frames(inside, table, "metrics") == []
    assert compare_frames(outside, table, "metrics")[0].startswith("metrics.r2:")
    flags = table.assign(edge=[None, "high"] * (len(table) // 2) + [None] * (len(table) % 2))
    assert compare_frames(flags, flags.copy(), "controls") == []  # missing equals missing
    relabelled = table.assign(split=table["split"].where(table["layer"] != 0, "other"))
    assert compare_frames(relabelled, table, "metrics")[0].startswith("metrics.split")


def test_a_huge_negative_r2_is_held_to_a_relative_bound() -> None:
    import pandas as pd

    shipped = pd.DataFrame({"heldout_r2": [-2020.57, -0.5]})
    drift = pd.DataFrame({"heldout_r2": [-2020.60, -0.5]})  # measured AMD vs Intel
    assert compare_frames(drift, shipped, "holdout") == []
    near_zero = pd.DataFrame({"heldout_r2": [-2020.57, -0.51]})
    assert compare_frames(near_zero, shipped, "holdout") != []


def test_the_mlp_is_compared_by_r2_within_its_looser_bound() -> None:
    from core.results.reproduce import MLP_TOLERANCE, compare_r2

    rng = np.random.default_rng(0)
    y = rng.normal(0, 10, (300, 2))
    shipped = (y + rng.normal(0, 7, y.shape))[None]
    # single predictions move a lot, the fit's R² a little: inside
    moved = shipped.copy()
    moved[0, :5] += 14.0
    assert compare_r2(moved, shipped, y, "mlp") == []
    # a worse fit (R² down by ~0.2) is outside
    worse = shipped + rng.normal(0, 6, shipped.shape)
    assert compare_r2(worse, shipped, y, "mlp") != []
    assert MLP_TOLERANCE.r2 > TOLERANCE.r2


def test_per_entity_rank_statistics_may_move_one_step() -> None:
    from core.results.reproduce import compare_arrays

    shipped = np.random.default_rng(1).uniform(0, 1, (2, 400))
    one_step = shipped.copy()
    one_step[0, 7] += 1 / 399
    assert compare_arrays(one_step, shipped, "errors", kind="rank") == []
    assert compare_arrays(one_step, shipped, "errors") != []  # not as a prediction
    two_percent = shipped.copy()
    two_percent[1, 3] += 0.02
    assert compare_arrays(two_percent, shipped, "errors", kind="rank") != []
