"""ActivationStore: per-layer activations on disk, built resumably and atomically.

Final layout (``<cache_root>/activations/<key>/``)::

    manifest.json        spec, model and dataset hashes, dtype, checksums
    layer_000.npy ...    [n_entities, d_model] per layer, memory-mapped on read

While building, the layer files live in ``activations/.partial-<key>/`` and each
finished batch is written straight into them, at its entities' rows: there is no
second pass that gathers shards into layer files, so a 7B-sized build writes its
~10 GB once. ``progress.json`` lists the batches whose rows are on disk (fsync'd
before the list is replaced, on a background thread while the next batches are
written); a killed build resumes after the last checkpoint, taken every
``CHECKPOINT_SECONDS`` and whenever a build stops. When every batch is
in, the manifest is written inside the partial folder and the folder is renamed to
the final key: a folder under the final key is always complete.

Each batch is checked for non-finite values and measured on the model's device (on
CUDA while the next batch runs); it is stored as float16 when it stays below
``FLOAT16_SAFE`` (else float32, or float32 when asked for), so a GPU copies half the
bytes. The layer files are float16 until a batch needs float32; they are then upcast
(exactly) once. On CUDA, a batch's copy to pinned host memory runs on a side stream,
overlapping the next forward pass.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from core.common.cache import (
    MANIFEST,
    CacheError,
    artifact_dir,
    build_lock,
    file_checksums,
    read_json_or_none,
    read_manifest,
    verify_files,
    write_json_atomic,
    write_manifest,
)
from core.common.config import ActivationSpec
from core.data.schema import EntityDataset
from core.extract.activations import (
    Batch,
    HostCopier,
    forward_batch_tensor,
    plan_batches,
    start_token_name,
    tokenize,
)
from core.extract.layer_files import (
    PLAN,
    PROGRESS,
    LayerFiles,
    Ledger,
    layer_name,
    read_progress,
    write_progress,
)
from core.extract.models import LoadedModel

log = logging.getLogger(__name__)

FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504
# Keep headroom below float16's limit: values this close lose all but ~3 digits anyway.
FLOAT16_SAFE = 0.99 * FLOAT16_MAX

ProgressFn = Callable[[int, int], None]


class ActivationStore:
    """Read access to a finished activation cache."""

    def __init__(self, folder: Path, verify: bool = False) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        if self.manifest.get("artifact") != "activations":
            raise CacheError(f"{self.folder}: not an activations artifact")
        if verify:
            verify_files(self.folder, self.manifest, str(self.manifest.get("command", "")))
        self.layers: list[int] = [int(x) for x in self.manifest["layers"]]
        self.n_entities = int(self.manifest["n_entities"])
        self.d_model = int(self.manifest["d_model"])

    def layer(self, layer: int) -> np.ndarray:
        """[n_entities, d_model] memory-mapped (stored dtype)."""
        path = self.folder / layer_name(layer)
        if not path.is_file():
            raise CacheError(f"{path}: missing; rebuild with: {self.manifest.get('command', '')}")
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if array.shape != (self.n_entities, self.d_model):
            raise CacheError(f"{path}: shape {array.shape} != {(self.n_entities, self.d_model)}")
        return array


def choose_storage_dtype(max_abs: float, requested: str = "auto") -> str:
    """float16 when every value fits with headroom, else float32; never a silent inf."""
    if requested in ("float32", "float16") and not (
        requested == "float16" and max_abs > FLOAT16_SAFE
    ):
        return requested
    if requested == "float16":
        raise ValueError(
            f"float16 storage asked for, but activations reach {max_abs:.0f} (> {FLOAT16_SAFE:.0f})"
        )
    return "float16" if np.isfinite(max_abs) and max_abs <= FLOAT16_SAFE else "float32"


# A killed build loses about this much computed work (plus the checkpoint in flight);
# each checkpoint fsyncs the layer files (in the background, see Ledger), so checkpointing
# every batch would keep a small model's disk busy for nothing.
CHECKPOINT_SECONDS = 5.0


def _promote(partial: Path, final: Path) -> None:
    """Rename a complete partial build (manifest written) to its final key."""
    for name in (PLAN, PROGRESS):
        (partial / name).unlink(missing_ok=True)
    if final.exists():
        shutil.rmtree(final)  # a damaged earlier build, already reported
    os.replace(partial, final)


def _start_partial(
    partial: Path,
    key: str,
    plan: dict[str, Any],
    layers: list[int],
    shape: tuple[int, int],
    dtype: str,
) -> tuple[LayerFiles, dict[int, float]]:
    """Resume the partial build of `key` if its plan, ledger and files are intact, else
    start it afresh: plan first, then the files, then an empty ledger (which marks the
    folder as usable)."""
    if partial.is_dir():
        committed = read_progress(partial, key)
        # the plan first: reopening may finish an interrupted upcast, wasted on a stale plan
        if committed is not None and read_json_or_none(partial / PLAN) == plan:
            files = LayerFiles.reopen(partial, layers, shape)
            if files is not None:
                return files, committed
        log.warning(
            "partial build %s cannot be resumed (no readable ledger, another batch plan "
            "or a damaged layer file); restarting it",
            partial.name,
        )
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write_json_atomic(partial / PLAN, plan)
    try:
        files = LayerFiles.create(partial, layers, shape, dtype)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        need = len(layers) * shape[0] * shape[1] * np.dtype(dtype).itemsize
        free = shutil.disk_usage(partial.parent).free
        raise CacheError(
            f"{partial.parent}: the activation cache needs {need / 1e9:.2f} GB "
            f"({len(layers)} layers x {shape[0]} entities x {shape[1]} {dtype}), "
            f"{free / 1e9:.2f} GB is free; free some space "
            "(python -m core list shows the cache) or put the cache on another disk "
            "(SPACETIME_CACHE or --cache-root)"
        ) from exc
    write_progress(partial, key, {})
    return files, {}


def resolve_spec(spec: ActivationSpec, loaded: LoadedModel) -> ActivationSpec:
    """`spec` with the compute dtype and start token the model really uses: two builds
    that compute differently never share a cache key."""
    return dataclasses.replace(spec, dtype=loaded.dtype, start_token=start_token_name(loaded))


def build_activations(
    spec: ActivationSpec,
    dataset: EntityDataset,
    loaded: LoadedModel,
    cache_root: Path,
    progress: ProgressFn | None = None,
    storage_dtype: str = "auto",
    command: str = "",
    overlap_copies: bool = True,
    runner: BatchRunner | None = None,
) -> ActivationStore:
    """Build (or resume, or reuse) the activation cache of `spec` on `dataset`.

    ``overlap_copies=False`` copies each batch to the host synchronously on a GPU (the
    values are the same; ``bench.extract --variants`` times the difference).
    ``runner`` computes the batches elsewhere (``core.cluster``: a pool of Ray actors);
    `loaded` then needs its tokenizer and dimensions only, and this process still
    writes every row, the ledger and the manifest.
    """
    spec = resolve_spec(spec, loaded)
    key = spec.key(dataset.content_hash, loaded.weights_hash)
    with build_lock(cache_root, "activations", key):
        return _build_locked(
            key,
            spec,
            dataset,
            loaded,
            cache_root,
            progress,
            storage_dtype,
            command,
            overlap_copies,
            runner,
        )


def _build_locked(
    key: str,
    spec: ActivationSpec,
    dataset: EntityDataset,
    loaded: LoadedModel,
    cache_root: Path,
    progress: ProgressFn | None,
    storage_dtype: str,
    command: str,
    overlap_copies: bool,
    runner: BatchRunner | None = None,
) -> ActivationStore:
    start = time.perf_counter()
    final = artifact_dir(cache_root, "activations", key)
    partial = final.parent / f".partial-{key}"
    if (final / MANIFEST).is_file():
        try:
            return ActivationStore(final, verify=True)
        except CacheError as exc:
            log.warning("%s; rebuilding it", exc)
    if (partial / MANIFEST).is_file():  # complete, killed before its rename
        try:
            ActivationStore(partial, verify=True)
        except CacheError as exc:
            log.warning("%s; rebuilding it", exc)
            shutil.rmtree(partial)
        else:
            _promote(partial, final)
            return ActivationStore(final)
    layers = list(spec.layers) if spec.layers is not None else list(range(loaded.n_layers))
    bad = [layer for layer in layers if not 0 <= layer < loaded.n_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range for {loaded.name} ({loaded.n_layers} blocks)")
    texts = dataset.texts(spec.prompt)
    token_ids = tokenize(loaded, texts)
    batches = plan_batches(
        [len(t) for t in token_ids], spec.max_tokens_per_batch, spec.max_batch_size
    )
    plan = {"key": key, "batches": [list(b.rows) for b in batches], "layers": layers}
    shape = (len(texts), loaded.d_model)
    first_dtype = "float32" if storage_dtype == "float32" else "float16"
    final.parent.mkdir(parents=True, exist_ok=True)
    files, committed = _start_partial(partial, key, plan, layers, shape, first_dtype)

    ledger = Ledger(files, partial, key, committed, CHECKPOINT_SECONDS)

    def store(batch: Batch, host: Callable[[], np.ndarray], batch_max: float) -> None:
        """Runs on the writer thread, which alone touches the files (the ledger's syncer
        only fsyncs them)."""
        files.write(np.asarray(batch.rows), host())
        ledger.add(batch.index, batch_max)

    # where this run's time goes (a resumed run counts only its own batches)
    timings = {"setup": time.perf_counter() - start, "forward": 0.0, "write_wait": 0.0}
    done = sum(len(b.rows) for b in batches if b.index in committed)
    todo = [b for b in batches if b.index not in committed]
    if runner is None:
        produced = _local_batches(loaded, token_ids, todo, layers, storage_dtype, overlap_copies)
    else:
        produced = runner(todo, token_ids, layers, storage_dtype)
    # Writing a batch overlaps the next forward pass; one finished batch at most waits
    # for the writer, so memory stays bounded by a few batches.
    pending: deque[Future[None]] = deque()
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layer-writer")
    try:
        t0 = time.perf_counter()
        for batch, host, batch_max, stored_max in produced:
            if not np.isfinite(batch_max):
                raise FloatingPointError(
                    f"non-finite activations from {loaded.name} in batch {batch.index} "
                    f"(entities {[dataset.frame['name'].iloc[i] for i in batch.rows[:3]]}...)"
                )
            pending.append(writer.submit(store, batch, host, stored_max))
            t1 = time.perf_counter()
            while len(pending) > 1:
                pending.popleft().result()
            timings["forward"] += t1 - t0
            timings["write_wait"] += time.perf_counter() - t1
            done += len(batch.rows)
            if progress:
                progress(done, len(texts))
            t0 = time.perf_counter()
    finally:
        # Keep whatever reached the files, on success, Ctrl-C or a failed batch alike.
        t_sync = time.perf_counter()
        close_source = getattr(produced, "close", None)
        if close_source is not None:
            close_source()  # a remote runner drops the batches it still has out
        writer.shutdown(wait=True)
        failed = next((f.exception() for f in pending if f.exception() is not None), None)
        try:
            ledger.close(commit=failed is None)
        finally:
            dtype, names = files.dtype, files.names
            files.close()
    if failed is not None:
        raise failed

    timings["sync"] = time.perf_counter() - t_sync  # the last writes and their fsync
    t_finish = time.perf_counter()
    checksums = file_checksums(partial, names)
    timings["finish"] = time.perf_counter() - t_finish
    max_abs = max(committed.values(), default=0.0)
    write_manifest(
        partial,
        {
            "artifact": "activations",
            "key": key,
            "spec": spec.to_dict(),
            "model": loaded.name,
            "weights_hash": loaded.weights_hash,
            "compute_dtype": loaded.dtype,
            "storage_dtype": dtype,
            "max_abs": max_abs,
            "dataset": dataset.name,
            "dataset_hash": dataset.content_hash,
            "prompt_text": dataset.prompt_text(spec.prompt),
            "layers": layers,
            "n_layers_model": loaded.n_layers,
            "n_entities": len(texts),
            "d_model": loaded.d_model,
            "seconds": round(time.perf_counter() - start, 2),
            "seconds_by_phase": {phase: round(value, 2) for phase, value in timings.items()},
            "files": checksums,
            "command": command,
        },
        with_checksums=False,
    )
    _promote(partial, final)
    log.info("activations %s: %d entities, %d layers, %s", key, len(texts), len(layers), dtype)
    return ActivationStore(final)


# (batch, a function giving its rows [n_layers, n_rows, d_model] in the stored dtype,
#  largest |value| as computed (NaN/inf if any is not finite), the same once stored)
FinishedBatch = tuple[Batch, Callable[[], np.ndarray], float, float]
# (batches to compute, token ids of every text, layers, storage dtype) -> finished batches,
# in any order
BatchRunner = Callable[[list[Batch], list[list[int]], list[int], str], Iterator[FinishedBatch]]


def stored_batch_max(batch_max: float, storage_dtype: str) -> tuple[str, float]:
    """(dtype a batch is stored in, its largest |value| once stored). Rounding is
    monotonic, so the stored maximum is the rounded one (no second pass over the batch)."""
    dtype = choose_storage_dtype(batch_max, storage_dtype)
    return dtype, float(np.asarray(batch_max).astype(dtype))


def _local_batches(
    loaded: LoadedModel,
    token_ids: list[list[int]],
    todo: list[Batch],
    layers: list[int],
    storage_dtype: str,
    overlap_copies: bool,
) -> Iterator[FinishedBatch]:
    """The batches computed on `loaded`'s device, in plan order.

    Each batch is launched before the previous one is checked and copied, so on CUDA
    the device always has a forward pass queued (a copy buffer is reused two batches
    later, by which time the writer is done with it)."""
    import torch

    device = next(loaded.model.parameters()).device
    copier = HostCopier(device, overlap=overlap_copies)
    in_flight: tuple[Batch, Any, Callable[[], float]] | None = None
    for batch in [*todo, None]:
        launched = None
        if batch is not None:  # queue its forward pass and maximum (no wait on CUDA)
            acts = forward_batch_tensor(loaded, [token_ids[i] for i in batch.rows], layers)
            launched = batch, acts, copier.peak(acts)
        if in_flight is not None:
            done_batch, done_acts, peak = in_flight
            batch_max = peak()
            if not np.isfinite(batch_max):
                yield done_batch, lambda: np.empty(0), batch_max, batch_max
                return
            dtype, stored_max = stored_batch_max(batch_max, storage_dtype)
            host = copier.start(done_acts.to(getattr(torch, dtype)))
            yield done_batch, host, batch_max, stored_max
        in_flight = launched


def partial_status(partial: Path) -> tuple[int, int] | None:
    """(batches on disk, batches planned) of an unfinished build; None if unreadable."""
    plan = read_json_or_none(Path(partial) / PLAN)
    done = read_progress(partial, Path(partial).name.removeprefix(".partial-"))
    if not isinstance(plan, dict) or not isinstance(plan.get("batches"), list) or done is None:
        return None
    return len(done), len(plan["batches"])


def find_partial(cache_root: Path) -> list[Path]:
    base = Path(cache_root) / "activations"
    return sorted(base.glob(".partial-*")) if base.is_dir() else []
