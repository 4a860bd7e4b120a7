"""Take the probes away: per-layer directions as safetensors, predictions as tables.

The paper never released its probes; these files let a user apply, compare or steer
with them elsewhere. Each carries the command that rebuilds it.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from core.results.probe_results import ProbeResults


def rebuild_command(results: ProbeResults) -> str:
    """The recorded ``python -m core build`` line that made these results."""
    return str(results.manifest.get("command", "")) or "(not recorded)"


def probe_directions(results: ProbeResults) -> bytes:
    """safetensors with ``coef`` [layers, targets, d_model] and ``intercept`` [layers,
    targets] (float32, target units: prediction = activation @ coef[l].T + intercept[l]),
    ``layers`` and ``alpha``; what they were fitted on is in the metadata."""
    from safetensors.numpy import save

    meta = results.meta
    metadata = {
        "model": meta.model,
        "dataset": meta.dataset,
        "prompt": meta.prompt,
        "random_init": str(meta.random_init),
        "start_token": meta.start_token or "",
        "target_names": json.dumps(list(results.target_names)),
        # what coef reads: the targets, or x, y, z on the unit sphere for a globe probe
        "coef_targets": json.dumps(list(results.probe_axes)),
        "activation": "residual stream after decoder block `layer`, last token",
        "best_layer": str(results.best_layer()),
        "command": rebuild_command(results),
    }
    tensors: dict[str, np.ndarray] = {
        "coef": np.ascontiguousarray(results.coef, dtype=np.float32),
        "intercept": np.ascontiguousarray(results.intercept, dtype=np.float32),
        "layers": np.asarray(results.layers, dtype=np.int64),
        "alpha": np.asarray(results.alphas, dtype=np.float64),
    }
    return bytes(save(tensors, metadata=metadata))


def predictions_table(results: ProbeResults, layer: int | None = None) -> pd.DataFrame:
    """One row per (entity, layer): name, text, split, true and predicted targets;
    every layer when `layer` is None."""
    layers = [int(layer)] if layer is not None else [int(v) for v in results.layers]
    keep = ["name", "text", "is_test", *results.target_names]
    base = results.entities[[c for c in keep if c in results.entities]]
    parts = []
    for value in layers:
        preds = results.predictions[results.layer_position(value)].astype(np.float64)
        part = base.assign(layer=value)
        for j, target in enumerate(results.target_names):
            part[f"pred_{target}"] = preds[:, j]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def predictions_parquet(results: ProbeResults) -> bytes:
    """:func:`predictions_table` at every layer, as parquet bytes."""
    buffer = io.BytesIO()
    predictions_table(results).to_parquet(buffer, index=False)
    return buffer.getvalue()


def predictions_csv(results: ProbeResults, layer: int) -> bytes:
    """:func:`predictions_table` at one layer, as UTF-8 CSV bytes."""
    return predictions_table(results, layer).to_csv(index=False).encode()
