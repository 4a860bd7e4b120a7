"""The shipped analyses: ``python -m core demo`` runs `DEMO_ANALYSES` after the builds."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.analysis.build import analyze
from core.analysis.run import AnalysisResults, analyze_command
from core.common.cache import artifact_dir
from core.common.config import BuildConfig
from core.results.shipped import SAMPLE_LIMITS


def run_demo_analysis(
    model: str, dataset: str, cache_root: Path, mlp: bool = True
) -> AnalysisResults:
    """Analyse one shipped build (activations rebuilt, used, then deleted)."""
    limit = SAMPLE_LIMITS.get(dataset)
    command = analyze_command(model, dataset, limit=limit) + ("" if mlp else " --no-mlp")
    analysis, results = analyze(
        BuildConfig(model, dataset, limit=limit, cache_root=cache_root),
        mlp=mlp,
        command=command,
    )
    key = results.manifest.get("activation_key")
    if key:
        shutil.rmtree(artifact_dir(cache_root, "activations", str(key)), ignore_errors=True)
    return analysis
