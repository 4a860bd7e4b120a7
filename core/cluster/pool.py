"""A pool of Ray actors serving a build's planned batches.

Rows go back to the driver, which writes them (``core.extract.store``): the layer
files, the ledger and the manifest then have one writer, exactly as in a single-process
build, and no shared filesystem is needed. A worker that dies (killed, lost node) has
the batches it held put back at the front of the queue, for any live worker, and is
replaced by a fresh actor.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.cluster.worker import BatchResult, Loader, ModelWorker
from core.extract.activations import Batch
from core.extract.models import LoadedModel
from core.extract.store import FinishedBatch

log = logging.getLogger(__name__)

# Throughput is logged this often while a build runs (and once at its end).
LOG_SECONDS = 30.0
# How long the replicas may take to load (a 70B model from a network disk: many minutes)
# before the build reports that the cluster cannot place or start them.
START_SECONDS = 3600.0


@dataclass
class _Slot:
    """One place in the pool: its current actor and what it has done."""

    actor: Any
    generation: int = 0
    where: str = "?"
    in_flight: int = 0
    batches: int = 0
    entities: int = 0
    busy: float = 0.0  # seconds of forward passes, as the worker timed them
    lost: int = 0  # actors of this slot that died


@dataclass
class ModelPool:
    """`n_workers` actors, each loading the model with `loader`.

    `depth` batches are queued per actor so it never waits for the driver between two;
    `max_replacements` dead actors are replaced before the build gives up.
    """

    loader: Loader
    n_workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    torch_threads: int | None = None
    depth: int = 2
    max_replacements: int = 4
    start_seconds: float = START_SECONDS
    slots: list[_Slot] = field(default_factory=list)
    replaced: int = 0

    # ------------------------------------------------------------------ actors
    def _new_actor(self) -> Any:
        import ray

        cls = ray.remote(ModelWorker).options(
            num_cpus=self.cpus_per_worker,
            num_gpus=self.gpus_per_worker,
            max_restarts=0,  # a dead actor is replaced by the pool, its batches re-queued
        )
        return cls.remote(self.loader, self.torch_threads)

    def start(self) -> ModelPool:
        """Start every actor now, so the replicas load in parallel."""
        if not self.slots:
            self.slots = [_Slot(self._new_actor()) for _ in range(self.n_workers)]
        return self

    def describe(self) -> tuple[LoadedModel, tuple[int, int]]:
        """The model as a worker loaded it (no weights) and its default batching."""
        import ray
        from ray.exceptions import GetTimeoutError

        self.start()
        try:
            described = ray.get(
                [slot.actor.describe.remote() for slot in self.slots], timeout=self.start_seconds
            )
        except GetTimeoutError as exc:
            raise RuntimeError(
                f"{len(self.slots)} ray workers ({self.cpus_per_worker} CPUs, "
                f"{self.gpus_per_worker} GPUs each) did not start within "
                f"{self.start_seconds:.0f} s; the cluster has {ray.cluster_resources()}"
            ) from exc
        for slot, (_, _, where) in zip(self.slots, described, strict=True):
            slot.where = where
        bare, batching, _ = described[0]
        log.info("ray pool: %d workers: %s", len(self.slots), [s.where for s in self.slots])
        return bare, batching

    def stop(self) -> None:
        """Kill the actors (their CPUs and GPUs are then free for the probe fits)."""
        import ray

        for slot in self.slots:
            ray.kill(slot.actor)
        self.slots = []

    def __enter__(self) -> ModelPool:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _replace(self, slot: _Slot, error: BaseException) -> None:
        slot.lost += 1
        if self.replaced >= self.max_replacements:
            raise RuntimeError(
                f"ray worker {slot.where} died and {self.replaced} workers were already "
                f"replaced; giving up: {error}"
            ) from error
        self.replaced += 1
        log.warning("ray worker %s died (%s); starting a replacement", slot.where, error)
        slot.actor = self._new_actor()
        slot.generation += 1
        slot.in_flight = 0
        slot.where = f"replacement {self.replaced} of {slot.where}"

    # ----------------------------------------------------------------- batches
    def run_batches(
        self,
        batches: list[Batch],
        token_ids: list[list[int]],
        layers: list[int],
        storage_dtype: str,
    ) -> Iterator[FinishedBatch]:
        """``core.extract.store.BatchRunner``: every batch, in the order they finish."""
        import ray
        from ray.exceptions import RayActorError

        self.start()
        queue = deque(batches)
        out: dict[Any, tuple[_Slot, int, Batch]] = {}  # ref -> (slot, generation, batch)
        start = last_log = time.perf_counter()

        def submit() -> None:
            for slot in self.slots:
                while queue and slot.in_flight < self.depth:
                    batch = queue.popleft()
                    ids = [token_ids[i] for i in batch.rows]
                    ref = slot.actor.compute.remote(batch.index, ids, layers, storage_dtype)
                    out[ref] = (slot, slot.generation, batch)
                    slot.in_flight += 1

        try:
            submit()
            while out:
                (ref,), _ = ray.wait(list(out), num_returns=1)
                slot, generation, batch = out.pop(ref)
                try:
                    result: BatchResult = ray.get(ref)
                except RayActorError as exc:
                    queue.appendleft(batch)  # computed again, by whichever worker is free
                    log.warning("batch %d lost with its worker; re-queued", batch.index)
                    if slot.generation == generation:  # not replaced yet by another loss
                        self._replace(slot, exc)
                    submit()
                    continue
                if slot.generation == generation:
                    slot.in_flight -= 1
                _, rows, batch_max, stored_max, seconds = result
                slot.batches += 1
                slot.entities += len(batch.rows)
                slot.busy += seconds
                submit()
                yield batch, _holder(rows), batch_max, stored_max
                if time.perf_counter() - last_log >= LOG_SECONDS:
                    self._log_throughput(time.perf_counter() - start)
                    last_log = time.perf_counter()
        finally:
            # Stopped early (Ctrl-C, a failed write): the batches still out are left to
            # finish and their rows dropped. Never ray.cancel them: a cancelled actor task
            # leaves a gap in the actor's call sequence, and the actor's next call (the
            # next build, describe()) then waits 30 s for it and fails with
            # ActorUnavailableError. At most `depth` batches per actor are left.
            out.clear()
            for slot in self.slots:
                slot.in_flight = 0
            self._log_throughput(time.perf_counter() - start)

    def _log_throughput(self, wall: float) -> None:
        for slot in self.slots:
            log.info(
                "ray worker %s: %d batches, %d entities, %.1f entities/s of forward time, "
                "%.1f entities/s of wall time%s",
                slot.where,
                slot.batches,
                slot.entities,
                slot.entities / slot.busy if slot.busy else 0.0,
                slot.entities / wall if wall else 0.0,
                f", {slot.lost} lost" if slot.lost else "",
            )

    def throughput(self) -> list[dict[str, Any]]:
        """Per worker: where it ran, batches, entities, forward seconds (bench, tests)."""
        return [
            {
                "where": s.where,
                "batches": s.batches,
                "entities": s.entities,
                "busy": s.busy,
                "lost": s.lost,
            }
            for s in self.slots
        ]


def _holder(rows: np.ndarray | None) -> Callable[[], np.ndarray]:
    """The rows, as the store's writer asks for them (already on this host)."""
    held = rows if rows is not None else np.empty(0)
    return lambda: held
