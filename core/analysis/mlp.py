"""Nonlinear probe: one hidden layer (scikit-learn MLPRegressor), seeded, early stopping."""

from __future__ import annotations

import warnings

import numpy as np


def mlp_predictions(
    x: np.ndarray,
    y: np.ndarray,
    is_test: np.ndarray,
    hidden: int = 256,
    alpha: float = 1e-2,
    seed: int = 0,
    max_iter: int = 300,
) -> np.ndarray:
    """Predictions [n, T] of an MLP fitted on standardised features and z-scored targets."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(x, dtype=np.float64)
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    train = ~is_test
    scaler = StandardScaler().fit(x[train])
    mu, sd = y2[train].mean(axis=0), y2[train].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    model = MLPRegressor(
        hidden_layer_sizes=(hidden,),
        alpha=alpha,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        tol=1e-5,
        max_iter=max_iter,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        z_train = (y2[train] - mu) / sd
        model.fit(scaler.transform(x[train]), z_train[:, 0] if z_train.shape[1] == 1 else z_train)
    z = np.asarray(model.predict(scaler.transform(x))).reshape(len(x), -1)
    return z * sd + mu
