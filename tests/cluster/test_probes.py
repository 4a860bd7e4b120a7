"""Probe fits on Ray, per layer and by the covariance route, against the numpy solver."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from core.cluster.probes import fit_layers_on_ray, ray_map
from core.cluster.sharded import LayerSlice, fit_sharded, local_map, row_bounds
from core.common.config import ActivationSpec, ProbeSpec
from core.extract.store import build_activations
from core.probe.ridge import RidgeProbe, alpha_grid
from core.results.build import fit_probes
from tests.conftest import synthetic_places
from tests.support.tiny import tiny_model


def layer_problem(n: int = 700, d: int = 24, seed: int = 0) -> tuple[np.ndarray, ...]:
    """float16 rows with two targets linear in them plus noise, a quarter held out."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, d)) * rng.uniform(0.5, 30, d) + 3).astype(np.float16)
    w = rng.normal(size=(d, 2))
    y = x.astype(np.float64) @ w + rng.normal(scale=5.0, size=(n, 2)) + [40.0, -70.0]
    is_test = rng.random(n) < 0.25
    return x, y, is_test


def single_node(x: np.ndarray, y: np.ndarray, is_test: np.ndarray, spec: ProbeSpec) -> RidgeProbe:
    probe = RidgeProbe(
        alphas=alpha_grid(*spec.alpha_grid), method=spec.method, alpha_scale=spec.alpha_scale
    )
    return probe.fit(np.asarray(x, dtype=np.float64)[~is_test], y[~is_test])


def assert_matches(arrays: dict[str, np.ndarray], probe: RidgeProbe, x: np.ndarray) -> None:
    assert int(np.argmin(arrays["cv_errors"])) == probe.alpha_index_  # the same alpha chosen
    np.testing.assert_allclose(float(arrays["alpha"]), probe.alpha_, rtol=1e-10)
    np.testing.assert_allclose(arrays["cv_errors"], probe.cv_errors_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        float(arrays["loo_r2"]), 1 - probe.cv_errors_[probe.alpha_index_], rtol=1e-10
    )
    np.testing.assert_allclose(arrays["coef"], probe.coef_.astype(np.float32), rtol=1e-5)
    pred = probe.predict(np.asarray(x, dtype=np.float64)).astype(np.float32)
    np.testing.assert_allclose(arrays["pred"], pred, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "spec",
    [ProbeSpec(), ProbeSpec(method="gcv"), ProbeSpec(alpha_scale="none", alpha_grid=(-2, 6, 17))],
    ids=["loo-trace", "gcv-trace", "loo-none"],
)
def test_covariance_route_matches_the_single_node_solver(spec: ProbeSpec) -> None:
    x, y, is_test = layer_problem()
    bounds = row_bounds(len(x), 128)  # 6 shards, the last one short
    arrays = fit_sharded([x[a:b] for a, b in bounds], bounds, y, is_test, spec, local_map)
    assert_matches(arrays, single_node(x, y, is_test, spec), x)


@pytest.mark.usefixtures("ray_local")
def test_covariance_route_on_ray_reads_shards_from_a_shared_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x, y, is_test = layer_problem(seed=1)
    path = tmp_path / "layer_000.npy"
    np.save(path, x)
    bounds = row_bounds(len(x), 200)
    sources = [LayerSlice(str(path), a, b) for a, b in bounds]
    arrays = fit_sharded(sources, bounds, y, is_test, ProbeSpec(), ray_map())
    assert_matches(arrays, single_node(x, y, is_test, ProbeSpec()), x)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    places = synthetic_places()
    spec = ActivationSpec(model="tiny-llama", dataset=places.name, max_batch_size=16)
    root = tmp_path_factory.mktemp("probes")
    return places, build_activations(spec, places, tiny_model(), root), root


@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("route", ["per-layer", "covariance"])
def test_probe_sweep_on_ray_equals_numpy(built, tmp_path, route) -> None:  # type: ignore[no-untyped-def]
    places, store, root = built
    reference = fit_probes(store, places, ProbeSpec(), root)
    # a 120 x 32 float64 layer is 31 kB: a 10 kB limit sends it down the covariance route
    fitter = functools.partial(
        fit_layers_on_ray,
        max_layer_bytes=10_000 if route == "covariance" else None,
        rows_per_shard=50,
    )
    on_ray = fit_probes(store, places, ProbeSpec(), tmp_path, layer_fitter=fitter)
    metrics = ["layer", "split", "r2", "loo_r2"]
    if route == "per-layer":  # the same function on the same bytes: the same numbers
        np.testing.assert_array_equal(on_ray.alphas, reference.alphas)
        np.testing.assert_array_equal(on_ray.predictions, reference.predictions)
        assert on_ray.metrics[metrics].equals(reference.metrics[metrics])
    else:  # the same alphas; R² to float64 rounding (sums grouped by shard)
        np.testing.assert_allclose(on_ray.alphas, reference.alphas, rtol=1e-10)
        for column in ("r2", "loo_r2"):
            np.testing.assert_allclose(
                on_ray.metrics[column], reference.metrics[column], rtol=1e-6, atol=1e-9
            )
    assert on_ray.best_layer() == reference.best_layer()
