"""Nonlinear probe: one hidden layer (scikit-learn MLPRegressor), seeded, early stopping.

Its weight decay (sklearn's ``alpha``, an L2 penalty) and its width (hidden units) are
chosen on training rows only, by ``FOLDS``-fold CV (on a seeded subsample of ``CV_ROWS``
of them), with a coordinate search on two log grids: the weight decays at the current
width, then the widths at the chosen decay, until neither moves. A choice at the edge of
its grid extends the grid one step past it (at most ``MAX_EXTENSIONS`` steps per grid), so
the choice ends inside its grid or the fit says it sits on the edge (``MlpFit.alpha_edge``,
``MlpFit.width_edge``: "low", "high" or ""), as the ridge flags its alpha. The probe is
then refitted on every training row at the chosen pair. It reads the same features as the
ridge probe (the raw activations, see `_features`) and z-scored targets.

Cost (2 CPU cores, 1,333 x 576 rows per fold): one fit takes 5 s (64 units, decay 10)
to 40 s (256 units, decay 1); a search evaluates about 7 (decay, width) pairs x 3 folds, so
it runs once per analysis, at a reference layer, and its choice is reused at every layer
(see ``core.analysis.run``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The starting grids (log-spaced); an edge choice extends them one step at a time.
WEIGHT_DECAYS: tuple[float, ...] = (1.0, 10.0, 100.0)
WIDTHS: tuple[int, ...] = (32, 128, 512)
DECAY_STEP = 10.0
WIDTH_STEP = 4
MIN_WIDTH, MAX_WIDTH = 4, 512
MAX_EXTENSIONS = 3  # per grid
MAX_ROUNDS = 4  # decay line, width line, ... until neither moves
FOLDS = 3
CV_ROWS = 1000  # the inner CV runs on a seeded subsample of this many training rows at most


@dataclass(frozen=True)
class MlpFit:
    """An MLP probe fitted on the training rows."""

    predictions: np.ndarray  # [n, T] for every entity, in target units
    alpha: float  # the weight decay chosen by the inner cross-validation
    alphas: tuple[float, ...]  # the decay grid at the end of the search
    cv_mse: np.ndarray  # [len(alphas)] CV MSE (z units) of each decay at the chosen width
    hidden: int = 256  # the width chosen
    widths: tuple[int, ...] = ()  # the width grid at the end of the search
    alpha_edge: str = ""  # "low" / "high": the chosen decay is the grid's first / last
    width_edge: str = ""
    cv: tuple[tuple[float, int, float], ...] = ()  # every (decay, width, CV MSE) tried

    @property
    def at_edge(self) -> bool:
        return bool(self.alpha_edge or self.width_edge)


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


def _cv_mse(
    x: np.ndarray,
    z: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    hidden: int,
    alpha: float,
    seed: int,
    max_iter: int,
) -> float:
    total = 0.0
    for fit_rows, held_rows in splits:
        pred = _fit_predict(x[fit_rows], z[fit_rows], x[held_rows], hidden, alpha, seed, max_iter)
        total += float(np.mean((pred - z[held_rows]) ** 2)) / len(splits)
    return total


def _edge(grid: list[Any], value: Any) -> str:
    if len(grid) < 2:
        return ""
    return "low" if value == grid[0] else "high" if value == grid[-1] else ""


def tune_mlp(
    x: np.ndarray,
    z: np.ndarray,
    alphas: Sequence[float] = WEIGHT_DECAYS,
    widths: Sequence[int] = WIDTHS,
    folds: int = FOLDS,
    seed: int = 0,
    max_iter: int = 300,
    cv_rows: int | None = CV_ROWS,
    max_extensions: int = MAX_EXTENSIONS,
) -> tuple[float, int, dict[tuple[float, int], float], list[float], list[int]]:
    """(decay, width, CV MSE of every pair tried, final decay grid, final width grid) by
    seeded K-fold CV on `x`, `z` (training rows only; z [n, T] z-scored).

    Coordinate search (see the module note); ties go to the larger decay and the smaller
    width (the simpler model). A grid of one value is not searched or extended.
    """
    from sklearn.model_selection import KFold

    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    if cv_rows is not None and len(x) > cv_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), cv_rows, replace=False))
        x, z = x[keep], z[keep]
    splits = list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(x))
    a_grid, w_grid = sorted(float(a) for a in alphas), sorted(int(w) for w in widths)
    scores: dict[tuple[float, int], float] = {}

    def score(a: float, w: int) -> float:
        if (a, w) not in scores:
            scores[(a, w)] = _cv_mse(x, z, splits, w, a, seed, max_iter)
        return scores[(a, w)]

    def best_decay(w: int) -> float:
        values = [score(a, w) for a in a_grid]
        return a_grid[max(i for i, v in enumerate(values) if v <= min(values))]

    def best_width(a: float) -> int:
        values = [score(a, w) for w in w_grid]
        return w_grid[min(i for i, v in enumerate(values) if v <= min(values))]

    ext = {"decay": 0, "width": 0}
    alpha, width = a_grid[len(a_grid) // 2], w_grid[len(w_grid) // 2]
    for _ in range(MAX_ROUNDS):
        while True:  # the decay line at this width, extended past an edge choice
            alpha = best_decay(width)
            edge = _edge(a_grid, alpha)
            if not edge or ext["decay"] >= max_extensions:
                break
            ext["decay"] += 1
            if edge == "high":
                a_grid.append(a_grid[-1] * DECAY_STEP)
            else:
                a_grid.insert(0, a_grid[0] / DECAY_STEP)
        moved = False
        while True:  # the width line at that decay
            new = best_width(alpha)
            moved = moved or new != width
            width = new
            edge = _edge(w_grid, width)
            if not edge or ext["width"] >= max_extensions:
                break
            if edge == "high" and w_grid[-1] * WIDTH_STEP <= MAX_WIDTH:
                w_grid.append(w_grid[-1] * WIDTH_STEP)
            elif edge == "low" and w_grid[0] // WIDTH_STEP >= MIN_WIDTH:
                w_grid.insert(0, w_grid[0] // WIDTH_STEP)
            else:
                break
            ext["width"] += 1
        if not moved:
            break
    return alpha, width, scores, a_grid, w_grid


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
    """(chosen weight decay, CV MSE per decay of the final grid) at one width."""
    alpha, _, scores, grid, _ = tune_mlp(x, z, alphas, (hidden,), folds, seed, max_iter, cv_rows)
    return alpha, np.array([scores[(a, hidden)] for a in grid])


def fit_mlp_probe(
    x: np.ndarray,
    y: np.ndarray,
    is_test: np.ndarray,
    hidden: int = 256,
    alphas: Sequence[float] = WEIGHT_DECAYS,
    folds: int = FOLDS,
    seed: int = 0,
    max_iter: int = 300,
    cv_rows: int | None = CV_ROWS,
    widths: Sequence[int] | None = None,
    max_extensions: int = MAX_EXTENSIONS,
) -> MlpFit:
    """An MLP probe whose weight decay (and, given `widths`, width; else `hidden` units) is
    chosen on the training rows (test rows unused).

    With one value in `alphas` and one width, that pair is used as it is (no CV).
    """
    x = np.asarray(x, dtype=np.float64)
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    is_test = np.asarray(is_test, dtype=bool)
    train = ~is_test
    feats = _features(x, train)
    mu, sd = y2[train].mean(axis=0), y2[train].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z_train = (y2[train] - mu) / sd
    width_grid = tuple(int(w) for w in (widths or (hidden,)))
    if len(alphas) > 1 or len(width_grid) > 1:
        alpha, width, scores, a_grid, w_grid = tune_mlp(
            feats[train],
            z_train,
            alphas,
            width_grid,
            folds,
            seed,
            max_iter,
            cv_rows,
            max_extensions,
        )
        cv_mse = np.array([scores.get((a, width), np.nan) for a in a_grid])
        cv = tuple((float(a), int(w), float(v)) for (a, w), v in sorted(scores.items()))
    else:
        alpha, width = float(alphas[0]), width_grid[0]
        a_grid, w_grid, cv_mse, cv = [alpha], [width], np.full(1, np.nan), ()
    z = _fit_predict(feats[train], z_train, feats, width, alpha, seed, max_iter)
    return MlpFit(
        predictions=z * sd + mu,
        alpha=float(alpha),
        alphas=tuple(float(a) for a in a_grid),
        cv_mse=cv_mse,
        hidden=int(width),
        widths=tuple(int(w) for w in w_grid),
        alpha_edge=_edge(a_grid, alpha),
        width_edge=_edge(w_grid, width),
        cv=cv,
    )


def mlp_predictions(
    x: np.ndarray,
    y: np.ndarray,
    is_test: np.ndarray,
    hidden: int = 256,
    seed: int = 0,
    max_iter: int = 300,
    alphas: Sequence[float] = WEIGHT_DECAYS,
) -> np.ndarray:
    """Predictions [n, T] of :func:`fit_mlp_probe`."""
    fit = fit_mlp_probe(x, y, is_test, hidden=hidden, alphas=alphas, seed=seed, max_iter=max_iter)
    return fit.predictions
