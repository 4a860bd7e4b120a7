"""Move an entity along a probe's direction: the change, and the forward hook that adds it.

A layer-L probe reads ``W x + b`` from the residual stream ``x`` after block L. The
least-norm change that makes it read ``target`` lies in W's row space:
``delta = W⁺ (target - W x - b)``. Added (times a strength) to the residual stream at the
entity's tokens after block L, the rest of the forward pass runs unchanged, so what the
later layers and the generated text do with it is the model's own doing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


def probe_delta(
    coef: np.ndarray, intercept: np.ndarray, x: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """The least-norm change [d] (or [n, d] for x [n, d]) moving the probe's reading of x
    to `target` ([T] or [n, T]); coef [T, d], intercept [T], in target units."""
    w = np.asarray(coef, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 1
    xs = x[None] if single else x
    want = np.broadcast_to(np.asarray(target, dtype=np.float64), (len(xs), w.shape[0]))
    residual = want - (xs @ w.T + np.asarray(intercept, dtype=np.float64))
    # lstsq gives the minimum-norm solution of W delta = residual, i.e. the row-space one
    delta = np.linalg.lstsq(w, residual.T, rcond=None)[0].T
    return delta[0] if single else delta


def random_like(delta: np.ndarray, seed: int = 0) -> np.ndarray:
    """Seeded random directions with the same norm as each row of `delta` (the control)."""
    delta = np.asarray(delta, dtype=np.float64)
    rows = delta[None] if delta.ndim == 1 else delta
    noise = np.random.default_rng(seed).standard_normal(rows.shape)
    noise *= np.linalg.norm(rows, axis=1, keepdims=True) / np.linalg.norm(
        noise, axis=1, keepdims=True
    )
    return noise[0] if delta.ndim == 1 else noise


@contextlib.contextmanager
def add_at_positions(block: Any, deltas: Any, mask: Any) -> Iterator[None]:
    """While open, `block`'s output gains ``deltas[b]`` at every position where
    ``mask[b, s]`` is true (deltas [B, d], mask [B, S] torch tensors).

    Only a pass over the whole prompt (sequence length S) is changed: during generation
    later steps see the change through the cached keys and values, as they would any
    other residual. Only the registering thread's passes are touched (the model is shared
    by the dashboard's sessions).
    """
    owner = threading.get_ident()

    def hook(_module: Any, _args: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        if threading.get_ident() != owner or hidden.shape[1] != mask.shape[1]:
            return None
        change = (
            mask.to(hidden.device, hidden.dtype)[:, :, None]
            * deltas.to(hidden.device, hidden.dtype)[:, None, :]
        )
        hidden = hidden + change
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = block.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def entity_mask(lengths: Sequence[int], spans: Sequence[tuple[int, int]], width: int, left: bool):
    """[B, width] bool torch mask of each row's entity tokens (`spans`: [start, stop) in
    the unpadded ids), for rows padded to `width` on the left or the right."""
    import torch

    mask = torch.zeros((len(lengths), width), dtype=torch.bool)
    for row, (length, (start, stop)) in enumerate(zip(lengths, spans, strict=True)):
        shift = width - length if left else 0
        mask[row, shift + start : shift + stop] = True
    return mask
