"""ActivationStore: per-layer activations on disk, built resumably and atomically.

Final layout (``<cache_root>/activations/<key>/``)::

    manifest.json        spec, model and dataset hashes, dtype, checksums
    layer_000.npy ...    [n_entities, d_model] per layer, memory-mapped on read

While building, finished batches are written as shards into
``activations/.partial-<key>/`` (each shard renamed into place only when complete),
so a killed build resumes at the first missing batch. Each batch is checked for
non-finite values and measured on the model's device; its shard is float16 when the
batch stays below ``FLOAT16_SAFE`` (float32 otherwise, or when float32 is asked for),
so a GPU copies and writes half the bytes. The layer files are float16 only when every
shard is; otherwise float32, with the float16 shards' values upcast exactly.
Consolidation writes the layer files into a temporary folder that is renamed to the
final key only at the end: a folder under the final key is always complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from core.activations import Batch, forward_batch_tensor, plan_batches, tokenize
from core.cache import (
    CacheError,
    artifact_dir,
    atomic_dir,
    read_manifest,
    verify_files,
    write_manifest,
)
from core.config import ActivationSpec
from core.datasets.schema import EntityDataset
from core.models import LoadedModel

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
        path = self.folder / f"layer_{layer:03d}.npy"
        if not path.is_file():
            raise CacheError(f"{path}: missing; rebuild with: {self.manifest.get('command', '')}")
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if array.shape != (self.n_entities, self.d_model):
            raise CacheError(f"{path}: shape {array.shape} != {(self.n_entities, self.d_model)}")
        return array


def _read_plan(path: Path) -> Any:
    """The recorded batch plan; None if unreadable (it then counts as changed)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _shard_path(partial: Path, batch: Batch) -> Path:
    return partial / f"shard_{batch.index:06d}.npy"


def _write_shard(partial: Path, batch: Batch, acts: np.ndarray) -> None:
    final = _shard_path(partial, batch)
    tmp = final.with_suffix(".tmp.npy")
    with open(tmp, "wb") as handle:
        np.save(handle, acts, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, final)


def _load_shard(partial: Path, batch: Batch, shape: tuple[int, int, int]) -> np.ndarray | None:
    path = _shard_path(partial, batch)
    if not path.is_file():
        return None
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        log.warning("discarding unreadable shard %s", path)
        path.unlink()
        return None
    if array.shape != shape:
        log.warning("discarding shard %s with shape %s != %s", path, array.shape, shape)
        path.unlink()
        return None
    return array


def choose_storage_dtype(max_abs: float, requested: str = "auto") -> str:
    """float16 when every value fits with headroom, else float32; never a silent inf."""
    if requested in ("float32", "float16") and not (requested == "float16" and max_abs > FLOAT16_SAFE):
        return requested
    if requested == "float16":
        raise ValueError(
            f"float16 storage asked for, but activations reach {max_abs:.0f} (> {FLOAT16_SAFE:.0f})"
        )
    return "float16" if np.isfinite(max_abs) and max_abs <= FLOAT16_SAFE else "float32"


