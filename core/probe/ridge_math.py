"""Pieces the ridge solvers share (numpy, torch and the sharded route; none imports another).

The covariance (n > d) leave-one-out sweep is written once here, against the operations
numpy arrays and torch tensors both have (``@``, ``.T``, ``.reshape``, ``.clip``,
``.sum(axis=)``, broadcasting); the one call that differs by name, ``einsum``, is passed
in (``numpy.einsum`` or ``torch.einsum``). Callers own the row streaming, the
eigendecomposition and where the sums are taken; the math of every alpha is here.

With ``cov = Xcᵀ Xc = V diag(lam) Vᵀ`` and ``P = Xc V``, ridge with an unpenalised
intercept has hat-matrix diagonal ``h_ii = 1/n + sum_k P_ik² / (lam_k + alpha)`` and fitted
values ``P diag(1/(lam + alpha)) Vᵀ Xcᵀ z``; the exact leave-one-out residual is
``(z_i - zhat_i) / (1 - h_ii)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# Floor for 1 - h_ii: a row the model can interpolate exactly gets a huge (not NaN) error.
MIN_LEVERAGE_GAP = 1e-12


def chunks(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def gcv(mse: np.ndarray, dof: np.ndarray, n: int) -> np.ndarray:
    """Generalised cross-validation: mean squared residual / (1 - tr(H)/n)^2."""
    gap = np.maximum(1.0 - dof / n, MIN_LEVERAGE_GAP)
    return mse / gap**2


@dataclass(frozen=True)
class CovarianceSweep:
    """Ridge in the covariance's eigenbasis, for every alpha of a grid at once.

    ``vecs`` [d, d], ``inv`` = 1/(lam + alpha) [d, A], ``scaled`` = the weights in the
    eigenbasis [d, A, T] (z units), ``leverage`` = 1/n with an intercept (else 0),
    ``lam`` [d] (GCV only needs it). Arrays are numpy or torch, all of one kind.
    """

    vecs: Any
    inv: Any
    scaled: Any
    leverage: float
    method: str
    lam: Any = None

    @classmethod
    def solve(
        cls, lam: Any, vecs: Any, xtz: Any, alphas: Any, *, leverage: float, method: str
    ) -> CovarianceSweep:
        """From ``eigh(Xcᵀ Xc)`` (lam, vecs), ``Xcᵀ z`` [d, T] and the penalties [A]."""
        lam = lam.clip(min=0.0)
        inv = 1.0 / (lam[:, None] + alphas[None, :])  # [d, A]
        vz = vecs.T @ xtz  # [d, T]
        scaled = inv[:, :, None] * vz[:, None, :]  # [d, A, T]
        return cls(vecs=vecs, inv=inv, scaled=scaled, leverage=leverage, method=method, lam=lam)

    def sweep_matrix(self) -> Any:
        """What every block multiplies: the flat eigenbasis weights (LOO) or, for GCV,
        which needs residuals only, the weights in feature space. Compute it once."""
        d, n_alphas, n_targets = self.scaled.shape
        flat = self.scaled.reshape(d, n_alphas * n_targets)
        return flat if self.method == "loo" else self.vecs @ flat

    def block_errors(self, xc: Any, z: Any, matrix: Any, einsum: Callable[..., Any]) -> Any:
        """Summed squared LOO (or, for GCV, plain) residuals of centred rows ``xc`` [c, d]
        with z-scored targets ``z`` [c, T], for every alpha: [A]."""
        _, n_alphas, n_targets = self.scaled.shape
        if self.method == "loo":
            proj = xc @ self.vecs  # P rows [c, d]
            fitted = (proj @ matrix).reshape(-1, n_alphas, n_targets)
            gap = 1.0 - self.leverage - (proj * proj) @ self.inv  # 1 - h_ii, [c, A]
            gap = gap.clip(min=MIN_LEVERAGE_GAP)
            resid = (z[:, None, :] - fitted) / gap[:, :, None]
        else:
            resid = z[:, None, :] - (xc @ matrix).reshape(-1, n_alphas, n_targets)
        return einsum("cat,cat->a", resid, resid)

    def cv_errors(
        self, mse: np.ndarray, n: int, to_numpy: Callable[[Any], np.ndarray]
    ) -> np.ndarray:
        """The per-alpha score from the mean squared residual (numpy, [A])."""
        if self.method == "loo":
            return mse
        dof = self.leverage * n + (self.lam[:, None] * self.inv).sum(axis=0)  # tr(H), [A]
        return gcv(mse, to_numpy(dof), n)

    def weights_at(self, index: int) -> Any:
        """Ridge weights at alpha ``index`` in feature space, z units: [d, T]."""
        return self.vecs @ self.scaled[:, index, :]
