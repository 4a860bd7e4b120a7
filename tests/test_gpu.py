"""The CUDA paths, checked on a real GPU: the overlapped host copies of the activation
store and the float64 torch probe solver.

These run only where torch sees a CUDA device (`bench/gpu_check.sh` runs them on the
lent GPU machine); the same code's CPU behaviour is covered by test_store.py and
test_probes.py, which always run. Here the question is whether the GPU-only branches
(pinned double buffers on a side stream, record_stream, device-resident chunks) give
the numbers the CPU paths give.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from core.common.config import ActivationSpec
from core.extract.activations import HostCopier, last_token_activations
from core.extract.store import build_activations
from core.probe.ridge import RidgeProbe
from tests.conftest import synthetic_places

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def on_cuda(loaded, dtype):  # type: ignore[no-untyped-def]
    model = copy.deepcopy(loaded.model).to("cuda", dtype)
    return dataclasses.replace(
        loaded, model=model, device="cuda", dtype=str(dtype).removeprefix("torch.")
    )


def test_host_copier_double_buffers_keep_each_batch() -> None:
    """Each result is intact until the copy after next reuses its buffer."""
    copier = HostCopier("cuda")
    assert copier.cuda
    expected, waits = [], []
    for i in range(6):
        tensor = torch.full((3, 1000 + 10 * i, 64), float(i), device="cuda", dtype=torch.float16)
        tensor += torch.arange(64, device="cuda", dtype=torch.float16)
        expected.append(tensor.cpu().numpy())
        waits.append(copier.start(tensor))
        del tensor  # record_stream keeps its memory until the copy is done
        if i >= 1:  # the writer is one batch behind, as in the store
            np.testing.assert_array_equal(waits[i - 1](), expected[i - 1])
    np.testing.assert_array_equal(waits[-1](), expected[-1])


def test_host_copier_peak_waits_for_its_own_tensor() -> None:
    copier = HostCopier("cuda")
    tensor = torch.randn(512, 4096, device="cuda", dtype=torch.bfloat16)
    peak = copier.peak(tensor)
    later = torch.randn(8192, 8192, device="cuda") @ torch.randn(
        8192, 8192, device="cuda"
    )  # queued behind it
    assert peak() == float(tensor.abs().max())
    tensor[3, 5] = float("nan")
    assert np.isnan(copier.peak(tensor)())
    del later


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cuda_store_overlapped_equals_synchronous_and_cpu(tiny, tmp_path, dtype) -> None:  # type: ignore[no-untyped-def]
    places = synthetic_places(300)
    gpu = on_cuda(tiny, getattr(torch, dtype))
    spec = ActivationSpec(model="tiny-llama", dataset=places.name, max_batch_size=16)
    overlapped = build_activations(spec, places, gpu, tmp_path / "overlap", overlap_copies=True)
    synchronous = build_activations(spec, places, gpu, tmp_path / "sync", overlap_copies=False)
    assert overlapped.manifest["n_entities"] == 300  # 19 batches: the buffers are reused
    reference = last_token_activations(tiny, places.texts("empty"))  # float32 on the CPU
    tolerance = 2e-3 if dtype == "float32" else 5e-2  # float16 storage; bf16 compute
    for layer in overlapped.layers:
        stored = np.asarray(overlapped.layer(layer))
        np.testing.assert_array_equal(stored, np.asarray(synchronous.layer(layer)))
        scale = np.abs(reference[layer]).max()
        np.testing.assert_allclose(
            stored.astype(np.float32), reference[layer], rtol=tolerance, atol=tolerance * scale
        )


@pytest.mark.parametrize("staging", ["pageable", "pinned"])
@pytest.mark.parametrize("method", ["loo", "gcv"])
def test_cuda_ridge_matches_numpy(method: str, staging: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import core.probe.ridge_torch

    monkeypatch.setattr(core.probe.ridge_torch, "STAGING", staging)
    rng = np.random.default_rng(3)
    X = (rng.standard_normal((3000, 96)) * np.exp(rng.uniform(-2, 2, 96)) + 5.0).astype(np.float16)
    y = X.astype(np.float64) @ rng.standard_normal((96, 2)) + rng.standard_normal((3000, 2))
    reference = RidgeProbe(method=method).fit(X, y)
    on_gpu = RidgeProbe(method=method, device="cuda").fit(X, y)
    assert on_gpu.alpha_ == reference.alpha_
    np.testing.assert_allclose(on_gpu.cv_errors_, reference.cv_errors_, rtol=1e-8)
    np.testing.assert_allclose(on_gpu.coef_, reference.coef_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(on_gpu.predict(X), reference.predict(X), rtol=1e-8, atol=1e-8)
