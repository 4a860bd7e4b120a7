"""RidgeProbe against scikit-learn's RidgeCV / Ridge and against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.utils.estimator_checks import check_estimator

from core.probe.ridge import RidgeProbe, alpha_grid

GRID = alpha_grid(-3.0, 5.0, 33)


def make_data(n: int, d: int, n_targets: int, seed: int = 0, noise: float = 2.0):
    """Anisotropic, offset features and a planted linear signal plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.2, 3.0, d) + rng.normal(0.0, 5.0, d)
    w = rng.standard_normal((d, n_targets)) * 0.3
    y = X @ w + rng.normal(0.0, noise, (n, n_targets)) + rng.normal(0.0, 10.0, n_targets)
    return X, y, w


def zscore(y: np.ndarray) -> np.ndarray:
    return (y - y.mean(axis=0)) / y.std(axis=0)


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_alpha_grid():
    grid = alpha_grid()  # the builds' grid, in units of trace(Xc^T Xc)/d
    assert grid.shape == (57,)
    assert grid[0] == pytest.approx(1e-8) and grid[-1] == pytest.approx(1e6)
    assert np.allclose(np.diff(np.log10(grid)), 0.25)
    assert alpha_grid(0, 2, 3).tolist() == pytest.approx([1.0, 10.0, 100.0])


def test_a_notebook_probe_matches_the_build() -> None:
    """``RidgeProbe()`` with its defaults fits what a build stores for the same rows."""
    from core.common.config import ProbeSpec
    from core.results.build import layer_arrays

    rng = np.random.default_rng(5)
    # activation-like: float32, a large common scale, so raw penalties would differ
    x = (rng.standard_normal((600, 48)) * rng.uniform(0.5, 40.0, 48) + 3.0).astype(np.float32)
    y = x[:, :3].astype(np.float64) @ rng.normal(size=(3, 2)) + rng.normal(size=(600, 2))
    is_test = rng.random(600) < 0.25
    built = layer_arrays(x.astype(np.float64), y, is_test, ProbeSpec())
    probe = RidgeProbe().fit(x[~is_test], y[~is_test])
    assert probe.alpha_ == float(built["alpha"])
    assert np.array_equal(probe.coef_.astype(np.float32), built["coef"])
    assert np.array_equal(probe.intercept_.astype(np.float32), built["intercept"])
    assert (
        probe.alpha_index_
        == RidgeProbe.from_spec(ProbeSpec()).fit(x[~is_test], y[~is_test]).alpha_index_
    )


@pytest.mark.parametrize(
    ("n", "d"),
    [(400, 30), (3000, 60), (60, 150), (80, 80)],  # n > d (covariance), n <= d (kernel)
)
def test_single_target_matches_ridgecv_and_ridge(n, d):
    X, y, _ = make_data(n, d, 1, seed=n + d)
    y = y[:, 0]
    probe = RidgeProbe(alphas=GRID).fit(X, y)
    # one target: z-scoring y rescales every alpha's LOO error equally -> same alpha
    ref = RidgeCV(alphas=GRID, fit_intercept=True).fit(X, y)
    assert probe.alpha_ == ref.alpha_
    assert 0 < probe.alpha_index_ < len(GRID) - 1
    assert probe.solver_ == ("covariance" if n > d else "kernel")
    pred = probe.predict(X)
    assert pred.shape == (n,)
    assert rel_diff(pred, ref.predict(X)) < 1e-6
    ridge = Ridge(alpha=probe.alpha_).fit(X, y)
    assert rel_diff(probe.coef_[0], ridge.coef_) < 1e-6
    assert probe.intercept_[0] == pytest.approx(ridge.intercept_, rel=1e-6)
    X_new = make_data(50, d, 1, seed=1)[0]
    assert rel_diff(probe.predict(X_new), ridge.predict(X_new)) < 1e-6


@pytest.mark.parametrize(("n", "d"), [(500, 40), (70, 200)])
def test_multi_target_matches_ridgecv_on_zscored_targets(n, d):
    X, y, _ = make_data(n, d, 2, seed=7 * n + d)
    y[:, 1] *= 50.0  # very different scales: z-scoring matters for the shared alpha
    probe = RidgeProbe(alphas=GRID).fit(X, y)
    z = zscore(y)
    ref = RidgeCV(alphas=GRID, store_cv_results=True).fit(X, z)
    assert probe.alpha_ == ref.alpha_
    # cv_errors_ are the mean squared LOO errors in z units, as RidgeCV's over (rows, targets)
    ref_errors = ref.cv_results_.mean(axis=(0, 1))
    assert np.allclose(probe.cv_errors_, ref_errors, rtol=1e-8, atol=0)
    z_pred = (probe.predict(X) - probe.y_mean_) / probe.y_scale_
    assert rel_diff(z_pred, ref.predict(X)) < 1e-6
    # original units: ridge is linear in y, so Ridge(alpha_) on raw y gives the same fit
    ridge = Ridge(alpha=probe.alpha_).fit(X, y)
    assert probe.coef_.shape == (2, d) and probe.intercept_.shape == (2,)
    assert rel_diff(probe.coef_, ridge.coef_) < 1e-6
    assert rel_diff(probe.predict(X), ridge.predict(X)) < 1e-6


