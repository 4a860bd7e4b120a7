"""Probe fits on Ray: one task per layer, or the covariance route for a layer too big.

A per-layer task runs ``core.results.build.layer_arrays`` on the layer's stored rows,
sent from the driver through Ray's object store: the same function on the same bytes
as the numpy path, so the same alpha and R². A layer whose float64 working copy would
not fit a task (``max_layer_bytes``) is fitted from row shards (``sharded``), each a
Ray task; only d x d sums come back.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from core.cluster.sharded import LayerSlice, Map, fit_sharded, row_bounds
from core.common.config import ProbeSpec
from core.extract.layer_files import layer_name
from core.extract.store import ActivationStore
from core.results.build import layer_arrays

log = logging.getLogger(__name__)


def _fit_one(
    rows: np.ndarray, y: np.ndarray, is_test: np.ndarray, spec: ProbeSpec, device: str | None
) -> dict[str, np.ndarray]:
    x = np.asarray(rows, dtype=np.float64) if device is None else np.asarray(rows)
    return layer_arrays(x, y, is_test, spec, device)


def ray_map(num_cpus: float = 1.0) -> Map:
    """A sharded pass as Ray tasks; arguments shared by every shard are put once."""
    import ray

    def run(fn: Any, per_shard: list[tuple[Any, ...]], common: tuple[Any, ...]) -> list[Any]:
        task = ray.remote(fn).options(num_cpus=num_cpus)
        shared = [ray.put(value) for value in common]
        return list(ray.get([task.remote(*args, *shared) for args in per_shard]))

    return run


def fit_layers_on_ray(
    store: ActivationStore,
    layers: list[int],
    y: np.ndarray,
    is_test: np.ndarray,
    probe_spec: ProbeSpec,
    probe_device: str | None,
    *,
    cpus_per_task: float = 1.0,
    window: int | None = None,
    max_layer_bytes: float | None = None,
    rows_per_shard: int = 8192,
    shared_filesystem: bool = False,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """``core.results.build.LayerFitter``: (layer, its arrays) in the order of `layers`.

    At most `window` layers are out at once (default: as many as the cluster has task
    slots), so the object store holds a few layers, not the whole cache. A layer above
    `max_layer_bytes` (float64, default: no limit) takes the covariance route, its shards
    read by the tasks from the layer file with `shared_filesystem`, else put by the
    driver.
    """
    import ray

    gpus = 1.0 if probe_device is not None and probe_device.startswith("cuda") else 0.0
    task = ray.remote(_fit_one).options(num_cpus=cpus_per_task, num_gpus=gpus)
    if window is None:
        slots = ray.cluster_resources().get("GPU" if gpus else "CPU", 1.0)
        window = max(1, int(slots // (gpus or cpus_per_task)))
    layer_bytes = store.n_entities * store.d_model * 8
    big = max_layer_bytes is not None and layer_bytes > max_layer_bytes
    if big:
        log.info(
            "probes: %d layers of %.2f GB (float64) > %.2f GB per task: covariance route "
            "over shards of %d rows",
            len(layers),
            layer_bytes / 1e9,
            (max_layer_bytes or 0) / 1e9,
            rows_per_shard,
        )
        for layer in layers:
            yield (
                layer,
                _fit_big(store, layer, y, is_test, probe_spec, rows_per_shard, shared_filesystem),
            )
        return
    y_ref, test_ref = ray.put(y), ray.put(is_test)
    todo = deque(layers)
    out: deque[tuple[int, Any]] = deque()
    try:
        while todo or out:
            while todo and len(out) < window:
                layer = todo.popleft()
                rows = ray.put(np.asarray(store.layer(layer)))  # stored dtype: half the bytes
                out.append((layer, task.remote(rows, y_ref, test_ref, probe_spec, probe_device)))
            layer, ref = out.popleft()
            yield layer, ray.get(ref)
    finally:
        for _, ref in out:
            ray.cancel(ref)


def _fit_big(
    store: ActivationStore,
    layer: int,
    y: np.ndarray,
    is_test: np.ndarray,
    probe_spec: ProbeSpec,
    rows_per_shard: int,
    shared_filesystem: bool,
) -> dict[str, np.ndarray]:
    import ray

    bounds = row_bounds(store.n_entities, rows_per_shard)
    if shared_filesystem:
        path = str(store.folder / layer_name(layer))
        sources: list[Any] = [LayerSlice(path, a, b) for a, b in bounds]
    else:
        rows = store.layer(layer)  # memory-mapped: one shard in memory at a time
        sources = [ray.put(np.asarray(rows[a:b])) for a, b in bounds]
    arrays = fit_sharded(sources, bounds, y, is_test, probe_spec, ray_map())
    arrays.pop("cv_errors")
    return arrays
