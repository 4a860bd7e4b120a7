"""Taking the probes away: the exported directions reproduce the shipped predictions."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
from safetensors.numpy import load

from core.common.config import BuildConfig
from core.extract.activations import last_token_activations
from core.results.build import build
from core.results.export import (
    predictions_csv,
    predictions_parquet,
    predictions_table,
    probe_directions,
)


def test_exported_probes_reproduce_the_predictions(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    results = build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    blob = probe_directions(results)
    tensors = load(blob)
    assert tensors["coef"].shape == (3, 2, tiny.d_model) and tensors["layers"].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(tensors["coef"], results.coef)
    acts = last_token_activations(tiny, places.texts(), max_tokens=None)  # [layers, n, d]
    applied = np.einsum("lnd,ltd->lnt", acts, tensors["coef"]) + tensors["intercept"][:, None]
    spread = places.targets().std(axis=0)
    assert (np.abs(applied - results.predictions) <= 0.01 * spread).all()

    # the format's header: 8-byte little-endian length, then JSON with __metadata__
    size = int.from_bytes(blob[:8], "little")
    meta = json.loads(blob[8 : 8 + size])["__metadata__"]
    assert json.loads(meta["target_names"]) == ["lat", "lon"]
    assert meta["command"].startswith("python -m core build --model tiny-llama")
    assert int(meta["best_layer"]) == results.best_layer()


def test_prediction_tables_match_the_results(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    results = build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    every = pd.read_parquet(io.BytesIO(predictions_parquet(results)))
    assert len(every) == 3 * len(places) and set(every["layer"]) == {0, 1, 2}
    one = pd.read_csv(io.BytesIO(predictions_csv(results, 1)))
    expected = results.predictions_at(1)
    np.testing.assert_allclose(one["pred_lat"], expected["pred_lat"], rtol=1e-6)
    assert list(one["name"]) == list(expected["name"])
    assert predictions_table(results, 2)["layer"].eq(2).all()