def test_equal_scale_targets_match_raw_ridgecv():
    X, y, _ = make_data(600, 25, 2, seed=3)
    y = (y - y.mean(axis=0)) / y.std(axis=0) * 4.0 + np.array([1.0, -3.0])  # same spread
    probe = RidgeProbe(alphas=GRID).fit(X, y)
    ref = RidgeCV(alphas=GRID).fit(X, y)
    assert probe.alpha_ == ref.alpha_
    assert rel_diff(probe.predict(X), ref.predict(X)) < 1e-6


@pytest.mark.parametrize("gcv_mode", ["svd", "eigen"])
@pytest.mark.parametrize(("n", "d"), [(300, 20), (40, 90)])
def test_loo_agrees_with_every_sklearn_gcv_mode(gcv_mode, n, d):
    # scikit-learn's gcv_mode picks the decomposition of its exact LOO (not GCV proper)
    X, y, _ = make_data(n, d, 1, seed=11)
    probe = RidgeProbe(alphas=GRID).fit(X, y[:, 0])
    ref = RidgeCV(alphas=GRID, gcv_mode=gcv_mode, store_cv_results=True).fit(X, zscore(y)[:, 0])
    assert probe.alpha_ == ref.alpha_
    assert np.allclose(probe.cv_errors_, ref.cv_results_.mean(axis=0), rtol=1e-7, atol=0)


@pytest.mark.parametrize(("n", "d"), [(25, 6), (12, 20)])
def test_loo_is_exact_against_refitting(n, d):
    X, y, _ = make_data(n, d, 2, seed=5, noise=1.0)
    alphas = np.array([0.01, 1.0, 100.0])
    probe = RidgeProbe(alphas=alphas).fit(X, y)
    z = zscore(y)
    brute = []
    for alpha in alphas:
        errors = []
        for i in range(n):
            keep = np.arange(n) != i
            model = Ridge(alpha=alpha).fit(X[keep], z[keep])
            errors.append((model.predict(X[i : i + 1])[0] - z[i]) ** 2)
        brute.append(np.mean(errors))
    assert np.allclose(probe.cv_errors_, brute, rtol=1e-8)


@pytest.mark.parametrize(("n", "d"), [(200, 15), (30, 60)])
def test_gcv_matches_explicit_hat_matrix(n, d):
    X, y, _ = make_data(n, d, 2, seed=13)
    probe = RidgeProbe(alphas=GRID, method="gcv").fit(X, y)
    z = zscore(y)
    xc = X - X.mean(axis=0)
    expected = []
    for alpha in GRID:
        hat = np.full((n, n), 1.0 / n) + xc @ np.linalg.solve(xc.T @ xc + alpha * np.eye(d), xc.T)
        resid = z - hat @ z
        expected.append(np.mean(resid**2) / (1.0 - np.trace(hat) / n) ** 2)
    assert np.allclose(probe.cv_errors_, expected, rtol=1e-8)
    assert probe.alpha_ == GRID[int(np.argmin(expected))]
    ridge = Ridge(alpha=probe.alpha_).fit(X, y)
    assert rel_diff(probe.predict(X), ridge.predict(X)) < 1e-6


def test_planted_signal_recovered():
    rng = np.random.default_rng(0)
    n, d = 4000, 50
    X = rng.standard_normal((n, d))
    w = np.zeros((d, 2))
    w[:5, 0] = [3.0, -2.0, 1.0, 0.5, 4.0]
    w[5:10, 1] = [-1.0, 2.0, 2.0, -3.0, 1.0]
    y = X @ w + np.array([45.0, 7.0]) + 0.1 * rng.standard_normal((n, 2))
    train = np.arange(n) < 3000
    probe = RidgeProbe().fit(X[train], y[train])
    assert np.abs(probe.coef_ - w.T).max() < 0.02
    assert np.allclose(probe.intercept_, [45.0, 7.0], atol=0.02)
    assert probe.score(X[~train], y[~train]) > 0.999
    assert not probe.alpha_at_edge_


