"""Nonlinear probe: one hidden layer (scikit-learn MLPRegressor), seeded, early stopping.

Its weight decay (sklearn's ``alpha``, an L2 penalty) is chosen on training rows only,
by a seeded K-fold cross-validation over a small grid (on at most ``CV_ROWS`` of them);
the probe is then refitted on every training row at the chosen value. It reads the same
features as the ridge probe (the raw activations, see `_features`) and z-scored targets.

Cost: one fit of 256 hidden units on 6,000 x 576 rows takes 10-90 s on two CPU cores,
so the grid search (15 fits) is meant to run once per analysis, at a reference layer,
and its choice reused at every layer (see ``core.analysis.run``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

# Weight decays tried (log-spaced 1e-4 .. 1e1); the grid is small because every value
# costs `folds` fits per layer.
WEIGHT_DECAYS = tuple(float(v) for v in np.logspace(-4, 1, 5))
FOLDS = 3
CV_ROWS = 3000  # the inner CV runs on a seeded subsample of this many training rows at most


@dataclass(frozen=True)
class MlpFit:
    """An MLP probe fitted on the training rows."""

    predictions: np.ndarray  # [n, T] for every entity, in target units
    alpha: float  # the weight decay chosen by the inner cross-validation
    alphas: tuple[float, ...]  # the grid
    cv_mse: np.ndarray  # [len(alphas)] mean held-out-fold MSE in z units (train rows only)


def _features(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    # One global shift and scale (training rows' mean and RMS), not per column: the ridge
    # sees the raw activations, and a scalar is absorbed by its alpha and the shift by its
    # intercept, so both probes see the same geometry; the MLP's initialisation and Adam
    # just need inputs of order one.
    centre = x[train].mean(axis=0)
    scale = float(np.sqrt(np.mean((x[train] - centre) ** 2)))
    return (x - centre) / (scale if scale > 0 else 1.0)


def _regressor(hidden: int, alpha: float, seed: int, max_iter: int):  # type: ignore[no-untyped-def]
    from sklearn.neural_network import MLPRegressor

    return MLPRegressor(
        hidden_layer_sizes=(hidden,),
        alpha=alpha,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        tol=1e-5,
        max_iter=max_iter,
        random_state=seed,
    )


def _fit_predict(
    x_fit: np.ndarray,
    z_fit: np.ndarray,
    x_apply: np.ndarray,
    hidden: int,
    alpha: float,
    seed: int,
    max_iter: int,
) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning

    model = _regressor(hidden, alpha, seed, max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_fit, z_fit[:, 0] if z_fit.shape[1] == 1 else z_fit)
    return np.asarray(model.predict(x_apply)).reshape(len(x_apply), -1)


def choose_weight_decay(
    x: np.ndarray,
    z: np.ndarray,
    alphas: tuple[float, ...] = WEIGHT_DECAYS,
    folds: int = FOLDS,
    hidden: int = 256,
    seed: int = 0,
    max_iter: int = 300,
    cv_rows: int | None = CV_ROWS,
) -> tuple[float, np.ndarray]:
    """(chosen weight decay, mean held-out MSE per alpha) by seeded K-fold CV on `x`, `z`.

    Call it with training rows only (z: [n, T] z-scored targets). Above `cv_rows` rows a
    seeded subsample is used. Ties go to the larger weight decay.
    """
    from sklearn.model_selection import KFold

    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    if cv_rows is not None and len(x) > cv_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), cv_rows, replace=False))
        x, z = x[keep], z[keep]
    splits = list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(x))
    mse = np.zeros(len(alphas))
    for a, alpha in enumerate(alphas):
        for fit_rows, held_rows in splits:
            pred = _fit_predict(
                x[fit_rows], z[fit_rows], x[held_rows], hidden, alpha, seed, max_iter
            )
            mse[a] += float(np.mean((pred - z[held_rows]) ** 2)) / len(splits)
    best = max(i for i in range(len(alphas)) if mse[i] <= mse.min())
    return float(alphas[best]), mse


def fit_mlp_probe(
    x: np.ndarray,
    y: np.ndarray,
    is_test: np.ndarray,
    hidden: int = 256,
    alphas: tuple[float, ...] = WEIGHT_DECAYS,
    folds: int = FOLDS,
    seed: int = 0,
    max_iter: int = 300,
    cv_rows: int | None = CV_ROWS,
) -> MlpFit:
    """An MLP probe whose weight decay is chosen on the training rows (test rows unused).

    With one value in `alphas` that value is used as it is (no cross-validation).
    """
    x = np.asarray(x, dtype=np.float64)
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    is_test = np.asarray(is_test, dtype=bool)
    train = ~is_test
    feats = _features(x, train)
    mu, sd = y2[train].mean(axis=0), y2[train].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z_train = (y2[train] - mu) / sd
    if len(alphas) > 1:
        alpha, cv_mse = choose_weight_decay(
            feats[train], z_train, tuple(alphas), folds, hidden, seed, max_iter, cv_rows
        )
    else:
        alpha, cv_mse = float(alphas[0]), np.full(1, np.nan)
    z = _fit_predict(feats[train], z_train, feats, hidden, alpha, seed, max_iter)
    return MlpFit(
        predictions=z * sd + mu, alpha=alpha, alphas=tuple(float(a) for a in alphas), cv_mse=cv_mse
    )


def mlp_predictions(
    x: np.ndarray,
    y: np.ndarray,
    is_test: np.ndarray,
    hidden: int = 256,
    seed: int = 0,
    max_iter: int = 300,
    alphas: tuple[float, ...] = WEIGHT_DECAYS,
) -> np.ndarray:
    """Predictions [n, T] of :func:`fit_mlp_probe`."""
    fit = fit_mlp_probe(x, y, is_test, hidden=hidden, alphas=alphas, seed=seed, max_iter=max_iter)
    return fit.predictions
