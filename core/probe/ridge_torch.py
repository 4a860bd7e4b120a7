"""The covariance (n > d) leave-one-out solve of `RidgeProbe` in torch, for GPUs.

The same mathematics as ``RidgeProbe._fit_covariance`` (one ``CovarianceSweep``,
``core.probe.ridge_math``), in float64 on
a torch device: on a GPU the three ``n d^2`` products and the ``d x d`` eigh of each
layer take a fraction of a second, so a 7B-sized probe sweep (32 layers, d = 4096,
n ~ 32,000) is bounded by reading the activations. The numpy path stays the reference
and the default (shipped results are made by it); this one agrees with it to float64
rounding (tests compare both on torch's CPU device).

Rows are streamed to the device chunk by chunk in their stored dtype (float16 stays
float16 on the wire) and kept there for the second pass when they fit in a quarter of
the free device memory, so each layer crosses the bus once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.probe.ridge_math import CovarianceSweep
from core.probe.ridge_math import chunks as _chunks

# Rows per transfer: large blocks keep a GPU busy; 2^25 float64 elements = 256 MiB.
_DEVICE_CHUNK_ELEMENTS = 1 << 25

# How rows reach a GPU: "pageable" copies them from ordinary memory (the driver stages
# them through its own small pinned buffer), "pinned" copies them into page-locked
# memory first, from which the transfer runs at the bus's full rate. On the lent H100,
# pageable copies to the host ran at ~1.2 GB/s; a d = 4096 layer sends ~330 MB twice.
# `python -m bench.probes --sweep ... --compare-staging N` times both.
STAGING = "pageable"


def to_device(rows: np.ndarray, dev: Any) -> Any:
    """A block of rows as a tensor on `dev`, in its stored dtype."""
    import torch

    if dev.type != "cuda" or STAGING != "pinned":
        return torch.from_numpy(np.array(rows)).to(dev)  # a writable copy of the block
    staged = torch.empty(
        rows.shape, dtype=torch.from_numpy(np.empty(0, rows.dtype)).dtype, pin_memory=True
    )
    np.copyto(staged.numpy(), rows)
    return staged.to(dev)


def resolve_device(device: str) -> Any:
    """A torch.device for "cpu", "cuda", "cuda:N" or "auto" (cuda when available)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"probe device {device!r} asked for, but torch sees no CUDA device")
    return resolved


def probe_device_for(choice: str) -> str | None:
    """The `probe_device` of a CLI choice: None (numpy) or a torch device name.

    "auto" uses a GPU when torch sees one and numpy otherwise, so CPU builds stay on
    the reference path (and reproduce the shipped results bit for bit).
    """
    if choice == "numpy":
        return None
    if choice == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else None
    resolve_device(choice)  # a missing GPU fails now, before any model work
    return choice


def fit_covariance_torch(
    X: np.ndarray,
    z: np.ndarray,
    alphas: np.ndarray,
    *,
    fit_intercept: bool,
    method: str,
    device: str,
) -> tuple[np.ndarray, Callable[[int], np.ndarray], np.ndarray]:
    """(cv_errors [A], weights_at(index) -> [d, T] in z units, column means [d]).

    The numpy solver's quantities; the column means are taken on the device too.
    """
    import torch

    dev = resolve_device(device)
    f64 = torch.float64
    n, d = X.shape
    n_targets = z.shape[1]
    n_alphas = alphas.size
    row_slices = _chunks(n, max(256, _DEVICE_CHUNK_ELEMENTS // max(d, n_alphas * (n_targets + 1))))

    keep_on_device = dev.type == "cuda" and _fits(dev, n * d * X.dtype.itemsize)
    cached: list[Any] = []
    z_t = torch.as_tensor(z, dtype=f64, device=dev)

    def raw(index: int, rows: slice) -> Any:
        if index < len(cached):
            return cached[index]
        chunk_t = to_device(X[rows], dev)
        if keep_on_device:
            cached.append(chunk_t)
        return chunk_t

    # Pass 0: column means (rows are then centred explicitly: no cancellation).
    mean_t = torch.zeros(d, dtype=f64, device=dev)
    if fit_intercept:
        for i, rows in enumerate(row_slices):
            mean_t += raw(i, rows).to(f64).sum(dim=0)
        mean_t /= n

    def load(index: int, rows: slice) -> Any:
        block = raw(index, rows).to(f64)
        return block - mean_t if fit_intercept else block

    cov = torch.zeros((d, d), dtype=f64, device=dev)
    xtz = torch.zeros((d, n_targets), dtype=f64, device=dev)
    for i, rows in enumerate(row_slices):
        block = load(i, rows)
        cov.addmm_(block.T, block)
        xtz.addmm_(block.T, z_t[rows])
    lam, vecs = torch.linalg.eigh(cov)
    del cov
    alphas_t = torch.as_tensor(alphas, dtype=f64, device=dev)
    sweep = CovarianceSweep.solve(
        lam, vecs, xtz, alphas_t, leverage=1.0 / n if fit_intercept else 0.0, method=method
    )
    matrix = sweep.sweep_matrix()
    sq_err = torch.zeros(n_alphas, dtype=f64, device=dev)
    for i, rows in enumerate(row_slices):
        sq_err += sweep.block_errors(load(i, rows), z_t[rows], matrix, torch.einsum)

    def to_numpy(tensor: Any) -> np.ndarray:
        return tensor.cpu().numpy()

    cv_errors = sweep.cv_errors(to_numpy(sq_err / (n * n_targets)), n, to_numpy)

    def weights_at(index: int) -> np.ndarray:
        return to_numpy(sweep.weights_at(index))

    return cv_errors, weights_at, mean_t.cpu().numpy()


def predict_torch(
    X: np.ndarray, coef: np.ndarray, intercept: np.ndarray, device: str
) -> np.ndarray:
    """X @ coef.T + intercept in float64 on the device, rows streamed in their dtype."""
    import torch

    dev = resolve_device(device)
    n, d = X.shape
    coef_t = torch.as_tensor(coef, dtype=torch.float64, device=dev).T
    intercept_t = torch.as_tensor(intercept, dtype=torch.float64, device=dev)
    out = np.empty((n, coef.shape[0]))
    for rows in _chunks(n, max(256, _DEVICE_CHUNK_ELEMENTS // max(1, d))):
        block = to_device(X[rows], dev).to(torch.float64)
        out[rows] = (block @ coef_t + intercept_t).cpu().numpy()
    return out


def _fits(dev: Any, nbytes: int) -> bool:
    import torch

    free, _ = torch.cuda.mem_get_info(dev)
    return nbytes < free // 4
