"""LayerFiles: batches written in place at their rows, on one thread or split by layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.layer_files import _SPLIT_BYTES, LayerFiles


@pytest.mark.parametrize("rows_per_batch", [16, 2048])  # 16 KB (one thread) and 16 MB (threads) per batch
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
    assert np.array_equal(layer[[0, 2, 4]], quiet[1].astype(np.float32)) and np.all(layer[[1, 3, 5]] == 1e6)


def test_a_batch_with_the_wrong_layer_count_is_refused(tmp_path: Path) -> None:
    files = LayerFiles.create(tmp_path, [0, 1, 2], (4, 2), "float16")
    with pytest.raises(ValueError, match="2 layers of activations for 3 layer files"):
        files.write(np.array([0]), np.zeros((2, 1, 2), dtype=np.float16))
