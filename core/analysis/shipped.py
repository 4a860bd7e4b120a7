"""The shipped analyses: ``python -m core demo`` runs `DEMO_ANALYSES` after the builds."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.analysis.build import analyze
from core.analysis.run import AnalysisResults, analyze_command
from core.common.cache import artifact_dir
from core.common.config import AnalysisConfig, BuildConfig
from core.data.registry import load_dataset
from core.results.shipped import (
    ANALYSIS_MLP_DEPTHS,
    ANALYSIS_NEURONS,
    ANALYSIS_ROWS,
    BUILD_DTYPES,
    CHECK_SLICE,
    SMALL_ANALYSIS,
    DemoAnalysis,
)


def _folders(root: Path, kind: str) -> set[str]:
    folder = root / kind
    return {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()


def run_demo_analysis(item: DemoAnalysis, cache_root: Path) -> AnalysisResults:
    """Analyse one shipped build on its first `ANALYSIS_ROWS` entities.

    What the analysis built on the way (activations, the other prompts' probes) is
    deleted afterwards: only the analysis and the shipped build's results ship.
    """
    root = Path(cache_root)
    limit = item.limit
    data = load_dataset(item.dataset, cache_root=root).head(limit)
    rows = min(len(data.frame), ANALYSIS_ROWS)
    small = rows <= SMALL_ANALYSIS
    options = AnalysisConfig(  # "all": every prompt of the dataset, as analyze resolves it
        transfer_prompts=("all",) if item.transfer else (),
        rows=rows if rows < len(data.frame) else None,  # None: every row, as rows would
        mlp_depths=None if small else ANALYSIS_MLP_DEPTHS,
        k_neurons=10 if small else ANALYSIS_NEURONS,
    )
    dtype = BUILD_DTYPES.get(item.model, "auto")  # the shipped build's, so it is reused
    command = analyze_command(item.model, item.dataset, limit=limit, options=options, dtype=dtype)
    before = {kind: _folders(root, kind) for kind in ("activations", "results")}
    analysis, results = analyze(
        BuildConfig(item.model, item.dataset, limit=limit, cache_root=root, dtype=dtype),
        options,
        command=command,
    )
    keep = {str(results.manifest["key"])}
    key = results.manifest.get("activation_key")
    if key:
        shutil.rmtree(artifact_dir(root, "activations", str(key)), ignore_errors=True)
    for kind, names in before.items():
        for name in _folders(root, kind) - names - keep:
            shutil.rmtree(root / kind / name, ignore_errors=True)
    return analysis


def run_check_analysis(cache_root: Path) -> AnalysisResults:
    """The analysis of the 400-entity check slice, which a test reruns bit for bit (the
    MLP probe at three depths and three neurons per layer keep that rerun short)."""
    model, dataset, limit = CHECK_SLICE
    options = AnalysisConfig(mlp_depths=ANALYSIS_MLP_DEPTHS, k_neurons=ANALYSIS_NEURONS)
    analysis, results = analyze(
        BuildConfig(model, dataset, limit=limit, cache_root=Path(cache_root)),
        options,
        command=analyze_command(model, dataset, limit=limit, options=options),
    )
    key = results.manifest.get("activation_key")
    if key:
        shutil.rmtree(artifact_dir(Path(cache_root), "activations", str(key)), ignore_errors=True)
    return analysis
