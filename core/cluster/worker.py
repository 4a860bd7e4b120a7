"""The Ray actor of an activation build: one model replica, one planned batch at a time.

A batch is computed exactly as ``core.extract.store`` computes it in one process (the
same forward pass, the same maximum, the same storage dtype, the same cast), so its
rows are the same bytes when the torch thread count is the same.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.extract.activations import default_batching, forward_batch_tensor
from core.extract.models import MODEL_FACTORIES, LoadedModel, load_model
from core.extract.store import stored_batch_max

Loader = Callable[[], LoadedModel]

# (batch index, rows in the stored dtype or None when not finite, max as computed,
#  max once stored, seconds of compute)
BatchResult = tuple[int, np.ndarray | None, float, float, float]


def _load_replica(
    name: str,
    device: str,
    random_init: bool,
    seed: int,
    dtype: str,
    cache_root: str | None,
    trust_remote_code: bool,
    factory: Callable[[int], LoadedModel] | None,
) -> LoadedModel:
    if factory is not None:  # a model built in code (tests): the factory travels pickled
        built = factory(seed + (1000 if random_init else 0))
        return dataclasses.replace(built, random_init=random_init)
    return load_model(
        name,
        device=device,
        random_init=random_init,
        seed=seed,
        dtype=dtype,
        cache_root=Path(cache_root) if cache_root else None,
        trust_remote_code=trust_remote_code,
    )


def replica_loader(
    name: str,
    device: str = "auto",
    random_init: bool = False,
    seed: int = 0,
    dtype: str = "auto",
    cache_root: Path | None = None,
    trust_remote_code: bool = False,
) -> Loader:
    """A picklable function that loads the model on a worker as `load_model` would here.

    A model registered in code (``register_model_factory``) is not registered in a
    worker process, so its factory is sent along."""
    return functools.partial(
        _load_replica,
        name,
        device,
        random_init,
        seed,
        dtype,
        str(cache_root) if cache_root else None,
        trust_remote_code,
        MODEL_FACTORIES.get(name),
    )


class ModelWorker:
    """Holds one replica; run as a Ray actor (``ray.remote(ModelWorker)``)."""

    def __init__(self, loader: Loader, torch_threads: int | None = None) -> None:
        import torch

        if torch_threads:
            # the thread count decides the summation order, so the bytes of a batch
            torch.set_num_threads(torch_threads)
        self.loaded = loader()
        device = next(self.loaded.model.parameters()).device
        self.where = f"{socket.gethostname()}:{os.getpid()} {device}"

    def describe(self) -> tuple[LoadedModel, tuple[int, int], str]:
        """(the replica without its weights, its default batching, where it runs): the
        driver keys and plans the build from these without loading the model itself."""
        bare = dataclasses.replace(self.loaded, model=None)
        return bare, default_batching(self.loaded), self.where

    def compute(
        self, index: int, token_ids: list[list[int]], layers: list[int], storage_dtype: str
    ) -> BatchResult:
        import torch

        start = time.perf_counter()
        acts = forward_batch_tensor(self.loaded, token_ids, layers)
        batch_max = float(acts.abs().amax().float())
        if not np.isfinite(batch_max):
            return index, None, batch_max, batch_max, time.perf_counter() - start
        dtype, stored_max = stored_batch_max(batch_max, storage_dtype)
        rows: Any = acts.to(getattr(torch, dtype)).cpu().numpy()
        return index, np.asarray(rows), batch_max, stored_max, time.perf_counter() - start
