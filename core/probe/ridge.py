"""Ridge probes: one linear read-out per layer, penalty chosen by exact leave-one-out.

``RidgeProbe`` is a scikit-learn-compatible regressor. Every alpha of the grid is scored
from ONE symmetric eigendecomposition per fit:

* ``n > d`` (the usual case: many entities, a few hundred to a few thousand features):
  eigendecomposition of the centred covariance ``Xc^T Xc = V diag(lam) V^T`` (d x d).
  With ``P = Xc V`` (n x d, streamed in row chunks, never stored whole) the hat-matrix
  diagonal of ridge with an unpenalised intercept is
  ``h_ii(alpha) = 1/n + sum_k P_ik^2 / (lam_k + alpha)`` and the fitted values are
  ``P diag(1/(lam+alpha)) P^T z``; the exact leave-one-out residual is
  ``(z_i - zhat_i) / (1 - h_ii)``. Cost: ``n d^2`` (covariance) + ``2 n d^2`` (P) +
  one ``d x d`` eigh + ``2 n d (A + A T)`` for all ``A`` alphas and ``T`` targets.
* ``n <= d``: eigendecomposition of the n x n kernel ``Xc Xc^T = Q diag(lam) Q^T``;
  ``I - H_c = Q diag(alpha/(lam+alpha)) Q^T``.

scikit-learn's ``RidgeCV`` (efficient LOO) computes the same quantities but, for
``n > d``, forms ``X (V diag V^T)`` once per alpha (``2 n d^2`` per alpha), which is why
it is several times slower at d=576 and far slower at d=4096.

Targets are z-scored on the training rows inside ``fit`` so that one alpha, shared by
all targets, is chosen on comparable errors; ``coef_`` and ``intercept_`` are returned
in the original target units. Everything is computed in float64 whatever the input
dtype (float16/float32 inputs are converted chunk by chunk, so a memory-mapped
float16 layer is never copied whole). Only numpy/scipy are used.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import assert_all_finite, check_is_fitted, validate_data

from core.common.config import DEFAULT_ALPHA_GRID, ProbeSpec
from core.probe.ridge_math import MIN_LEVERAGE_GAP as _MIN_LEVERAGE_GAP
from core.probe.ridge_math import CovarianceSweep
from core.probe.ridge_math import chunks as _chunks
from core.probe.ridge_math import gcv as _gcv

log = logging.getLogger(__name__)

METHODS = ("loo", "gcv")
# "trace": the grid is in units of trace(Xc^T Xc) / d (the mean eigenvalue of the training
# rows' centred scatter), so one grid fits a layer whatever its activations' scale.
# "auto" (RidgeProbe's default): "trace" for the default grid, "none" for given alphas.
ALPHA_SCALES = ("none", "trace", "auto")

# Working-set budget (float64 elements) for one row chunk of X, P and the fitted values.
_CHUNK_ELEMENTS = 1 << 23  # 64 MiB of float64


def alpha_grid(
    log10_start: float = DEFAULT_ALPHA_GRID[0],
    log10_stop: float = DEFAULT_ALPHA_GRID[1],
    count: int = int(DEFAULT_ALPHA_GRID[2]),
) -> np.ndarray:
    """Log-spaced ridge penalties from 10**log10_start to 10**log10_stop (inclusive).

    The default is the builds' grid (``core.common.config.DEFAULT_ALPHA_GRID``), which is
    meant in units of trace(Xc^T Xc)/d (``alpha_scale="trace"``)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if not log10_stop >= log10_start:
        raise ValueError(f"log10_stop ({log10_stop}) must be >= log10_start ({log10_start})")
    return np.logspace(log10_start, log10_stop, int(count))


