"""Normalised depth: where a layer sits in its model, so models of any size line up.

Layer ``l`` (0-based) of a model with ``n`` decoder blocks sits at depth
``d = (l + 1) / n``, so the last layer of every model is at 1 (the Layers page's model
comparison, the Compare page, the findings and the steering layers all use it).
:func:`layer_at_depth` maps a depth back to the probed layer whose depth is nearest,
ties going to the shallower layer. With every layer probed that is ``round(d * n) - 1``
(halves rounded down), clipped to ``[0, n - 1]``: at ``d = 0.5`` an 18-layer model gives
layer 8 and a 30-layer model layer 14; at ``d = 0.25`` a 30-layer model gives layer 6.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import overload

import numpy as np


@overload
def depth_of(layer: int | np.integer, n_layers: int) -> float: ...


@overload
def depth_of(layer: np.ndarray, n_layers: int) -> np.ndarray: ...


def depth_of(layer: int | np.integer | np.ndarray, n_layers: int) -> float | np.ndarray:
    """Normalised depth ``(layer + 1) / n_layers`` of a 0-based layer (or an array of them)."""
    if n_layers <= 0:
        raise ValueError(f"a model has at least one layer, not {n_layers}")
    if isinstance(layer, np.ndarray):
        return (layer.astype(float) + 1.0) / float(n_layers)
    return (int(layer) + 1) / float(n_layers)


def layer_at_depth(layers: Iterable[int] | None, n_layers: int, depth: float) -> int:
    """The layer of `layers` (the probed ones; None: all ``n_layers``) nearest `depth`.

    `depth` is clipped to [0, 1] (NaN reads as 1); equal distances go to the shallower
    layer.
    """
    if n_layers <= 0:
        raise ValueError(f"a model has at least one layer, not {n_layers}")
    candidates = sorted({int(v) for v in layers} if layers is not None else range(n_layers))
    if not candidates:
        raise ValueError("no layers to choose from")
    target = min(max(float(depth), 0.0), 1.0) if math.isfinite(depth) else 1.0
    # rounded so that float noise cannot break a tie the arithmetic says is exact
    return min(candidates, key=lambda v: (round(abs(depth_of(v, n_layers) - target), 9), v))
