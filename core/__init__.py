"""Spacetime Lens core library: where and when a language model thinks things are.

The packages follow the data flow, each importing only the ones before it:

    common/    cache paths, atomic writes and manifests, hashing, run configs (BuildConfig,
               AnalysisConfig, SteerConfig)
    data/      EntityDataset: the offline datasets, the paper's CSVs, a user's CSV, prompts
    extract/   models by name, tokenising, the residual stream per block -> ActivationStore
    probe/     ridge per layer (numpy and torch solvers), metrics
    results/   ProbeResults, the build (dataset -> activations -> probes), the catalog of
               results, the shipped demo builds, the paper's published numbers
    analysis/  controls, block hold-out, prompt transfer, MLP probe, neurons
    steer/     steering: pushes along a probe, scored on the answers; the demo runner
    viz/       plotly figures (maps, timelines, layer curves), map outlines served locally
    ui/        the dashboard's Streamlit-free logic: URL view state, live probing
    cli.py     ``python -m core``

Nothing here imports streamlit (ruff's banned-api rule keeps it so). For notebooks, the
names below are importable from ``core`` directly (docs/api.md shows a session, and a
test runs it)::

    import core
    results = core.build(core.BuildConfig("smollm2-135m", "world_capitals"))
    core.map_figure(results.predictions_at(results.best_layer()), scope="world").show()

A model the notebook already holds goes in through ``core.from_hf(model, tokenizer,
name=...)``; ``pip install .`` installs the library (``spacetime-lens`` is ``python -m
core``).

``import core`` stays light (no numpy, torch or pandas): each name is imported from its
module on first use. Type checkers and IDEs read the real names from the
``TYPE_CHECKING`` imports below, so ``core.RidgeProbe`` is typed, not ``Any``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names, for type checkers and IDEs (kept equal by a test)
    from core.analysis.run import run_analysis
    from core.common.config import AnalysisConfig, BuildConfig, ProbeSpec, SteerConfig
    from core.data.registry import dataset_table, load_dataset
    from core.data.schema import EntityDataset
    from core.extract.activations import last_token_activations
    from core.extract.hf_model import from_hf
    from core.extract.models import load_model
    from core.probe.ridge import RidgeProbe
    from core.results.build import build, summary_table
    from core.results.catalog import load_results
    from core.results.probe_results import ProbeResults
    from core.results.shipped import shipped_results
    from core.steer.evaluate import evaluate_steering
    from core.steer.run import steer_one
    from core.ui.live import predict_names
    from core.viz.figures import (
        layer_curves_figure,
        map_figure,
        model_comparison_figure,
        timeline_figure,
    )

# public name -> module that owns it; imported on first use so `import core` stays light
_API: dict[str, str] = {
    "BuildConfig": "core.common.config",
    "ProbeSpec": "core.common.config",
    "AnalysisConfig": "core.common.config",
    "SteerConfig": "core.common.config",
    "load_dataset": "core.data.registry",
    "dataset_table": "core.data.registry",
    "EntityDataset": "core.data.schema",
    "load_model": "core.extract.models",
    "from_hf": "core.extract.hf_model",
    "last_token_activations": "core.extract.activations",
    "RidgeProbe": "core.probe.ridge",
    "build": "core.results.build",
    "summary_table": "core.results.build",
    "ProbeResults": "core.results.probe_results",
    "load_results": "core.results.catalog",
    "shipped_results": "core.results.shipped",
    "run_analysis": "core.analysis.run",
    "evaluate_steering": "core.steer.evaluate",
    "steer_one": "core.steer.run",
    "map_figure": "core.viz.figures",
    "timeline_figure": "core.viz.figures",
    "layer_curves_figure": "core.viz.figures",
    "model_comparison_figure": "core.viz.figures",
    "predict_names": "core.ui.live",
}
__all__ = [
    "AnalysisConfig",
    "BuildConfig",
    "EntityDataset",
    "ProbeResults",
    "ProbeSpec",
    "RidgeProbe",
    "SteerConfig",
    "build",
    "dataset_table",
    "evaluate_steering",
    "from_hf",
    "last_token_activations",
    "layer_curves_figure",
    "load_dataset",
    "load_model",
    "load_results",
    "map_figure",
    "model_comparison_figure",
    "predict_names",
    "run_analysis",
    "shipped_results",
    "steer_one",
    "summary_table",
    "timeline_figure",
]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
