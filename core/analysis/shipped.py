"""The shipped analyses: ``python -m core demo`` runs `DEMO_ANALYSES` after the builds."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.analysis.build import analyze
from core.analysis.run import AnalysisResults, analyze_command
from core.common.cache import artifact_dir
from core.common.config import BuildConfig
from core.results.shipped import SAMPLE_LIMITS


def run_demo_analysis(model: str, dataset: str, cache_root: Path) -> AnalysisResults:
    """Analyse one shipped build (activations rebuilt, used, then deleted)."""
    limit = SAMPLE_LIMITS.get(dataset)
    analysis, results = analyze(
        BuildConfig(model, dataset, limit=limit, cache_root=cache_root),
        command=analyze_command(model, dataset, limit=limit),
    )
    key = results.manifest.get("activation_key")
    if key:
        shutil.rmtree(artifact_dir(cache_root, "activations", str(key)), ignore_errors=True)
    return analysis
