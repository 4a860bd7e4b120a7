"""`core.from_hf`: a transformers model and tokenizer the user holds, as a LoadedModel."""

from __future__ import annotations

import numpy as np
import pytest

import core
from core.common.config import BuildConfig
from core.extract.hf_model import weights_hash
from core.results.build import build


def test_from_hf_reads_the_model_and_hashes_its_weights(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    from tests.support.tiny import tiny_model

    mine = core.from_hf(tiny.model, tiny.tokenizer, name="mine")
    assert (mine.n_layers, mine.d_model, mine.device, mine.dtype) == (3, 32, "cpu", "float32")
    assert not mine.random_init and mine.weights_hash.startswith("hf:")
    # the same weights hash the same; other weights (another seed) do not
    assert weights_hash(tiny.model) == weights_hash(tiny_model().model)
    assert weights_hash(tiny.model) != weights_hash(tiny_model(seed=1).model)
    control = core.from_hf(tiny_model(seed=1).model, tiny.tokenizer, "mine", random_init=True)
    results = build(BuildConfig("mine", places, cache_root=cache_root), loaded=mine)
    again = build(
        BuildConfig("mine", places, random_init=True, cache_root=cache_root), loaded=control
    )
    assert results.path != again.path and again.manifest["spec"]["random_init"] is True
    with pytest.raises(ValueError, match="config asks for the trained weights"):
        build(BuildConfig("mine", places, cache_root=cache_root), loaded=control)
    # results[layer]: that layer's probe, as predict reads it, without a storage index
    layer = results.best_layer()
    acts = np.random.default_rng(0).normal(size=(5, 32)).astype(np.float32)
    stacked = np.zeros((len(results.layers), 5, 32), dtype=np.float32)
    stacked[results.layer_position(layer)] = acts
    expected = results.predict(stacked)[results.layer_position(layer)]
    np.testing.assert_allclose(results[layer].predict(acts), expected, rtol=1e-5, atol=1e-5)
    assert results.probe(layer).alpha_ == results[layer].alpha_
    with pytest.raises(KeyError, match="not in results"):
        results[99]
    # one predict_names signature: the function takes the method's arguments, in order
    by_method = results.predict_names(mine, ["Paris"], "")
    by_function = core.predict_names(mine, results, ["Paris"], "")
    np.testing.assert_array_equal(by_method["Paris"], by_function["Paris"])
