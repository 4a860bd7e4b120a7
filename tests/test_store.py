"""Activation store: values, dtype choice, resume after interruption, atomicity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.activations import last_token_activations
from core.cache import read_manifest
from core.config import ActivationSpec
from core.store import ActivationStore, build_activations, choose_storage_dtype, find_partial

ROOT = Path(__file__).resolve().parent.parent


def spec_for(dataset, **kw):  # type: ignore[no-untyped-def]
    return ActivationSpec(model="tiny-llama", dataset=dataset.name, max_batch_size=8, **kw)


def layer_bytes(store: ActivationStore) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.folder.glob("layer_*.npy"))}


def test_store_matches_direct_extraction(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    store = build_activations(spec_for(places), places, tiny, cache_root)
    direct = last_token_activations(tiny, places.texts("empty"))
    assert store.layers == [0, 1, 2]
    for layer in store.layers:
        np.testing.assert_allclose(np.asarray(store.layer(layer), dtype=np.float32), direct[layer], rtol=2e-3, atol=2e-3)
    manifest = read_manifest(store.folder)
    assert manifest["storage_dtype"] == "float16"
    assert manifest["dataset_hash"] == places.content_hash
    assert manifest["weights_hash"] == tiny.weights_hash
    assert set(manifest["files"]) == {"layer_000.npy", "layer_001.npy", "layer_002.npy"}
    assert not find_partial(cache_root)


def test_prompt_changes_activations(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    a = build_activations(spec_for(places), places, tiny, cache_root)
    b = build_activations(spec_for(places, prompt="coords"), places, tiny, cache_root)
    assert a.folder != b.folder
    assert not np.allclose(a.layer(2), b.layer(2))


@pytest.mark.usefixtures("one_torch_thread")
def test_resume_after_interruption_is_identical(tiny, places, cache_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reference = build_activations(spec_for(places), places, tiny, tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        build_activations(spec_for(places), places, tiny, cache_root, stop_after_batches=3)
    partial = find_partial(cache_root)
    assert len(partial) == 1 and len(list(partial[0].glob("shard_*.npy"))) == 3
    # a partial build is never visible as a finished artifact
    assert not any((cache_root / "activations").glob("tiny*/manifest.json"))
    resumed = build_activations(spec_for(places), places, tiny, cache_root)
    assert layer_bytes(resumed) == layer_bytes(reference)


@pytest.mark.usefixtures("one_torch_thread")
def test_truncated_shard_is_recomputed(tiny, places, cache_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reference = build_activations(spec_for(places), places, tiny, tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        build_activations(spec_for(places), places, tiny, cache_root, stop_after_batches=2)
    shard = sorted(find_partial(cache_root)[0].glob("shard_*.npy"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    resumed = build_activations(spec_for(places), places, tiny, cache_root)
    assert layer_bytes(resumed) == layer_bytes(reference)


def test_float16_overflow_falls_back_to_float32(places, cache_root) -> None:  # type: ignore[no-untyped-def]
    import torch

    from core.tiny import tiny_model

    loud = tiny_model(seed=3)
    with torch.no_grad():
        loud.model.model.embed_tokens.weight.mul_(1e8)  # residual stream far above 65,504
    store = build_activations(spec_for(places), places, loud, cache_root)
    manifest = read_manifest(store.folder)
    assert manifest["storage_dtype"] == "float32"
    assert manifest["max_abs"] > 65504
    assert np.isfinite(store.layer(0)).all()


def test_choose_storage_dtype() -> None:
    assert choose_storage_dtype(43000.0) == "float16"
    assert choose_storage_dtype(70000.0) == "float32"
    assert choose_storage_dtype(float("inf")) == "float32"
    with pytest.raises(ValueError, match="float16"):
        choose_storage_dtype(70000.0, "float16")


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from core.config import ActivationSpec
from core.store import build_activations
from core.tiny import tiny_model
from tests.conftest import synthetic_places
ds = synthetic_places(400)
slow = float(sys.argv[2])
def progress(done, total):
    time.sleep(slow)
build_activations(ActivationSpec(model="tiny-llama", dataset=ds.name, max_batch_size=8), ds, tiny_model(), Path(sys.argv[1]), progress=progress)
"""


def test_sigkill_then_resume_is_byte_identical(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ref_root, root = tmp_path / "ref", tmp_path / "killed"
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(ref_root), "0"], check=True, env=env, cwd=ROOT)
    for _attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(root), "0.05"], env=env, cwd=ROOT)
        deadline = time.time() + 60
        while time.time() < deadline:
            shards = list((root / "activations").glob(".partial-*/shard_*.npy"))
            if len(shards) >= 3 or proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert find_partial(root), "the build should have been killed part-way"
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(root), "0"], check=True, env=env, cwd=ROOT)
    ref = ActivationStore(next((ref_root / "activations").glob("tiny*")))
    got = ActivationStore(next((root / "activations").glob("tiny*")))
    assert layer_bytes(got) == layer_bytes(ref)
    assert not find_partial(root)
