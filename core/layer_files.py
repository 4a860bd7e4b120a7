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

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

PLAN = "plan.json"
PROGRESS = "progress.json"


def layer_name(layer: int) -> str:
    return f"layer_{layer:03d}.npy"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` to a temporary file, fsync it and rename it over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or unreadable (a torn write)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_progress(partial: Path, key: str) -> dict[int, float] | None:
    """Committed batches (index -> largest stored |value|), or None if the ledger is
    missing, unreadable or belongs to another build."""
    data = read_json(Path(partial) / PROGRESS)
    if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("batches"), dict):
        return None
    try:
        return {int(index): float(value) for index, value in data["batches"].items()}
    except (TypeError, ValueError):
        return None


def write_progress(partial: Path, key: str, batches: dict[int, float]) -> None:
    write_json_atomic(Path(partial) / PROGRESS, {"key": key, "batches": {str(i): batches[i] for i in sorted(batches)}})


class LayerFiles:
    """Memory-mapped layer files in a partial build folder."""

    def __init__(self, folder: Path, layers: list[int], shape: tuple[int, int], arrays: list[np.memmap]) -> None:
        self.folder = Path(folder)
        self.layers = layers
        self.shape = shape
        self.arrays = arrays

    @property
    def dtype(self) -> str:
        return str(self.arrays[0].dtype)

    @property
    def names(self) -> list[str]:
        return [layer_name(layer) for layer in self.layers]

    @classmethod
    def create(cls, folder: Path, layers: list[int], shape: tuple[int, int], dtype: str) -> LayerFiles:
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
        return cls(folder, layers, shape, arrays)

    @classmethod
    def reopen(cls, folder: Path, layers: list[int], shape: tuple[int, int]) -> LayerFiles | None:
        """The files of an interrupted build; None if any is missing or damaged."""
        arrays = []
        for layer in layers:
            try:
                array = np.load(Path(folder) / layer_name(layer), mmap_mode="r+", allow_pickle=False)
            except (OSError, ValueError, EOFError):
                return None
            if array.shape != shape or str(array.dtype) not in ("float16", "float32"):
                return None
            arrays.append(array)
        files = cls(folder, layers, shape, arrays)
        if any(str(a.dtype) == "float32" for a in arrays):
            files.to_float32()  # an upcast was interrupted: finish it
        return files

    def write(self, rows: np.ndarray, acts: np.ndarray) -> None:
        """Store `acts` [n_layers, len(rows), d_model] at `rows` of every layer file."""
        if acts.dtype == np.float32 and self.dtype == "float16":
            self.to_float32()
        for array, values in zip(self.arrays, acts, strict=True):
            array[rows] = values

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
        for layer in self.layers:
            fd = os.open(self.folder / layer_name(layer), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        self.arrays = []
