"""docs/findings.md: the paper's claims tested on the shipped results, kept in step."""

from __future__ import annotations

from pathlib import Path

from core.analysis.findings import (
    Context,
    beats_controls,
    findings,
    findings_markdown,
    linear_like_mlp,
    previous_verdicts,
    robust_to_prompts,
)
from core.common.cache import default_cache_root
from core.results.shipped import shipped_results
from tests.support.synthetic import space_entities, synthetic_results

REPO = Path(__file__).resolve().parents[2]


def test_findings_file_matches_the_shipped_results() -> None:
    root = default_cache_root()
    current = (REPO / "docs" / "findings.md").read_text()
    expected = findings_markdown(findings(shipped_results(root), root), previous_verdicts(current))
    assert current == expected, "run: python -m core findings --write docs/findings.md"


def test_beats_controls_needs_both_controls() -> None:
    world = space_entities(300, "world", seed=1)
    res = synthetic_results(world, "space", 6, 16)
    alone = Context((res,), None, n_boot=200)
    assert beats_controls(res, alone)[0].verdict == "not tested"  # no random-init control
    control = synthetic_results(world, "space", 6, 16, random_init=True, skill=0.0)
    found = beats_controls(res, Context((res, control), None, n_boot=200))[0]
    # the name-only ridge refitted on the entities' texts (the results carry no predictions)
    assert found.verdict == "holds", found
    assert "name-only" in found.evidence
    assert "random init on the same 300 entities" in found.evidence
    assert "− name-only +" in found.statistic and "[" in found.statistic


def test_claims_needing_analyses_say_how_to_test_them() -> None:
    world = space_entities(60, "world", seed=0)
    res = synthetic_results(world, "space", 4, 8)
    ctx = Context((res,), None)
    found = linear_like_mlp(res, ctx)[0]
    assert found.verdict == "not tested"
    assert "python -m core analyze --model smollm2-135m" in found.evidence
    # separate prompts' results are not the paper's test (a probe read on another prompt)
    other = synthetic_results(world, "space", 4, 8, prompt="coords", skill=0.5)
    found = robust_to_prompts(res, Context((res, other), None))[0]
    assert found.verdict == "not tested" and "--transfer-prompts all" in found.evidence
