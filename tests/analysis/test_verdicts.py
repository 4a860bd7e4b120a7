"""Verdicts that can fail: each rule against synthetic predictions with a known answer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from core.analysis.findings import (
    CHANGES_TITLE,
    LINEAR_GAP,
    Context,
    Finding,
    beats_controls,
    findings_markdown,
    generalises_across_blocks,
    linear_like_mlp,
    previous_verdicts,
    rises_then_plateaus,
    robust_to_prompts,
)
from core.analysis.holdout import ERROR_KINDS, block_references, hold_out_blocks
from core.analysis.run import AnalysisResults
from core.probe.bootstrap import Interval, verdict_above, verdict_below, verdict_share
from core.results.probe_results import ProbeResults
from tests.support.synthetic import space_entities, synthetic_results

N_BOOT = 400  # enough for these clear-cut cases, and quick
SPACE = ("lat", "lon")


@dataclass(frozen=True)
class FakeContext(Context):
    """A Context whose analysis and name-only predictions are given, not read from a cache."""

    analysis: AnalysisResults | None = None
    names: np.ndarray | None = None
    _unused: dict[str, int] = field(default_factory=dict, compare=False)

    def analysis_of(self, res: ProbeResults) -> AnalysisResults | None:
        return self.analysis

    def baseline_prediction(self, res: ProbeResults, name: str) -> np.ndarray | None:
        return self.names


def _analysis(n: int, is_test: np.ndarray, y: np.ndarray, **arrays: object) -> AnalysisResults:
    manifest = dict(arrays.pop("manifest", {}))  # type: ignore[call-overload]
    return AnalysisResults(
        controls=pd.DataFrame(columns=["layer", "control", "split", "r2"]),
        holdout=pd.DataFrame(arrays.pop("holdout", pd.DataFrame())),
        heldout_pred=np.zeros((0, n, 2)),
        neurons=pd.DataFrame(),
        neuron_acts=np.zeros((0, n)),
        transfer=pd.DataFrame(arrays.pop("transfer", pd.DataFrame())),
        manifest={"n_entities": n, **manifest},
        targets=y,
        is_test=is_test,
        **arrays,  # type: ignore[arg-type]
    )


def _with_r2(
    y: np.ndarray, r2: float, rng: np.random.Generator, noise: np.ndarray | None = None
) -> np.ndarray:
    """Predictions whose R² on `y` is close to `r2` (the truth plus noise; pass the same
    `noise` to make predictions that err together, as neighbouring layers do)."""
    noise = rng.normal(size=y.shape) if noise is None else noise
    return y + noise * y.std(axis=0) * np.sqrt(max(1e-6, 1.0 - r2))


def _world(n: int = 1500, seed: int = 0) -> tuple[ProbeResults, np.ndarray, np.ndarray]:
    world = space_entities(n, "world", seed=seed)
    res = synthetic_results(world, "space", 6, 8)
    y = world[list(SPACE)].to_numpy(float)
    return res, y, world["is_test"].to_numpy(bool)


# ------------------------------------------------------------------ verdict primitives
def test_an_interval_across_its_threshold_is_inconclusive() -> None:
    straddling = Interval(0.026, -0.004, 0.050)
    assert verdict_above(straddling, 0.0) == "inconclusive"
    assert verdict_below(straddling, 0.0) == "inconclusive"
    assert verdict_above(Interval(0.03, 0.01, 0.05)) == "holds"
    assert verdict_above(Interval(-0.03, -0.05, -0.01)) == "does not hold"
    assert verdict_below(Interval(-0.03, -0.05, -0.01)) == "holds"
    assert verdict_share(0.63) == "inconclusive"  # Gemma world's plateau, 63% of resamples


def test_beats_controls_reads_a_hair_of_difference_as_no_advantage() -> None:
    res, y, test = _world()
    rng = np.random.default_rng(1)
    probe = res.predictions[res.layer_position(res.best_layer())].astype(float)
    names = probe + rng.normal(size=probe.shape) * 0.5  # a hair worse than the probe
    control = synthetic_results(
        space_entities(1500, "world", seed=0), "space", 6, 8, random_init=True, skill=0.0
    )
    ctx = FakeContext((res, control), None, n_boot=N_BOOT, names=names)
    found = beats_controls(res, ctx)[0]
    assert found.verdict == "does not hold", found  # a tie fails (issue 29)
    assert "inside ±0.02 (no advantage)" in found.why and "random init" in found.evidence
    # a name-only ridge far below the probe, a random-init control at 0: holds
    far = FakeContext((res, control), None, n_boot=N_BOOT, names=_with_r2(y, 0.05, rng) * 0 + 5)
    assert beats_controls(res, far)[0].verdict == "holds"


def test_beats_controls_reads_no_control_built_on_other_rows() -> None:
    world = space_entities(1500, "world", seed=0)
    res = synthetic_results(world, "space", 6, 8)
    control = synthetic_results(world.iloc[:500], "space", 6, 8, random_init=True, skill=0.0)
    ctx = FakeContext((res, control), None, n_boot=N_BOOT, names=np.zeros((1500, 2)))
    found = beats_controls(res, ctx)[0]
    assert found.verdict == "not tested"  # a control on 500 of its rows is not its control
    assert "random-init control not on these rows" in found.evidence
    assert "n=500; none on these 1,500" in found.evidence


# ---------------------------------------------------------------- rises then plateaus
def test_rises_then_plateaus_needs_the_resamples_to_agree() -> None:
    res, y, test = _world(1200)
    rng = np.random.default_rng(2)

    noise = rng.normal(size=y.shape)

    def curve(values: list[float]) -> np.ndarray:
        return np.stack([_with_r2(y, v, rng, noise) for v in values])

    ctx = FakeContext((res,), None, n_boot=N_BOOT)
    res.predictions = curve([0.1, 0.3, 0.6, 0.61, 0.62, 0.62])
    assert rises_then_plateaus(res, ctx)[0].verdict == "holds"
    res.predictions = curve([0.1, 0.12, 0.14, 0.3, 0.5, 0.7])  # still rising late
    found = rises_then_plateaus(res, ctx)[0]
    assert found.verdict == "does not hold" and "of resamples agree" in found.statistic
    res.predictions = curve([0.1, 0.3, 0.5, 0.52, 0.55, 0.55])  # gain ≈ the 0.05 threshold
    assert rises_then_plateaus(res, ctx)[0].verdict == "inconclusive"


# --------------------------------------------------------------------- linear vs MLP
def _mlp_case(gap: float, edge: str = "") -> Finding:
    res, y, test = _world(2500, seed=3)
    rng = np.random.default_rng(4)
    ridge = _with_r2(y, 0.5, rng)
    if gap > 0:
        mlp = _with_r2(y, 0.5 + gap, rng)
    else:  # the ridge's errors plus some of its own: R² lower by about -gap
        mlp = ridge + rng.normal(size=y.shape) * y.std(axis=0) * np.sqrt(max(1e-4, -gap))
    analysis = _analysis(
        len(y),
        test,
        y,
        mlp_pred=mlp[None],
        ridge_pred=ridge[None],
        manifest={
            "mlp_fitted_layers": [res.best_layer()],
            "mlp_weight_decay": 10.0,
            "mlp_hidden": 128,
            "mlp_alpha_edge": edge,
        },
    )
    return linear_like_mlp(res, FakeContext((res,), None, n_boot=N_BOOT, analysis=analysis))[0]


def test_an_mlp_that_loses_by_009_does_not_make_linear_hold() -> None:
    found = _mlp_case(-0.09)
    assert found.verdict != "holds"
    assert found.verdict == "inconclusive" and "ridge better" in found.why


def test_linear_vs_mlp_has_three_outcomes() -> None:
    same = _mlp_case(0.0)
    assert same.verdict == "holds" and f"±{LINEAR_GAP}" in same.why
    better = _mlp_case(+0.2)
    assert better.verdict == "does not hold" and "nonlinear" in better.why
    # about equal, but the MLP's decay sits at its grid's edge: it may be under-tuned
    edge = _mlp_case(0.0, edge="high")
    assert edge.verdict == "inconclusive" and "edge" in edge.evidence


# ------------------------------------------------------------------------- prompts
def _prompt_case(own: float, other: float) -> Finding:
    res, y, test = _world(2500, seed=5)
    rng = np.random.default_rng(6)
    yt = y[test]
    prompts = ["empty", "coords", "where_is"]
    preds = np.stack(
        [
            np.stack([_with_r2(yt, own if i == j else other, rng) for j in range(3)])
            for i in range(3)
        ]
    )
    transfer = pd.DataFrame(
        [
            {"layer": 4, "train_prompt": a, "apply_prompt": b, "r2": 0.0}
            for a in prompts
            for b in prompts
        ]
    )
    analysis = _analysis(
        len(y),
        test,
        y,
        transfer=transfer,
        transfer_pred=preds[None],
        manifest={"prompts": prompts, "transfer_layers": [4]},
    )
    return robust_to_prompts(res, FakeContext((res,), None, n_boot=N_BOOT, analysis=analysis))[0]


def test_a_high_diagonal_and_low_off_diagonal_is_not_robust() -> None:
    found = _prompt_case(own=0.8, other=0.3)
    assert found.verdict == "does not hold", found
    assert "drop +0.5" in found.statistic and "6 off-diagonal pairs" in found.evidence
    assert _prompt_case(own=0.8, other=0.79).verdict == "holds"


def test_a_prompt_probe_with_little_to_read_is_inconclusive() -> None:
    found = _prompt_case(own=0.07, other=0.06)  # US at 0.07: nothing to be robust about
    assert found.verdict == "inconclusive" and "nothing to be robust about" in found.why


# --------------------------------------------------------------------------- blocks
def _blocks(probe_err: float, name_err: float, const_err: float, n: int = 900) -> Finding:
    res, y, test = _world(n, seed=7)
    rng = np.random.default_rng(8)
    errors = np.full((1, 1, len(ERROR_KINDS), n), np.nan)
    for k, level in zip(ERROR_KINDS, (probe_err, name_err, const_err, 0.3), strict=True):
        errors[0, 0, ERROR_KINDS.index(k)] = np.clip(level + 0.05 * rng.normal(size=n), 0, 1)
    errors[0, 0, ERROR_KINDS.index("nominal"), ~test] = np.nan
    holdout = pd.DataFrame({"layer": [4] * 5, "column": ["borough"] * 5, "block": list("ABCDE")})
    analysis = _analysis(
        n,
        test,
        y,
        holdout=holdout,
        holdout_errors=errors,
        manifest={
            "holdout_columns": ["borough"],
            "holdout_error_kinds": list(ERROR_KINDS),
            "holdout_layers": [4],
        },
    )
    found = generalises_across_blocks(
        res, FakeContext((res,), None, n_boot=N_BOOT, analysis=analysis)
    )
    assert len(found) == 1 and found[0].scope == "borough"
    return found[0]


def test_a_constant_that_beats_the_probe_means_blocks_do_not_generalise() -> None:
    # SmolLM2 on NYC boroughs: held-out 0.50, the training-mean constant 0.435
    found = _blocks(probe_err=0.50, name_err=0.55, const_err=0.435)
    assert found.verdict == "does not hold"
    assert "loses to the train mean" in found.why and "held-out − nominal" in found.evidence


def test_blocks_generalise_when_the_probe_beats_both_references() -> None:
    assert _blocks(0.20, 0.40, 0.45).verdict == "holds"
    assert _blocks(0.40, 0.402, 0.45).verdict == "does not hold"  # no advantage: a tie


def test_held_out_references_are_fitted_without_the_block() -> None:
    rng = np.random.default_rng(0)
    n = 300
    blocks = np.array(["A", "B", "C"])[rng.integers(0, 3, n)]
    centres = {"A": (50.0, 10.0), "B": (30.0, 100.0), "C": (-20.0, -60.0)}
    y = np.array([centres[b] for b in blocks]) + rng.normal(scale=3, size=(n, 2))
    is_test = rng.random(n) < 0.2
    texts = [f"{b.lower()}town {i}" for i, b in enumerate(blocks)]  # the name gives the block
    refs = block_references(texts, y, {"block": blocks}, is_test)["block"]
    for b in "ABC":
        inside = blocks == b
        train = ~inside & ~is_test
        np.testing.assert_allclose(
            refs["train_mean"][inside], np.tile(y[train].mean(0), (inside.sum(), 1))
        )
        # without the block, its name's n-gram never met a target: no better than far away
        assert np.abs(refs["name_only"][inside] - y[inside]).mean() > 20
    # a noise probe: the constant (the others' mean) ranks better than random predictions
    x = rng.normal(size=(n, 5))
    held = hold_out_blocks(x, y, blocks, is_test, SPACE, "space", references=refs)
    table = held.table
    assert {"heldout_name_only_proximity", "heldout_train_mean_proximity"} <= set(table)
    errors = held.error_matrix()
    assert errors.shape == (len(ERROR_KINDS), n) and np.isfinite(errors[:3]).all()
    assert np.isnan(errors[3][~is_test]).all() and np.isfinite(errors[3][is_test]).all()
    assert table["heldout_proximity"].to_numpy() == pytest.approx(
        [errors[0][blocks == b].mean() for b in table["block"]]
    )


# -------------------------------------------------------------------- changes section
def test_changes_section_compares_with_the_earlier_file_and_survives_a_rewrite() -> None:
    old = "\n".join(
        [
            "## A linear probe does about as well as an MLP",
            "",
            "| dataset | model | verdict | numbers |",
            "|---|---|---|---|",
            "| artworks | smollm2-135m | holds | ridge 0.09, MLP -0.00 at L28 |",
            "| artworks | gemma3-270m | holds | ridge 0.29, MLP 0.22 at L17 |",
            "",
            "## The representation generalises across held-out blocks",
            "",
            "| dataset | model | verdict | numbers |",
            "|---|---|---|---|",
            "| nyc_places | smollm2-135m | holds | held-out 0.49 |",
        ]
    )
    found = {
        "A linear probe does about as well as an MLP": [
            Finding("artworks", "smollm2-135m", "inconclusive", "r", "s", "ridge better"),
            Finding("artworks", "gemma3-270m", "holds", "r", "s", "about equal"),
        ],
        "The representation generalises across held-out blocks": [
            Finding("nyc_places", "smollm2-135m", "does not hold", "r", "s", "loses", "borough"),
            Finding("nyc_places", "smollm2-135m", "holds", "r", "s", "beats", "entity_type"),
        ],
    }
    text = findings_markdown(found, previous_verdicts(old))
    changes = text.split(f"## {CHANGES_TITLE}")[1]
    assert "| artworks | smollm2-135m |  | holds | inconclusive | ridge better |" in changes
    assert "| nyc_places | smollm2-135m | borough | holds | does not hold | loses |" in changes
    assert "gemma3-270m" not in changes and "entity_type" not in changes
    # rewriting from the new file keeps the comparison with the earlier one
    assert findings_markdown(found, previous_verdicts(text)) == text


def test_held_out_name_only_ridge_is_the_ridge_at_its_penalty() -> None:
    from core.analysis.holdout import _kernel_ridge, _primal_ridge
    from core.probe.ridge import RidgeProbe

    rng = np.random.default_rng(0)
    feats, y = rng.normal(size=(120, 300)), rng.normal(size=(120, 2))
    fit, apply = np.arange(90), np.arange(90, 120)
    expected = RidgeProbe(alphas=[7.0]).fit(feats[fit], y[fit]).predict(feats[apply])
    np.testing.assert_allclose(_kernel_ridge(feats @ feats.T, y, fit, apply, 7.0), expected)
    np.testing.assert_allclose(_primal_ridge(feats, y, fit, apply, 7.0), expected)
