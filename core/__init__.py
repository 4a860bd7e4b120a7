"""Spacetime Lens core library: where and when a language model thinks things are.

The packages follow the data flow, each importing only the ones before it:

    common/    cache paths, atomic writes and manifests, hashing, run configs (BuildConfig)
    data/      EntityDataset: the offline datasets, the paper's CSVs, a user's CSV, prompts
    extract/   models by name, tokenising, the residual stream per block -> ActivationStore
    probe/     ridge per layer (numpy and torch solvers), metrics
    results/   ProbeResults, the build (dataset -> activations -> probes), the catalog of
               results, the shipped demo builds, the paper's published numbers
    analysis/  controls, block hold-out, prompt transfer, MLP probe, neurons
    viz/       plotly figures (maps, timelines, layer curves), map outlines served locally
    ui/        the dashboard's Streamlit-free logic: URL view state, live probing
    cli.py     ``python -m core``

Nothing here imports streamlit (ruff's banned-api rule keeps it so). For notebooks, the
names below are importable from ``core`` directly (docs/api.md shows a session)::

    import core
    results = core.build(core.BuildConfig("smollm2-135m", "world_capitals"))
    core.map_figure(results.predictions_at(results.best_layer()), scope="world").show()
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that owns it; imported on first use so `import core` stays light
_API: dict[str, str] = {
    "BuildConfig": "core.common.config",
    "ProbeSpec": "core.common.config",
    "load_dataset": "core.data.registry",
    "dataset_table": "core.data.registry",
    "EntityDataset": "core.data.schema",
    "load_model": "core.extract.models",
    "build": "core.results.build",
    "summary_table": "core.results.build",
    "ProbeResults": "core.results.probe_results",
    "shipped_results": "core.results.shipped",
    "map_figure": "core.viz.figures",
    "timeline_figure": "core.viz.figures",
    "layer_curves_figure": "core.viz.figures",
    "model_comparison_figure": "core.viz.figures",
    "predict_names": "core.ui.live",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
