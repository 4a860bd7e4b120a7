"""A whole build on Ray: the actor pool for activations, then Ray tasks for the probes.

``core.results.build.build(config, cluster=RayBackend(...))`` keys, plans, writes and
verifies everything in this process, as a plain build does; only forward passes and
ridge sweeps run on the cluster.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.cluster.pool import ModelPool
from core.cluster.probes import fit_layers_on_ray
from core.cluster.session import ray_session
from core.cluster.worker import replica_loader
from core.common.config import ActivationSpec, BuildConfig, ProbeSpec
from core.extract.activations import Batch
from core.extract.models import LoadedModel
from core.extract.store import ActivationStore, FinishedBatch
from core.results.build import StageProgress
from core.results.probe_results import ProbeResults

log = logging.getLogger(__name__)

# Several GPUs per actor, for a model larger than one GPU (device_map="auto" over them).
GPUS_PER_WORKER_ENV = "SPACETIME_RAY_GPUS_PER_WORKER"


@dataclass
class RayBackend:
    """``core.results.build.Cluster`` on the Ray cluster this process is connected to."""

    pool: ModelPool
    probe_cpus: float = 1.0
    max_layer_bytes: float | None = None  # larger layers take the covariance route
    shared_filesystem: bool = False
    _described: tuple[LoadedModel, tuple[int, int]] | None = field(default=None, repr=False)

    def describe(self) -> tuple[LoadedModel, tuple[int, int]]:
        if self._described is None:
            self._described = self.pool.describe()
        return self._described

    def run_batches(
        self, batches: list[Batch], token_ids: list[list[int]], layers: list[int], dtype: str
    ) -> Iterator[FinishedBatch]:
        return self.pool.run_batches(batches, token_ids, layers, dtype)

    def fit_layers(
        self,
        store: ActivationStore,
        layers: list[int],
        y: np.ndarray,
        is_test: np.ndarray,
        probe_spec: ProbeSpec,
        probe_device: str | None,
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        self.pool.stop()  # the replicas' CPUs and GPUs go to the probe tasks
        return fit_layers_on_ray(
            store,
            layers,
            y,
            is_test,
            probe_spec,
            probe_device,
            cpus_per_task=self.probe_cpus,
            max_layer_bytes=self.max_layer_bytes,
            shared_filesystem=self.shared_filesystem,
        )

    def close(self) -> None:
        self.pool.stop()


def _smallest_node_memory() -> float | None:
    import ray

    memory = [n["Resources"].get("memory", 0.0) for n in ray.nodes() if n.get("Alive")]
    return min(memory) if memory else None


def backend_for(config: BuildConfig, torch_threads: int | None = None) -> RayBackend:
    """The pool a build of `config` gets on the connected cluster.

    With GPUs (and --device not cpu): one actor per GPU, or per $SPACETIME_RAY_GPUS_PER_WORKER
    GPUs. Without: one actor per `torch_threads` CPUs (default: this process's torch
    thread count, so each forward pass sums in the order a plain build here would).
    """
    import ray
    import torch

    resources: dict[str, Any] = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0.0)) if config.device != "cpu" else 0.0
    device = "cuda" if gpus else "cpu"
    threads = torch_threads or torch.get_num_threads()
    if gpus:
        per_worker = float(os.environ.get(GPUS_PER_WORKER_ENV) or 1)
        n_workers, cpus, gpu_share = max(1, int(gpus // per_worker)), 1.0, per_worker
    else:
        cpus = float(threads)
        n_workers, gpu_share = max(1, int(resources.get("CPU", 1.0) // cpus)), 0.0
    loader = replica_loader(
        config.model,
        device=device,
        random_init=config.random_init,
        seed=ActivationSpec.seed,
        dtype=config.dtype,
        cache_root=config.cache_root,
        trust_remote_code=config.trust_remote_code,
    )
    pool = ModelPool(
        loader,
        n_workers=n_workers,
        cpus_per_worker=cpus,
        gpus_per_worker=gpu_share,
        torch_threads=None if gpus else threads,
    )
    memory = _smallest_node_memory()
    log.info(
        "ray build: %d workers (%s, %s CPUs, %s GPUs each)",
        n_workers,
        device,
        cpus,
        gpu_share,
    )
    return RayBackend(pool, max_layer_bytes=memory / 2 if memory else None)


def build_on_ray(
    config: BuildConfig,
    address: str | None = None,
    progress: StageProgress | None = None,
    command: str = "",
) -> ProbeResults:
    """``core.results.build.build`` with its forward passes and probe fits on Ray.

    `address`: a cluster to join ("" or None: $RAY_ADDRESS, else a local Ray started in
    this process and stopped after the build)."""
    from core.results.build import build

    with ray_session(address or None):
        backend = backend_for(config)
        try:
            return build(config, progress=progress, command=command, cluster=backend)
        finally:
            backend.close()
