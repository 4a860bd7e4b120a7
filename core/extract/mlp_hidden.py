"""MLP hidden activations (the paper's neurons) at each text's last real token.

A decoder block's MLP neurons are the input of its down projection: for Llama, SmolLM2
and Gemma-3 ``act_fn(gate_proj(x)) * up_proj(x)`` of the block's post-attention-normed
residual ``x``. They are read with a forward *pre*-hook on the down projection, so
nothing is recomputed. Tokenisation, padding and last-token indexing are those of
:mod:`core.extract.activations` (the same texts give the same tokens as the activation
cache), and the forward pass stops after the deepest layer asked for.

Unlike the residual stream these coordinates are a privileged basis: an elementwise
nonlinearity acts on each one separately, which is what makes a single "neuron" mean
something.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.extract.activations import (
    capture_last_token,
    default_batching,
    plan_batches,
    tokenize,
)
from core.extract.models import LoadedModel, ModelError

log = logging.getLogger(__name__)

# Where the down projection sits inside a decoder block, by architecture family:
# Llama / Mistral / Qwen / Gemma, GPT-2 (Conv1D), GPT-NeoX, Phi / OPT-style, Mixtral-style.
DOWN_PROJ_PATHS = (
    "mlp.down_proj",
    "mlp.c_proj",
    "mlp.dense_4h_to_h",
    "mlp.fc2",
    "feed_forward.w2",
)

# Memory for the MLP activations that one forward pass collects (all layers of a chunk).
DEFAULT_BUDGET_BYTES = 1 << 30

Progress = Callable[[str, int, int], None]


def down_projection(block: Any) -> Any:
    """The module whose input is the block's MLP hidden activation (its down projection).

    Raises ModelError naming the block type when none of DOWN_PROJ_PATHS exists.
    """
    for path in DOWN_PROJ_PATHS:
        obj = block
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if hasattr(obj, "register_forward_pre_hook"):
            return obj
    raise ModelError(
        f"cannot find the MLP down projection of {type(block).__name__} "
        f"(looked for block.{', block.'.join(DOWN_PROJ_PATHS)}); MLP neurons are not "
        "available for this architecture"
    )


def mlp_hidden_size(loaded: LoadedModel, layer: int = 0) -> int:
    """Number of MLP neurons of one block (the down projection's input width)."""
    proj = down_projection(loaded.blocks[layer])
    for attr in ("in_features", "nx"):  # torch Linear, GPT-2 Conv1D
        value = getattr(proj, attr, None)
        if isinstance(value, int):
            return value
    # An unknown module: measure it on one short text.
    return int(forward_mlp_hidden(loaded, tokenize(loaded, ["a"]), [layer]).shape[-1])


def forward_mlp_hidden_tensor(
    loaded: LoadedModel,
    token_ids: list[list[int]],
    layers: Sequence[int],
    padding_side: str = "right",
) -> Any:
    """MLP hidden activations [n_layers_kept, batch, d_mlp] at each text's last real token,
    as a torch tensor on the model's device, in its dtype (layers in the order given)."""
    import torch

    layers = list(layers)
    if not layers:
        raise ValueError("no layers asked for")
    bad = [layer for layer in layers if not 0 <= layer < loaded.n_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range for {loaded.name} ({loaded.n_layers} blocks)")
    blocks = loaded.blocks
    modules = {layer: down_projection(blocks[layer]) for layer in sorted(set(layers))}
    captured = capture_last_token(loaded, token_ids, modules, padding_side, inputs=True)
    device = next(loaded.model.parameters()).device
    missing = [layer for layer in layers if layer not in captured]
    if missing:
        raise ModelError(
            f"the down projection of {type(blocks[missing[0]]).__name__} (layers {missing}) "
            "was never called in the forward pass"
        )
    return torch.stack([captured[layer].to(device) for layer in layers])


def forward_mlp_hidden(
    loaded: LoadedModel,
    token_ids: list[list[int]],
    layers: Sequence[int],
    padding_side: str = "right",
) -> np.ndarray:
    """The same as a float32 numpy array [n_layers_kept, batch, d_mlp]."""
    stacked = forward_mlp_hidden_tensor(loaded, token_ids, layers, padding_side)
    return np.asarray(stacked.float().cpu().numpy())


def last_token_mlp_hidden(
    loaded: LoadedModel,
    texts: Sequence[str],
    layers: Sequence[int],
    max_tokens: int | None = None,
    max_tokens_per_batch: int | None = None,
    max_batch_size: int | None = None,
    padding_side: str = "right",
    progress: Progress | None = None,
) -> np.ndarray:
    """MLP hidden activations [n_layers, n_texts, d_mlp] float32 at each text's last token.

    Texts are tokenised as the activation cache tokenises them (``max_tokens`` None keeps
    every token) and batched by length; batching defaults to the model's device.
    """
    layers = list(layers)
    token_ids = tokenize(loaded, texts, max_tokens)
    budget, size = default_batching(loaded)
    batches = plan_batches(
        [len(t) for t in token_ids], max_tokens_per_batch or budget, max_batch_size or size
    )
    out: np.ndarray | None = None
    for done, batch in enumerate(batches, start=1):
        acts = forward_mlp_hidden(loaded, [token_ids[i] for i in batch.rows], layers, padding_side)
        if not np.isfinite(acts).all():
            raise FloatingPointError(
                f"non-finite MLP activations from {loaded.name} in batch {batch.index}"
            )
        if out is None:
            out = np.zeros((len(layers), len(token_ids), acts.shape[-1]), dtype=np.float32)
        out[:, list(batch.rows)] = acts
        if progress:
            progress("mlp neurons", done, len(batches))
    assert out is not None  # tokenize refuses an empty text; texts is not empty here
    return out


class MlpHiddenSource:
    """``source(layer) -> [n_texts, d_mlp]`` MLP hidden activations, computed on demand.

    Layers are computed in chunks (the asked layer and the next ones of `layers`) as
    large as `budget_bytes` allows, one forward pass per chunk, and only the current
    chunk is kept: asking for the layers in order (as the analysis does) runs each pass
    once, and memory stays within the budget however many layers there are.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        texts: Sequence[str],
        layers: Sequence[int],
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        progress: Progress | None = None,
    ) -> None:
        if not texts:
            raise ValueError("no texts")
        self.loaded = loaded
        self.texts = list(texts)
        self.layers = [int(v) for v in layers]
        self.progress = progress
        per_layer = len(self.texts) * mlp_hidden_size(loaded, self.layers[0]) * 4
        self.chunk = max(1, int(budget_bytes) // max(1, per_layer))
        self._cached: dict[int, np.ndarray] = {}

    def __call__(self, layer: int) -> np.ndarray:
        layer = int(layer)
        if layer not in self._cached:
            start = self.layers.index(layer) if layer in self.layers else None
            chunk = [layer] if start is None else self.layers[start : start + self.chunk]
            log.info("MLP neurons of layers %s (%d texts)", chunk, len(self.texts))
            acts = last_token_mlp_hidden(self.loaded, self.texts, chunk, progress=self.progress)
            self._cached = {v: acts[i] for i, v in enumerate(chunk)}
        return self._cached[layer]
