"""LayerFiles: batches written in place at their rows, on one thread or split by layer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.extract.layer_files import _SPLIT_BYTES, LayerFiles, Ledger, read_progress


@pytest.mark.parametrize(
    "rows_per_batch", [16, 2048]
)  # 16 KB (one thread) and 16 MB (threads) per batch
def test_batches_land_at_their_rows(tmp_path: Path, rows_per_batch: int) -> None:
    n, layers, d = 4 * rows_per_batch, [0, 3, 5, 7], 1024
    rng = np.random.default_rng(0)
    expected = rng.standard_normal((len(layers), n, d)).astype(np.float16)
    files = LayerFiles.create(tmp_path, layers, (n, d), "float16")
    order = rng.permutation(n)
    for lo in range(0, n, rows_per_batch):
        rows = np.sort(order[lo : lo + rows_per_batch])
        assert (expected[:, rows].nbytes >= _SPLIT_BYTES) == (rows_per_batch == 2048)
        files.write(rows, expected[:, rows])
    files.sync()
    files.close()
    for j, layer in enumerate(layers):
        assert np.array_equal(np.load(tmp_path / f"layer_{layer:03d}.npy"), expected[j])


def test_a_float32_batch_upcasts_the_files_exactly(tmp_path: Path) -> None:
    files = LayerFiles.create(tmp_path, [0, 1], (6, 4), "float16")
    quiet = np.full((2, 3, 4), 0.1, dtype=np.float16)
    loud = np.full((2, 3, 4), 1e6, dtype=np.float32)
    files.write(np.array([0, 2, 4]), quiet)
    files.write(np.array([1, 3, 5]), loud)
    assert files.dtype == "float32"
    files.close()
    layer = np.load(tmp_path / "layer_001.npy")
    assert layer.dtype == np.float32
    assert np.array_equal(layer[[0, 2, 4]], quiet[1].astype(np.float32)) and np.all(
        layer[[1, 3, 5]] == 1e6
    )


def test_a_batch_with_the_wrong_layer_count_is_refused(tmp_path: Path) -> None:
    files = LayerFiles.create(tmp_path, [0, 1, 2], (4, 2), "float16")
    with pytest.raises(ValueError, match="2 layers of activations for 3 layer files"):
        files.write(np.array([0]), np.zeros((2, 1, 2), dtype=np.float16))


class GatedFiles:
    """Stands in for LayerFiles: each fsync waits until the test opens the gate."""

    def __init__(self, fail: bool = False) -> None:
        self.gate = threading.Event()
        self.syncing = threading.Event()
        self.fail = fail
        self.syncs = 0

    def sync(self) -> None:
        self.syncs += 1
        self.syncing.set()
        assert self.gate.wait(10)
        if self.fail:
            raise OSError(28, "No space left on device")


def test_ledger_fsyncs_in_the_background_and_lists_only_what_was_synced(tmp_path: Path) -> None:
    files = GatedFiles()
    ledger = Ledger(files, tmp_path, "k", {}, interval=1e-9)  # type: ignore[arg-type]
    ledger.add(0, 1.0)  # hands batch 0 to the syncer
    assert files.syncing.wait(10)
    start = time.perf_counter()
    ledger.add(1, 2.0)  # the writer is not held up by the fsync in flight
    ledger.add(2, 3.0)
    assert time.perf_counter() - start < 1.0
    assert read_progress(tmp_path, "k") is None  # nothing listed before its fsync ends
    files.gate.set()
    ledger._pending.result()  # type: ignore[union-attr]
    assert read_progress(tmp_path, "k") == {0: 1.0}  # 1 and 2 came after that fsync began
    ledger.close(commit=True)
    assert read_progress(tmp_path, "k") == {0: 1.0, 1: 2.0, 2: 3.0}


def test_ledger_with_interval_zero_checkpoints_every_batch(tmp_path: Path) -> None:
    # The reliability tests kill a build at the n-th ledger write, so with interval 0 the
    # number of checkpoints must not depend on how long each fsync takes.
    files = GatedFiles()
    ledger = Ledger(files, tmp_path, "k", {}, interval=0.0)  # type: ignore[arg-type]
    ledger.add(0, 1.0)
    assert files.syncing.wait(10)
    second = threading.Thread(target=ledger.add, args=(1, 2.0))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waits for batch 0's checkpoint rather than letting 1 gather
    files.gate.set()
    second.join(10)
    for index in range(2, 6):
        ledger.add(index, 1.0)
    ledger._pending.result()  # type: ignore[union-attr]
    assert files.syncs == 6
    ledger.close(commit=True)
    assert read_progress(tmp_path, "k") == {0: 1.0, 1: 2.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0}


def test_ledger_raises_a_failed_checkpoint(tmp_path: Path) -> None:
    files = GatedFiles(fail=True)
    files.gate.set()
    ledger = Ledger(files, tmp_path, "k", {}, interval=0.0)  # type: ignore[arg-type]
    ledger.add(0, 1.0)
    ledger._pending.exception()  # type: ignore[union-attr]  # wait for it to fail
    with pytest.raises(OSError, match="No space left"):
        ledger.add(1, 1.0)
    assert read_progress(tmp_path, "k") is None
    ledger.close(commit=False)  # after a failed build: the first error stands


def test_ledger_waits_for_its_interval(tmp_path: Path) -> None:
    files = GatedFiles()
    files.gate.set()
    ledger = Ledger(files, tmp_path, "k", {}, interval=3600.0)  # type: ignore[arg-type]
    ledger.add(0, 1.0)
    ledger.add(1, 1.0)
    assert not files.syncing.is_set() and read_progress(tmp_path, "k") is None
    ledger.close(commit=True)  # a stop always lists what was written
    assert read_progress(tmp_path, "k") == {0: 1.0, 1: 1.0}
