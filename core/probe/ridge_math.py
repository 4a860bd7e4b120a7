"""Pieces the numpy and torch ridge solvers share (neither imports the other)."""

from __future__ import annotations

import numpy as np

# Floor for 1 - h_ii: a row the model can interpolate exactly gets a huge (not NaN) error.
MIN_LEVERAGE_GAP = 1e-12


def chunks(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def gcv(mse: np.ndarray, dof: np.ndarray, n: int) -> np.ndarray:
    """Generalised cross-validation: mean squared residual / (1 - tr(H)/n)^2."""
    gap = np.maximum(1.0 - dof / n, MIN_LEVERAGE_GAP)
    return mse / gap**2
