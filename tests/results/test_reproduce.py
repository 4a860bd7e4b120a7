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
