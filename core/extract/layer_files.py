"""The layer files of an activation build in progress, written in place batch by batch.

One ``layer_XXX.npy`` per layer, ``[n_entities, d_model]``, created sparse at full size;
each batch's activations go straight to its entities' rows. ``progress.json`` is the
ledger of batches whose rows are on disk: it is replaced (atomically) only after the
files are fsync'd, so whatever it lists survives a SIGKILL or a power cut, and a batch
written but not yet listed is simply computed again.

The files start float16 (unless float32 is asked for); the first batch that needs
float32 upcasts every file once, each replaced atomically. A build killed half-way
through that upcast leaves some files float32 and some float16; reopening finishes it.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.common.cache import io_threads, read_json_or_none, write_json_atomic

PLAN = "plan.json"
PROGRESS = "progress.json"


def layer_name(layer: int) -> str:
    return f"layer_{layer:03d}.npy"


def read_progress(partial: Path, key: str) -> dict[int, float] | None:
    """Committed batches (index -> largest stored |value|), or None if the ledger is
    missing, unreadable or belongs to another build."""
    data = read_json_or_none(Path(partial) / PROGRESS)
    if (
        not isinstance(data, dict)
        or data.get("key") != key
        or not isinstance(data.get("batches"), dict)
    ):
        return None
    try:
        return {int(index): float(value) for index, value in data["batches"].items()}
    except (TypeError, ValueError):
        return None


def write_progress(partial: Path, key: str, batches: dict[int, float]) -> None:
    write_json_atomic(
        Path(partial) / PROGRESS,
        {"key": key, "batches": {str(i): batches[i] for i in sorted(batches)}},
    )


# Copying a batch into the files is memory-bound page-cache work that numpy runs without
# the GIL, so threads split it by layer: a 7B batch (~270 MB, scattered 8 KB rows) takes
# ~250 ms on one thread here, which would rival the GPU's forward pass for that batch.
_SPLIT_BYTES = 8 << 20  # smaller batches are copied on the calling thread


class LayerFiles:
    """Memory-mapped layer files in a partial build folder."""

    def __init__(self, folder: Path, layers: list[int], arrays: list[np.memmap]) -> None:
        self.folder = Path(folder)
        self.layers = layers
        self.arrays = arrays
        self._pool: ThreadPoolExecutor | None = None

    @property
    def dtype(self) -> str:
        return str(self.arrays[0].dtype)

    @property
    def names(self) -> list[str]:
        return [layer_name(layer) for layer in self.layers]

    @classmethod
    def create(
        cls, folder: Path, layers: list[int], shape: tuple[int, int], dtype: str
    ) -> LayerFiles:
        """New files, with their disk space reserved now: a full disk is then an OSError
        here, not a SIGBUS when a memory-mapped write later finds no block to fill."""
        arrays = []
        for layer in layers:
            path = Path(folder) / layer_name(layer)
            arrays.append(np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape))
            reserve = getattr(os, "posix_fallocate", None)  # Linux; elsewhere the files stay sparse
            if reserve is not None:
                fd = os.open(path, os.O_RDWR)
                try:
                    reserve(fd, 0, path.stat().st_size)
                finally:
                    os.close(fd)
        return cls(folder, layers, arrays)

    @classmethod
    def reopen(cls, folder: Path, layers: list[int], shape: tuple[int, int]) -> LayerFiles | None:
        """The files of an interrupted build; None if any is missing or damaged."""
        arrays = []
        for layer in layers:
            try:
                array = np.load(
                    Path(folder) / layer_name(layer), mmap_mode="r+", allow_pickle=False
                )
            except (OSError, ValueError, EOFError):
                return None
            if array.shape != shape or str(array.dtype) not in ("float16", "float32"):
                return None
            arrays.append(array)
        files = cls(folder, layers, arrays)
        if any(str(a.dtype) == "float32" for a in arrays):
            files.to_float32()  # an upcast was interrupted: finish it
        return files

    def write(self, rows: np.ndarray, acts: np.ndarray) -> None:
        """Store `acts` [n_layers, len(rows), d_model] at `rows` of every layer file."""
        if acts.dtype == np.float32 and self.dtype == "float16":
            self.to_float32()
        if acts.shape[0] != len(self.arrays):
            raise ValueError(
                f"{acts.shape[0]} layers of activations for {len(self.arrays)} layer files"
            )

        def copy(j: int) -> None:
            self.arrays[j][rows] = acts[j]

        if acts.nbytes < _SPLIT_BYTES or io_threads() == 1:
            for j in range(len(self.arrays)):
                copy(j)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=io_threads(), thread_name_prefix="layer-files"
            )
        list(self._pool.map(copy, range(len(self.arrays))))  # re-raises the first failure

    def to_float32(self) -> None:
        """Upcast every float16 file (exact), each written aside and renamed over."""
        for j, layer in enumerate(self.layers):
            if self.arrays[j].dtype == np.float32:
                continue
            path = self.folder / layer_name(layer)
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as handle:
                np.save(handle, np.asarray(self.arrays[j], dtype=np.float32), allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            self.arrays[j] = np.load(path, mmap_mode="r+", allow_pickle=False)

    def sync(self) -> None:
        """Everything written so far is on disk once this returns.

        fsync on the file (not msync on the mapping): on Linux it writes back the pages
        dirtied through the mapping too, and os.fsync releases the GIL, so the thread
        driving the model is not held up meanwhile.
        """
        # One file at a time: concurrent fsyncs were ~3x slower on this project's disk
        # (32 files, 2.1 GB: 4.3 s against 1.5 s).
        for layer in self.layers:
            fd = os.open(self.folder / layer_name(layer), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.arrays = []


class Ledger:
    """Batches written to the layer files, committed to ``progress.json`` after an fsync.

    ``add`` runs on the writer thread. At most every ``interval`` seconds it hands the
    batches written so far to a background thread, which fsyncs the files and then
    replaces the ledger, while the writer goes on filling the page cache: the disk
    writes back one checkpoint while the next is produced, instead of the writer (and
    so the model) stopping for each fsync. A machine with much memory writes nothing
    back on its own until several GB are dirty, so a 7B build on a slow disk otherwise
    paid for its writes twice over (produce, then wait for the fsync). A failed fsync
    or ledger write is raised by the next ``add`` or by ``close``. With ``interval`` 0
    every batch gets its own checkpoint (the writer waits for the previous one), so the
    ledger's history does not depend on how fast the disk is.
    """

    def __init__(
        self,
        files: LayerFiles,
        partial: Path,
        key: str,
        committed: dict[int, float],
        interval: float,
        background: bool = True,
    ) -> None:
        self.files = files
        self.partial = Path(partial)
        self.key = key
        self.committed = committed  # on disk and listed; touched by one thread at a time
        self.written: dict[int, float] = {}  # in the files, not yet handed to the syncer
        self.interval = interval
        self.background = background  # False: fsync on the writer thread (bench.store compares)
        self._last = time.perf_counter()
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layer-sync")
        self._pending: Future[None] | None = None

    def add(self, index: int, batch_max: float) -> None:
        self.written[index] = batch_max
        # interval 0 asks for every batch in the ledger, one checkpoint each, so the writer
        # waits for the one in flight; otherwise a busy syncer just lets batches gather.
        if self._pending is not None and (self.interval <= 0 or self._pending.done()):
            self._pending.result()  # re-raises a failed checkpoint
            self._pending = None
        if self._pending is None and time.perf_counter() - self._last >= self.interval:
            batches, self.written = self.written, {}
            if self.background:
                self._pending = self._syncer.submit(self._commit, batches)
            else:
                self._commit(batches)
            self._last = time.perf_counter()

    def _commit(self, batches: dict[int, float]) -> None:
        self.files.sync()  # everything written before this call, these batches included
        self.committed.update(batches)
        write_progress(self.partial, self.key, self.committed)

    def close(self, commit: bool) -> None:
        """Wait for the checkpoint in flight; then, if `commit`, list every batch written.

        Without `commit` (the build already failed) a failed checkpoint is not raised
        again over the first error."""
        try:
            if self._pending is not None:
                try:
                    self._pending.result()
                except Exception:
                    if commit:
                        raise
            if commit:
                self._commit(self.written)
                self.written = {}
        finally:
            self._pending = None
            self._syncer.shutdown(wait=True)