def build_activations(
    spec: ActivationSpec,
    dataset: EntityDataset,
    loaded: LoadedModel,
    cache_root: Path,
    progress: ProgressFn | None = None,
    storage_dtype: str = "auto",
    command: str = "",
    stop_after_batches: int | None = None,
) -> ActivationStore:
    """Build (or resume, or reuse) the activation cache of `spec` on `dataset`."""
    key = spec.key(dataset.content_hash, loaded.weights_hash)
    final = artifact_dir(cache_root, "activations", key)
    partial = final.parent / f".partial-{key}"
    if (final / "manifest.json").is_file():
        try:
            store = ActivationStore(final, verify=True)
        except CacheError as exc:
            log.warning("%s; rebuilding it", exc)
        else:
            # A build killed between the final rename and the cleanup leaves its shards.
            shutil.rmtree(partial, ignore_errors=True)
            return store
    layers = list(spec.layers) if spec.layers is not None else list(range(loaded.n_layers))
    bad = [layer for layer in layers if not 0 <= layer < loaded.n_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range for {loaded.name} ({loaded.n_layers} blocks)")
    texts = dataset.texts(spec.prompt)
    token_ids = tokenize(loaded, texts)
    batches = plan_batches([len(t) for t in token_ids], spec.max_tokens_per_batch, spec.max_batch_size)
    partial.mkdir(parents=True, exist_ok=True)
    plan = {"key": key, "batches": [list(b.rows) for b in batches], "layers": layers}
    plan_path = partial / "plan.json"
    if plan_path.is_file() and _read_plan(plan_path) != plan:
        log.warning("batch plan changed (other batch settings) or unreadable; restarting %s", partial)
        shutil.rmtree(partial)
        partial.mkdir(parents=True)
    if not plan_path.is_file():
        tmp_plan = plan_path.with_suffix(".tmp")
        tmp_plan.write_text(json.dumps(plan))
        os.replace(tmp_plan, plan_path)

    import torch

    def compute(batch: Batch) -> tuple[np.ndarray, float]:
        """Forward one batch; check and measure it on the device; one copy to the host."""
        acts = forward_batch_tensor(loaded, [token_ids[i] for i in batch.rows], layers)
        batch_max = float(acts.abs().max())  # nan or inf when any value is non-finite
        if not np.isfinite(batch_max):
            raise FloatingPointError(
                f"non-finite activations from {loaded.name} in batch {batch.index} "
                f"(entities {[dataset.frame['name'].iloc[i] for i in batch.rows[:3]]}...)"
            )
        stored = acts.to(getattr(torch, choose_storage_dtype(batch_max, storage_dtype)))
        # the maximum of the stored values, as a resumed build reads it back from the shard
        return stored.cpu().numpy(), float(stored.abs().max())

    start = time.perf_counter()
    done = 0
    computed = 0
    max_abs = 0.0
    shard_dtypes: set[str] = set()
    # Writing a batch (fsync included) overlaps the next forward pass; one computed batch
    # at most waits for the writer, so memory stays bounded by two batches.
    pending: deque[Future[None]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer") as writer:
        for batch in batches:
            shape = (len(layers), len(batch.rows), loaded.d_model)
            acts = _load_shard(partial, batch, shape)
            if acts is None:
                if stop_after_batches is not None and computed >= stop_after_batches:
                    raise KeyboardInterrupt(f"stopped after {computed} batches (test hook)")
                acts, batch_max = compute(batch)
                pending.append(writer.submit(_write_shard, partial, batch, acts))
                computed += 1
                while len(pending) > 1:
                    pending.popleft().result()
            else:
                batch_max = float(np.abs(acts).max())
            max_abs = max(max_abs, batch_max)
            shard_dtypes.add(str(acts.dtype))
            done += len(batch.rows)
            if progress:
                progress(done, len(texts))
        while pending:
            pending.popleft().result()

    # A shard's dtype was fixed by its own batch when computed, so a resumed build (which
    # re-reads float16 shards, whose maxima are rounded) decides exactly as a fresh one.
    dtype = "float32" if "float32" in shard_dtypes or storage_dtype == "float32" else "float16"
    n = len(texts)
    with atomic_dir(final) as tmp:
        outs = [
            np.lib.format.open_memmap(tmp / f"layer_{layer:03d}.npy", mode="w+", dtype=dtype, shape=(n, loaded.d_model))
            for layer in layers
        ]
        for batch in batches:
            shard = np.load(_shard_path(partial, batch), mmap_mode="r", allow_pickle=False)
            rows = np.asarray(batch.rows)
            for j, out in enumerate(outs):
                out[rows] = shard[j]
        for out in outs:
            out.flush()
        del outs
        write_manifest(
            tmp,
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
                "n_entities": n,
                "d_model": loaded.d_model,
                "seconds": round(time.perf_counter() - start, 2),
                "command": command,
            },
        )
    shutil.rmtree(partial, ignore_errors=True)
    log.info("activations %s: %d entities, %d layers, %s", key, n, len(layers), dtype)
    return ActivationStore(final)


def find_partial(cache_root: Path) -> list[Path]:
    base = Path(cache_root) / "activations"
    return sorted(base.glob(".partial-*")) if base.is_dir() else []
