"""MLP hidden activations: the down projection's input, at the last real token, either padding."""

from __future__ import annotations

import numpy as np
import pytest

from core.extract.activations import tokenize
from core.extract.mlp_hidden import (
    MlpHiddenSource,
    down_projection,
    forward_mlp_hidden,
    last_token_mlp_hidden,
    mlp_hidden_size,
)
from core.extract.models import ModelError

TEXTS = ["Paris", "New York City", "Kyoto, Japan", "A", "Rio de Janeiro, Brazil", "Oslo"]


def manual_mlp_hidden(loaded, text: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """act_fn(gate_proj(x)) * up_proj(x) of each block's post-attention-normed input, at
    the last token of one unpadded text, from the model's own forward pass."""
    import torch

    normed: dict[int, torch.Tensor] = {}
    handles = [
        block.post_attention_layernorm.register_forward_hook(
            lambda _m, _i, out, layer=layer: normed.__setitem__(layer, out[0, -1])
        )
        for layer, block in enumerate(loaded.blocks)
    ]
    try:
        with torch.no_grad():
            loaded.model(torch.tensor([tokenize(loaded, [text])[0]]))
            rows = []
            for layer, block in enumerate(loaded.blocks):
                x = normed[layer]
                rows.append(block.mlp.act_fn(block.mlp.gate_proj(x)) * block.mlp.up_proj(x))
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(rows).numpy()


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pre_hook_equals_manual_computation(tiny, padding_side: str) -> None:  # type: ignore[no-untyped-def]
    expected = np.stack([manual_mlp_hidden(tiny, t) for t in TEXTS], axis=1)
    d_mlp = tiny.model.config.intermediate_size
    assert expected.shape == (tiny.n_layers, len(TEXTS), d_mlp)
    layers = list(range(tiny.n_layers))
    # one padded batch of texts of different lengths, and several length-sorted batches
    batch = forward_mlp_hidden(tiny, tokenize(tiny, TEXTS), layers, padding_side)
    batched = last_token_mlp_hidden(
        tiny, TEXTS, layers, max_batch_size=4, padding_side=padding_side
    )
    np.testing.assert_allclose(batch, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batched, expected, rtol=1e-5, atol=1e-5)
    assert mlp_hidden_size(tiny) == d_mlp


def test_layer_subset_order_and_early_stop(tiny) -> None:  # type: ignore[no-untyped-def]
    full = last_token_mlp_hidden(tiny, TEXTS, [0, 1, 2])
    calls: list[int] = []
    handle = tiny.blocks[2].register_forward_hook(lambda *_: calls.append(2))
    try:
        subset = last_token_mlp_hidden(tiny, TEXTS, [1, 0])
    finally:
        handle.remove()
    np.testing.assert_allclose(subset, full[[1, 0]], rtol=1e-6, atol=1e-6)
    assert calls == []  # the forward pass stopped inside block 1
    with pytest.raises(ValueError, match="out of range"):
        last_token_mlp_hidden(tiny, TEXTS, [3])


def test_missing_down_projection_names_the_block_type() -> None:
    import torch

    class OddBlock(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ffn = torch.nn.Linear(4, 4)

    with pytest.raises(ModelError, match="OddBlock"):
        down_projection(OddBlock())


def test_source_computes_chunks_in_order_once(tiny, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import core.extract.mlp_hidden as mod

    full = last_token_mlp_hidden(tiny, TEXTS, [0, 1, 2])
    passes: list[list[int]] = []
    real = mod.last_token_mlp_hidden

    def counting(loaded, texts, layers, **kw):  # type: ignore[no-untyped-def]
        passes.append(list(layers))
        return real(loaded, texts, layers, **kw)

    monkeypatch.setattr(mod, "last_token_mlp_hidden", counting)
    per_layer = len(TEXTS) * mlp_hidden_size(tiny) * 4
    source = MlpHiddenSource(tiny, TEXTS, [0, 1, 2], budget_bytes=2 * per_layer)
    for layer in (0, 1, 2):
        np.testing.assert_allclose(source(layer), full[layer], rtol=1e-6, atol=1e-6)
    assert passes == [[0, 1], [2]]