def _check_alphas(alphas: Any) -> np.ndarray:
    grid = alpha_grid() if alphas is None else np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError("alphas must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError("alphas must be finite and > 0")
    return grid


def _row_chunk(n_cols: int) -> int:
    return max(64, _CHUNK_ELEMENTS // max(1, n_cols))


# float16 bits of an infinity or a NaN: every exponent bit set.
_F16_EXPONENT = 0x7C00


def _assert_finite(X: np.ndarray, input_name: str) -> None:
    """scikit-learn's NaN / infinity check, made fast for float16 activations.

    scikit-learn first tries the sum of X in its own dtype; in float16 a large layer's
    sum overflows whatever the values, so it fell back to an elementwise check, 0.79 s
    for 40,000 x 4,096 here, paid by fit and again by predict in every layer. An
    exponent-bit test on the raw bits takes 0.05 s; on a hit, scikit-learn's check names
    the problem. X is 2-D (validated).
    """
    if X.dtype == np.float16:
        bits = X.view(np.uint16)
        step = _row_chunk(bits.shape[1])
        if not any(
            ((bits[rows] & _F16_EXPONENT) == _F16_EXPONENT).any()
            for rows in _chunks(len(bits), step)
        ):
            return
    assert_all_finite(X, input_name=input_name)


class RidgeProbe(RegressorMixin, BaseEstimator):
    """Ridge regression with alpha chosen by exact leave-one-out (or GCV) error.

    Parameters
    ----------
    alphas : 1-D array-like of positive floats, optional
        Penalty grid; default ``alpha_grid()``, the builds' grid (57 values, 1e-8 .. 1e6
        in units of trace(Xc^T Xc)/d), so ``RidgeProbe()`` fits what a build fits
        (``RidgeProbe.from_spec(ProbeSpec())``).
    method : "loo" or "gcv"
        Exact leave-one-out squared error (as scikit-learn's ``RidgeCV``) or generalised
        cross-validation ``mean(r^2) / (1 - tr(H)/n)^2``.
    fit_intercept : bool
        Fit an unpenalised intercept (X and z-scored targets centred on the training rows).
    standardize_targets : bool
        Divide each target by its training standard deviation before scoring alphas
        (so one alpha is chosen on comparable errors); coefficients are returned in
        the original units either way.
    alpha_scale : "auto", "none" or "trace"
        "none": `alphas` are penalties. "trace": they are multiples of trace(Xc^T Xc)/d on
        the training rows (``alpha_unit_``), so a grid suits layers of any scale. "auto"
        (default): "trace" when `alphas` is None (the default grid), "none" otherwise.
    device : None or str
        None (default): numpy/scipy. A torch device ("cuda", "cuda:1", "cpu" or "auto")
        runs the n > d solver in float64 torch there (``core.probe.ridge_torch``), the same
        numbers to float64 rounding; the n <= d kernel solver always uses numpy.

    Attributes
    ----------
    alpha_ : float                 chosen penalty (shared by all targets)
    alpha_unit_ : float            what the grid was multiplied by (1 for "none")
    alpha_index_ : int             its position in ``alphas_``
    alpha_at_edge_ : bool          True when it is the first or last grid value
    alphas_ : ndarray [A]          the grid used
    cv_errors_ : ndarray [A]       mean LOO (or GCV) squared error per alpha, in z-scored
                                   target units, averaged over rows and targets
    coef_ : ndarray [T, d]         coefficients in original target units
    intercept_ : ndarray [T]       so that ``predict(X) = X @ coef_.T + intercept_``
    n_features_in_ : int
    n_targets_ : int
    y_mean_, y_scale_ : ndarray [T]  target standardisation used inside fit
    solver_ : str                  "covariance" (n > d) or "kernel" (n <= d)
    """

    def __init__(
        self,
        alphas: Any = None,
        method: str = "loo",
        fit_intercept: bool = True,
        standardize_targets: bool = True,
        device: str | None = None,
        alpha_scale: str = "auto",
    ) -> None:
        self.alphas = alphas
        self.alpha_scale = alpha_scale
        self.method = method
        self.fit_intercept = fit_intercept
        self.standardize_targets = standardize_targets
        self.device = device

    @classmethod
    def from_spec(cls, spec: ProbeSpec, device: str | None = None) -> RidgeProbe:
        """The probe a build fits with `spec` (``RidgeProbe()`` is ``from_spec(ProbeSpec())``)."""
        return cls(
            alphas=alpha_grid(*spec.alpha_grid),
            method=spec.method,
            device=device,
            alpha_scale=spec.alpha_scale,
        )

    def _resolved_scale(self) -> str:
        if self.alpha_scale == "auto":
            return "trace" if self.alphas is None else "none"
        return self.alpha_scale

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> RidgeProbe:
        """Choose alpha over the grid from one eigendecomposition, then solve at it."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.alpha_scale not in ALPHA_SCALES:
            raise ValueError(f"alpha_scale must be one of {ALPHA_SCALES}, got {self.alpha_scale!r}")
        alphas = _check_alphas(self.alphas)
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32, np.float16],
            multi_output=True,
            y_numeric=True,
            ensure_all_finite=False,  # X below; y is always checked
        )
        _assert_finite(X, "X")
        y = np.asarray(y, dtype=np.float64)
        n, d = X.shape
        if n < 2:
            raise ValueError(f"need at least 2 training rows, got n_samples={n}")
        self._y_1d = y.ndim == 1
        y2 = y.reshape(n, -1)
        n_targets = y2.shape[1]

        y_mean = y2.mean(axis=0) if self.fit_intercept else np.zeros(n_targets)
        if self.standardize_targets:
            y_scale = y2.std(axis=0) if self.fit_intercept else np.sqrt((y2**2).mean(axis=0))
            y_scale = np.where(y_scale > np.finfo(np.float64).tiny, y_scale, 1.0)
        else:
            y_scale = np.ones(n_targets)
        z = (y2 - y_mean) / y_scale
        unit = 1.0
        if self._resolved_scale() == "trace":
            unit = self._mean_scatter(X, self.fit_intercept)
            alphas = alphas * unit

        if n > d and self.device is not None:
            from core.probe.ridge_torch import fit_covariance_torch

            cv_errors, weights_at, x_mean = fit_covariance_torch(
                X,
                z,
                alphas,
                fit_intercept=self.fit_intercept,
                method=self.method,
                device=self.device,
            )
            solver = "covariance"
        else:
            x_mean = self._column_mean(X) if self.fit_intercept else np.zeros(d)
            solver = "covariance" if n > d else "kernel"
            fit_solver = self._fit_covariance if n > d else self._fit_kernel
            cv_errors, weights_at = fit_solver(X, x_mean, z, alphas)

        best = int(np.nanargmin(cv_errors)) if np.any(np.isfinite(cv_errors)) else 0
        w = weights_at(best)  # [d, T], z units
        coef = (w * y_scale).T  # [T, d], original units
        self.alphas_ = alphas
        self.cv_errors_ = cv_errors
        self.alpha_index_ = best
        self.alpha_ = float(alphas[best])
        self.alpha_unit_ = unit
        self.alpha_at_edge_ = bool(best == 0 or best == len(alphas) - 1)
        self.coef_ = coef
        self.intercept_ = y_mean - coef @ x_mean
        self.n_targets_ = n_targets
        self.y_mean_ = y_mean
        self.y_scale_ = y_scale
        self.solver_ = solver
        if self.alpha_at_edge_ and len(alphas) > 1:
            log.info(
                "ridge alpha %.3g is at the edge of the grid [%.3g, %.3g]",
                self.alpha_,
                alphas[0],
                alphas[-1],
            )
        return self

    @staticmethod
    def _mean_scatter(X: np.ndarray, centre: bool) -> float:
        """trace(Xc^T Xc) / d in float64, by row chunks (X may be float16)."""
        n, d = X.shape
        mean = RidgeProbe._column_mean(X) if centre else np.zeros(d)
        total = 0.0
        step = _row_chunk(d)
        for start in range(0, n, step):
            block = np.asarray(X[start : start + step], dtype=np.float64) - mean
            total += float(np.einsum("ij,ij->", block, block))
        return max(total / d, np.finfo(np.float64).tiny)

    @staticmethod
    def _column_mean(X: np.ndarray) -> np.ndarray:
        n, d = X.shape
        total = np.zeros(d)
        for rows in _chunks(n, _row_chunk(d)):
            total += X[rows].sum(axis=0, dtype=np.float64)
        return total / n

    def _fit_covariance(
        self, X: np.ndarray, x_mean: np.ndarray, z: np.ndarray, alphas: np.ndarray
    ) -> tuple[np.ndarray, Any]:
        """n > d: eigendecomposition of the d x d centred covariance."""
        n, d = X.shape
        n_targets = z.shape[1]
        n_alphas = alphas.size
        chunk = min(_row_chunk(d), _row_chunk(n_alphas * (n_targets + 1)))
        rows_list = _chunks(n, chunk)

        def centred(rows: slice) -> np.ndarray:
            block = np.asarray(X[rows], dtype=np.float64)
            return block - x_mean if self.fit_intercept else block

        # Pass 1: covariance and X^T z (rows centred explicitly: no cancellation).
        cov = np.zeros((d, d))
        xtz = np.zeros((d, n_targets))
        for rows in rows_list:
            block = centred(rows)
            cov += block.T @ block
            xtz += block.T @ z[rows]
        lam, vecs = linalg.eigh(cov, overwrite_a=True, check_finite=False, driver="evd")
        sweep = CovarianceSweep.solve(
            lam,
            vecs,
            xtz,
            alphas,
            leverage=1.0 / n if self.fit_intercept else 0.0,
            method=self.method,
        )
        matrix = sweep.sweep_matrix()
        sq_err = np.zeros(n_alphas)
        for rows in rows_list:
            sq_err += sweep.block_errors(centred(rows), z[rows], matrix, np.einsum)
        cv_errors = sweep.cv_errors(sq_err / (n * n_targets), n, np.asarray)
        weights_at = sweep.weights_at
        return cv_errors, weights_at

    def _fit_kernel(
        self, X: np.ndarray, x_mean: np.ndarray, z: np.ndarray, alphas: np.ndarray
    ) -> tuple[np.ndarray, Any]:
        """n <= d: eigendecomposition of the kernel, restricted to the complement of 1.

        With an intercept, ``I - H = B W diag(alpha/(lam+alpha)) W^T B^T`` where the
        columns of ``B`` (a Householder reflector's last n-1 columns) span the
        complement of the constant vector and ``(B^T X)(B^T X)^T = W diag(lam) W^T``.
        Every term of ``1 - h_ii`` is then positive: no cancellation at small alpha.
        ``B^T X`` equals ``B^T Xc``, so centring comes for free.
        """
        n, _ = X.shape
        n_targets = z.shape[1]
        xr = np.asarray(X, dtype=np.float64)
        zr = z
        if self.fit_intercept:
            xr = _householder_drop_first(xr)  # [n-1, d] = B^T X
            zr = _householder_drop_first(z)  # [n-1, T]
        kernel = xr @ xr.T
        lam, w = linalg.eigh(kernel, overwrite_a=True, check_finite=False, driver="evd")
        lam = np.clip(lam, 0.0, None)
        wz = w.T @ zr  # [m, T]
        q = _householder_embed(w) if self.fit_intercept else w  # B W: [n, m]
        keep = alphas[None, :] / (lam[:, None] + alphas[None, :])  # alpha/(lam+alpha) [m, A]
        # residuals z - H z = Q diag(alpha/(lam+alpha)) Q^T z
        resid = (q @ (keep[:, :, None] * wz[:, None, :]).reshape(len(lam), -1)).reshape(
            n, alphas.size, n_targets
        )
        if self.method == "loo":
            gap = np.maximum((q * q) @ keep, _MIN_LEVERAGE_GAP)  # 1 - h_ii, [n, A]
            loo = resid / gap[:, :, None]
            cv_errors = np.einsum("nat,nat->a", loo, loo) / (n * n_targets)
        else:
            mse = np.einsum("nat,nat->a", resid, resid) / (n * n_targets)
            dof = n - keep.sum(axis=0)  # tr(H) = n - tr(I - H)
            cv_errors = _gcv(mse, dof, n)

        def weights_at(index: int) -> np.ndarray:
            dual = w @ (wz / (lam + alphas[index])[:, None])  # (K + alpha I)^-1 z
            return xr.T @ dual

        return cv_errors, weights_at

    # -------------------------------------------------------------- predict
    def predict(self, X: Any) -> np.ndarray:
        """X @ coef_.T + intercept_ (float64; 1-D when fit on a 1-D y)."""
        check_is_fitted(self, "coef_")
        X = validate_data(
            self,
            X,
            reset=False,
            dtype=[np.float64, np.float32, np.float16],
            ensure_all_finite=False,
        )
        _assert_finite(X, "X")
        n, d = X.shape
        if self.device is not None:
            from core.probe.ridge_torch import predict_torch

            out = predict_torch(X, self.coef_, self.intercept_, self.device)
            return out[:, 0] if self._y_1d else out
        out = np.empty((n, self.coef_.shape[0]))
        for rows in _chunks(n, _row_chunk(d)):
            out[rows] = np.asarray(X[rows], dtype=np.float64) @ self.coef_.T + self.intercept_
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _householder_u(n: int) -> tuple[np.ndarray, float]:
    """u with (I - c u u^T) mapping 1/sqrt(n) to e_1 (c = 2 / u^T u)."""
    u = np.full(n, 1.0 / np.sqrt(n))
    u[0] -= 1.0
    return u, 2.0 / float(u @ u)


def _householder_drop_first(a: np.ndarray) -> np.ndarray:
    """Rows 2..n of H a: the coordinates of a in an orthonormal basis of 1's complement."""
    u, c = _householder_u(a.shape[0])
    return (a - c * np.outer(u, u @ a))[1:]


def _householder_embed(b: np.ndarray) -> np.ndarray:
    """H [0; b]: back from complement coordinates (m = n-1 rows) to R^n."""
    full = np.vstack([np.zeros((1, b.shape[1])), b])
    u, c = _householder_u(full.shape[0])
    return full - c * np.outer(u, u @ full)


def loo_r2(probe: RidgeProbe) -> float:
    """Leave-one-out R² on the probe's own training rows at its chosen alpha.

    The solver's error is the mean squared LOO residual of z-scored targets (each of
    variance 1 on the training rows), so 1 minus it is the LOO R² averaged over targets.
    """
    return 1.0 - float(probe.cv_errors_[probe.alpha_index_])
