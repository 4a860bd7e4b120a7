"""docs/findings.md: the paper's claims tested on the shipped results, kept in step."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.analysis.findings import (
    Context,
    beats_controls,
    findings,
    findings_markdown,
    linear_like_mlp,
    rises_then_plateaus,
    robust_to_prompts,
)
from core.common.cache import default_cache_root
from core.results.shipped import shipped_results
from tests.support.synthetic import space_entities, synthetic_results

REPO = Path(__file__).resolve().parents[2]


def test_findings_file_matches_the_shipped_results() -> None:
    root = default_cache_root()
    expected = findings_markdown(findings(shipped_results(root), root))
    assert (REPO / "docs" / "findings.md").read_text() == expected, (
        "run: python -m core findings --write docs/findings.md"
    )


def _curve(values: list[float]) -> pd.DataFrame:
    rows = []
    for layer, r2 in enumerate(values):
        rows += [
            {"layer": layer, "split": "train", "r2": r2, "loo_r2": r2},
            {"layer": layer, "split": "test", "r2": r2, "loo_r2": float("nan")},
        ]
    return pd.DataFrame(rows)


def test_rises_then_plateaus_reads_the_depth_curve() -> None:
    world = space_entities(60, "world", seed=0)
    res = synthetic_results(world, "space", 8, 8)
    ctx = Context((res,), None)
    res.metrics = _curve([0.1, 0.3, 0.5, 0.6, 0.62, 0.63, 0.63, 0.64])
    assert rises_then_plateaus(res, ctx)[0] is True
    res.metrics = _curve([0.1, 0.12, 0.13, 0.14, 0.3, 0.5, 0.6, 0.7])  # still rising late
    holds, evidence = rises_then_plateaus(res, ctx)
    assert holds is False and "best 0.70 at depth 1.00" in evidence


def test_beats_controls_needs_both_controls() -> None:
    world = space_entities(300, "world", seed=1)
    res = synthetic_results(world, "space", 6, 16)  # name-only 0.10 in its baselines
    alone = Context((res,), None)
    assert beats_controls(res, alone)[0] is None  # no random-init control shipped
    control = synthetic_results(world, "space", 6, 16, random_init=True, skill=0.0)
    holds, evidence = beats_controls(res, Context((res, control), None))
    assert holds is True and "(names only)" in evidence and "(random init)" in evidence


def test_claims_needing_analyses_say_how_to_test_them() -> None:
    world = space_entities(60, "world", seed=0)
    res = synthetic_results(world, "space", 4, 8)
    ctx = Context((res,), None)
    holds, evidence = linear_like_mlp(res, ctx)
    assert holds is None and "python -m core analyze --model smollm2-135m" in evidence
    assert robust_to_prompts(res, ctx)[0] is None
    other = synthetic_results(world, "space", 4, 8, prompt="coords", skill=0.5)
    holds, evidence = robust_to_prompts(res, Context((res, other), None))
    assert holds is not None and "coords" in evidence and "empty" in evidence