def test_alpha_at_edge_flagged():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 10))
    noise = rng.standard_normal(300)  # no signal: the largest penalty wins
    probe = RidgeProbe(alphas=alpha_grid(-2, 2, 9)).fit(X, noise)
    assert probe.alpha_index_ == 8 and probe.alpha_at_edge_
    exact = X @ rng.standard_normal(10) + 1e-6 * rng.standard_normal(300)  # no noise: smallest
    probe = RidgeProbe(alphas=alpha_grid(0, 4, 9)).fit(X, exact)
    assert probe.alpha_index_ == 0 and probe.alpha_at_edge_
    probe = RidgeProbe(alphas=alpha_grid(-2, 6, 33)).fit(*make_data(300, 10, 1, seed=2)[:2])
    assert not probe.alpha_at_edge_


def test_float32_offset_and_constant_columns():
    X, y, _ = make_data(500, 30, 2, seed=21)
    X[:, 3] = 7.0  # constant column
    X[:, 4] = 0.0  # all-zero column
    X = X + 1000.0  # large common offset: centring must not lose precision
    X32 = X.astype(np.float32)
    probe = RidgeProbe(alphas=GRID).fit(X32, y)
    X64 = X32.astype(np.float64)
    ref = RidgeCV(alphas=GRID).fit(X64, zscore(y))
    assert probe.alpha_ == ref.alpha_
    ridge = Ridge(alpha=probe.alpha_).fit(X64, y)
    assert probe.coef_.dtype == np.float64
    assert rel_diff(probe.predict(X32), ridge.predict(X64)) < 1e-6
    assert np.abs(probe.coef_[:, 3:5]).max() < 1e-9


def test_float16_memmap_input(tmp_path):
    X, y, _ = make_data(300, 20, 1, seed=4)
    path = tmp_path / "x.npy"
    np.save(path, X.astype(np.float16))
    mm = np.load(path, mmap_mode="r")
    probe = RidgeProbe(alphas=GRID).fit(mm, y[:, 0])
    ridge = Ridge(alpha=probe.alpha_).fit(mm.astype(np.float64), y[:, 0])
    assert rel_diff(probe.predict(mm), ridge.predict(mm.astype(np.float64))) < 1e-6


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float16_is_refused_by_name(bad: float) -> None:
    rng = np.random.default_rng(3)
    # big enough that a float16 sum overflows: the check must not call that non-finite
    X = (rng.standard_normal((3000, 40)) + 30).astype(np.float16)
    y = X[:, :2].astype(np.float64) @ np.ones(2)
    probe = RidgeProbe().fit(X, y)
    with np.errstate(over="ignore"):
        assert np.isinf(X.sum())
    word = "NaN" if np.isnan(bad) else "infinity"
    X[1234, 17] = bad
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        RidgeProbe().fit(X, y)
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        probe.predict(X)


def test_constant_target_and_no_standardisation():
    X, y, _ = make_data(200, 10, 2, seed=8)
    y[:, 1] = 3.0
    probe = RidgeProbe(alphas=GRID).fit(X, y)
    assert np.allclose(probe.predict(X)[:, 1], 3.0)
    raw = RidgeProbe(alphas=GRID, standardize_targets=False).fit(X, y[:, 0])
    # unscaled targets: cv_errors_ are RidgeCV's LOO errors in the original units
    ref = RidgeCV(alphas=GRID, store_cv_results=True).fit(X, y[:, 0])
    assert raw.alpha_ == ref.alpha_
    assert np.allclose(raw.cv_errors_, ref.cv_results_.mean(axis=0), rtol=1e-8)


@pytest.mark.parametrize(("n", "d"), [(300, 12), (30, 60)])
def test_without_intercept_matches_sklearn(n, d):
    X, y, _ = make_data(n, d, 1, seed=9)
    probe = RidgeProbe(alphas=GRID, fit_intercept=False, standardize_targets=False).fit(X, y[:, 0])
    ref = RidgeCV(alphas=GRID, fit_intercept=False).fit(X, y[:, 0])
    assert probe.alpha_ == ref.alpha_
    assert probe.intercept_[0] == 0.0
    assert rel_diff(probe.predict(X), ref.predict(X)) < 1e-6


