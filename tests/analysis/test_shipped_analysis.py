"""The shipped analyses: every analysis of every shipped build, each reproducible."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.analysis.reproduce import compare_analyses
from core.analysis.run import AnalysisResults, analysis_dir
from core.common.cache import default_cache_root
from core.results.shipped import (
    CHECK_SLICE,
    DEMO_ANALYSES,
    shipped_names,
    shipped_results,
)
from tests.support.recorded import ONE_THREAD, rerun_recorded


def _shipped() -> dict[tuple[str, str, int], AnalysisResults]:
    root = default_cache_root()
    listed = shipped_names(root, "analysis") or set()
    out = {}
    for res in shipped_results(root):
        if res.path is not None and res.path.name in listed:
            analysis = AnalysisResults.load(analysis_dir(root, res.path.name), verify=True)
            out[(res.model, res.dataset, len(res.entities))] = analysis
    return out


def test_every_demo_analysis_ships_with_its_command() -> None:
    shipped = _shipped()
    have = {(model, dataset) for model, dataset, _ in shipped}
    assert {(a.model, a.dataset) for a in DEMO_ANALYSES} <= have
    with_transfer = {(a.model, a.dataset) for a in DEMO_ANALYSES if a.transfer}
    for (model, dataset, n), analysis in shipped.items():
        assert analysis.manifest["command"].startswith(
            f"python -m core analyze --model {model} --dataset {dataset}"
        )
        assert analysis.n_entities <= n and analysis.manifest.get("sample_of", n) == n
        # the per-entity predictions every verdict's paired bootstrap reads
        assert analysis.targets is not None and analysis.mlp_pred is not None
        assert analysis.holdout_errors is not None
        # every model's analyses carry the cross-prompt transfer matrix (Gemma-3 too)
        if (model, dataset) in with_transfer and (model, dataset, n) != CHECK_SLICE:
            assert len(analysis.transfer) and len(set(analysis.transfer["train_prompt"])) > 1
            assert analysis.transfer_pred is not None


@pytest.mark.slow
def test_check_slice_analysis_reproduces_shipped_numbers(cache_root: Path) -> None:
    """Rerun the shipped check slice's analysis from its recorded command, on one BLAS
    thread: every table and array agrees within `TOLERANCE`."""
    shipped = _shipped()[CHECK_SLICE]
    rerun_recorded(shipped.manifest, cache_root, env=ONE_THREAD)
    assert shipped.path is not None
    rebuilt = AnalysisResults.load(analysis_dir(cache_root, shipped.path.name))
    problems = compare_analyses(rebuilt, shipped)
    assert problems == []