def test_estimator_api():
    X, y, _ = make_data(200, 8, 2, seed=10)
    probe = RidgeProbe(alphas=GRID, method="gcv")
    with pytest.raises(NotFittedError):
        probe.predict(X)
    assert probe.get_params() == {
        "alphas": GRID,
        "method": "gcv",
        "fit_intercept": True,
        "standardize_targets": True,
        "device": None,
        "alpha_scale": "auto",  # "none" for given alphas, "trace" for the default grid
    }
    copy = clone(probe).set_params(method="loo")
    assert copy.method == "loo" and probe.method == "gcv"
    assert copy.fit(X, y) is copy
    assert copy.n_features_in_ == 8 and copy.n_targets_ == 2
    assert copy.score(X, y) == pytest.approx(r2_score(y, copy.predict(X)))
    assert copy.cv_errors_.shape == (len(GRID),)
    with pytest.raises(ValueError):
        copy.predict(X[:, :5])
    with pytest.raises(ValueError, match="method"):
        RidgeProbe(method="kfold").fit(X, y)
    with pytest.raises(ValueError, match="alphas"):
        RidgeProbe(alphas=[1.0, -1.0]).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@pytest.mark.parametrize("method", ["loo", "gcv"])
def test_check_estimator(method):
    check_estimator(RidgeProbe(method=method))


# ------------------------------------------------------------- torch solver
@pytest.mark.parametrize("method", ["loo", "gcv"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("n_targets", [1, 2])
def test_torch_solver_matches_numpy(method: str, fit_intercept: bool, n_targets: int) -> None:
    """The GPU path, run on torch's CPU device, gives the numpy path's numbers."""
    X, y, _ = make_data(700, 48, n_targets, seed=3)
    X = X.astype(np.float32) + 5.0  # offset columns: centring must happen on the device
    y = y[:, 0] if n_targets == 1 else y
    kwargs = {"method": method, "fit_intercept": fit_intercept}
    reference = RidgeProbe(**kwargs).fit(X, y)
    on_torch = RidgeProbe(device="cpu", **kwargs).fit(X, y)
    assert on_torch.alpha_ == reference.alpha_
    np.testing.assert_allclose(on_torch.cv_errors_, reference.cv_errors_, rtol=1e-9)
    np.testing.assert_allclose(on_torch.coef_, reference.coef_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(on_torch.intercept_, reference.intercept_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(on_torch.predict(X), reference.predict(X), rtol=1e-9, atol=1e-9)


def test_torch_solver_streams_float16_memmap_in_chunks(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import core.probe.ridge_torch as probes_torch

    monkeypatch.setattr(probes_torch, "_DEVICE_CHUNK_ELEMENTS", 64 * 98)  # many small chunks
    X, y, _ = make_data(1000, 30, 2, seed=4)
    path = tmp_path / "layer.npy"
    np.save(path, X.astype(np.float16))
    mapped = np.load(path, mmap_mode="r")
    reference = RidgeProbe().fit(mapped, y)
    on_torch = RidgeProbe(device="cpu").fit(mapped, y)
    assert on_torch.alpha_ == reference.alpha_
    np.testing.assert_allclose(on_torch.coef_, reference.coef_, rtol=1e-8, atol=1e-12)


def test_torch_solver_names_a_missing_gpu(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, y, _ = make_data(200, 10, 1)
    with pytest.raises(RuntimeError, match="probe device 'cuda'.*no CUDA device"):
        RidgeProbe(device="cuda").fit(X, y[:, 0])
    assert (
        RidgeProbe(device="auto").fit(X, y[:, 0]).solver_ == "covariance"
    )  # auto falls back to CPU


def test_trace_scaled_grid_follows_the_layer_scale() -> None:
    """A layer with huge activations (Gemma's late residuals) must not push the chosen
    penalty to the grid's edge: in trace units the choice does not depend on scale."""
    from core.common.config import ProbeSpec

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 30))
    y = x @ rng.normal(size=30) + rng.normal(scale=3.0, size=400)
    spec = ProbeSpec()
    grid = alpha_grid(*spec.alpha_grid)
    assert np.log10(grid[-1] / grid[0]) >= 12
    fits = [RidgeProbe(alphas=grid, alpha_scale="trace").fit(x * scale, y) for scale in (1.0, 1e5)]
    assert fits[0].alpha_index_ == fits[1].alpha_index_
    assert not any(f.alpha_at_edge_ for f in fits)
    assert fits[1].alpha_unit_ == pytest.approx(fits[0].alpha_unit_ * 1e10, rel=1e-9)
    # raw penalties on the big layer: the optimum lies beyond the grid's top
    raw = RidgeProbe(alphas=alpha_grid(-4, 8, 49)).fit(x * 1e5, y)
    assert raw.alpha_at_edge_
    with pytest.raises(ValueError, match="alpha_scale"):
        RidgeProbe(alpha_scale="log").fit(x, y)
