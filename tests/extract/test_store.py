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

import core.extract.store
from core.common.cache import read_manifest
from core.common.config import ActivationSpec
from core.extract.activations import last_token_activations
from core.extract.layer_files import read_progress
from core.extract.store import (
    ActivationStore,
    build_activations,
    choose_storage_dtype,
    find_partial,
)
from tests.support.interrupt import stop_after

ROOT = Path(__file__).resolve().parents[2]


def spec_for(dataset, **kw):  # type: ignore[no-untyped-def]
    return ActivationSpec(model="tiny-llama", dataset=dataset.name, max_batch_size=8, **kw)


def layer_bytes(store: ActivationStore) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.folder.glob("layer_*.npy"))}


def test_store_matches_direct_extraction(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    store = build_activations(spec_for(places), places, tiny, cache_root)
    direct = last_token_activations(tiny, places.texts("empty"))
    assert store.layers == [0, 1, 2]
    for layer in store.layers:
        np.testing.assert_allclose(
            np.asarray(store.layer(layer), dtype=np.float32), direct[layer], rtol=2e-3, atol=2e-3
        )
    manifest = read_manifest(store.folder)
    assert manifest["storage_dtype"] == "float16"
    assert manifest["dataset_hash"] == places.content_hash
    assert manifest["weights_hash"] == tiny.weights_hash
    assert set(manifest["files"]) == {"layer_000.npy", "layer_001.npy", "layer_002.npy"}
    assert not find_partial(cache_root)
    # the phases account for the build's time (checksums included), and no more
    phases = manifest["seconds_by_phase"]
    assert set(phases) == {"setup", "forward", "write_wait", "sync", "finish"}
    assert sum(phases.values()) <= manifest["seconds"] + 0.05
    assert phases["forward"] > 0


def test_prompt_changes_activations(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    a = build_activations(spec_for(places), places, tiny, cache_root)
    b = build_activations(spec_for(places, prompt="coords"), places, tiny, cache_root)
    assert a.folder != b.folder
    assert not np.allclose(a.layer(2), b.layer(2))


def committed(partial: Path) -> dict[int, float]:
    """The batches a partial build's ledger lists as on disk."""
    key = partial.name.removeprefix(".partial-")
    return read_progress(partial, key) or {}


@pytest.mark.usefixtures("one_torch_thread")
def test_resume_after_interruption_is_identical(tiny, places, cache_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reference = build_activations(spec_for(places), places, tiny, tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        build_activations(spec_for(places), places, tiny, cache_root, progress=stop_after(3))
    partial = find_partial(cache_root)
    # a stop keeps every finished batch: written in place, listed in the ledger
    assert len(partial) == 1 and sorted(committed(partial[0])) == [0, 1, 2]
    assert sorted(p.name for p in partial[0].glob("layer_*.npy")) == [
        "layer_000.npy",
        "layer_001.npy",
        "layer_002.npy",
    ]
    # a partial build is never visible as a finished artifact
    assert not any((cache_root / "activations").glob("tiny*/manifest.json"))
    resumed = build_activations(spec_for(places), places, tiny, cache_root)
    assert layer_bytes(resumed) == layer_bytes(reference)
    # only the layer files and the manifest reach the final folder
    assert sorted(p.name for p in resumed.folder.iterdir()) == [
        "layer_000.npy",
        "layer_001.npy",
        "layer_002.npy",
        "manifest.json",
    ]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("damage", ["truncate", "delete", "ledger"])
def test_damaged_partial_build_is_recomputed(tiny, places, cache_root, tmp_path, damage) -> None:  # type: ignore[no-untyped-def]
    reference = build_activations(spec_for(places), places, tiny, tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        build_activations(spec_for(places), places, tiny, cache_root, progress=stop_after(2))
    partial = find_partial(cache_root)[0]
    layer_file = partial / "layer_001.npy"
    if damage == "truncate":
        layer_file.write_bytes(layer_file.read_bytes()[:100])
    elif damage == "delete":
        layer_file.unlink()
    else:
        (partial / "progress.json").write_text('{"key": "tiny')  # a torn write
    resumed = build_activations(spec_for(places), places, tiny, cache_root)
    assert layer_bytes(resumed) == layer_bytes(reference)


@pytest.mark.usefixtures("one_torch_thread")
def test_complete_build_killed_before_its_rename_is_promoted(
    tiny, places, cache_root, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    reference = build_activations(spec_for(places), places, tiny, tmp_path / "ref")
    real_replace = os.replace

    def no_promotion(src, dst):  # type: ignore[no-untyped-def]
        if Path(src).name.startswith(".partial-"):
            raise KeyboardInterrupt("killed before the rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", no_promotion)
    with pytest.raises(KeyboardInterrupt):
        build_activations(spec_for(places), places, tiny, cache_root)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (find_partial(cache_root)[0] / "manifest.json").is_file()

    def no_forward(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a complete partial build must not be computed again")

    monkeypatch.setattr(core.extract.store, "forward_batch_tensor", no_forward)
    promoted = build_activations(spec_for(places), places, tiny, cache_root)
    assert layer_bytes(promoted) == layer_bytes(reference)
    assert not find_partial(cache_root)


def test_float16_overflow_falls_back_to_float32(places, cache_root) -> None:  # type: ignore[no-untyped-def]
    import torch

    from tests.support.tiny import tiny_model

    loud = tiny_model(seed=3)
    with torch.no_grad():
        loud.model.model.embed_tokens.weight.mul_(1e8)  # residual stream far above 65,504
    store = build_activations(spec_for(places), places, loud, cache_root)
    manifest = read_manifest(store.folder)
    assert manifest["storage_dtype"] == "float32"
    assert manifest["max_abs"] > 65504
    assert np.isfinite(store.layer(0)).all()


def loud_ending(last: str = "3", seed: int = 3):  # type: ignore[no-untyped-def]
    """A tiny model whose residual stream overflows float16 only where a text ends in
    `last`: the embedding enters the residual stream as is, but every block reads it
    through a norm, so other positions stay small."""
    import torch

    from tests.support.tiny import tiny_model

    loud = tiny_model(seed=seed)
    token = loud.tokenizer.convert_tokens_to_ids(last)
    with torch.no_grad():
        loud.model.model.embed_tokens.weight[token].mul_(1e7)
    return loud


def test_float32_upcast_mid_build_resumes_identically(places, cache_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.extract.activations import plan_batches, tokenize

    loud = loud_ending()
    reference = build_activations(spec_for(places), places, loud, tmp_path / "ref")
    assert read_manifest(reference.folder)["storage_dtype"] == "float32"
    texts = places.texts("empty")
    batches = plan_batches([len(t) for t in tokenize(loud, texts)], 4096, 8)
    loud_batches = [b.index for b in batches if any(texts[i].endswith("3") for i in b.rows)]
    assert loud_batches and loud_batches[0] > 0 and len(loud_batches) < len(batches), loud_batches
    # batches stored as float16 keep their float16 rounding once the files are float32
    quiet_rows = list(batches[0].rows)
    layer = np.asarray(reference.layer(2))[quiet_rows]
    assert np.array_equal(layer, layer.astype(np.float16).astype(np.float32))
    # stopped before, at and after the upcast, the resumed builds end byte-identical
    first_loud = loud_batches[0]
    for stop in sorted({first_loud, first_loud + 1, len(batches) - 1}):
        root = tmp_path / f"stop{stop}"
        with pytest.raises(KeyboardInterrupt):
            build_activations(spec_for(places), places, loud, root, progress=stop_after(stop))
        partial = find_partial(root)[0]
        dtype = np.load(partial / "layer_000.npy", mmap_mode="r").dtype
        assert dtype == (np.float32 if stop > first_loud else np.float16)
        assert layer_bytes(build_activations(spec_for(places), places, loud, root)) == layer_bytes(
            reference
        )


def test_upcast_interrupted_between_files_is_finished(places, cache_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    loud = loud_ending()
    reference = build_activations(spec_for(places), places, loud, tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        build_activations(spec_for(places), places, loud, cache_root, progress=stop_after(1))
    partial = find_partial(cache_root)[0]
    # what a kill between the upcast's first and second rename leaves
    path = partial / "layer_000.npy"
    np.save(path, np.load(path).astype(np.float32))
    resumed = build_activations(spec_for(places), places, loud, cache_root)
    assert layer_bytes(resumed) == layer_bytes(reference)


def test_choose_storage_dtype() -> None:
    assert choose_storage_dtype(43000.0) == "float16"
    assert choose_storage_dtype(70000.0) == "float32"
    assert choose_storage_dtype(float("inf")) == "float32"
    with pytest.raises(ValueError, match="float16"):
        choose_storage_dtype(70000.0, "float16")


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from core.common.config import ActivationSpec
import core.extract.store
from core.extract.store import build_activations
from tests.support.interrupt import stop_after
from tests.support.tiny import tiny_model
core.extract.store.CHECKPOINT_SECONDS = 0.0  # every batch reaches the ledger, \
so kills land mid-build
from tests.conftest import synthetic_places
ds = synthetic_places(400)
slow = float(sys.argv[2])
def progress(done, total):
    time.sleep(slow)
build_activations(ActivationSpec(model="tiny-llama", dataset=ds.name, max_batch_size=8), \
ds, tiny_model(), Path(sys.argv[1]), progress=progress)
"""


def test_sigkill_then_resume_is_byte_identical(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ref_root, root = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(ref_root), "0"], check=True, env=env, cwd=ROOT
    )
    for _attempt in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, str(root), "0.05"], env=env, cwd=ROOT
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            partial = find_partial(root)
            if (partial and len(committed(partial[0])) >= 3) or proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert find_partial(root), "the build should have been killed part-way"
    subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(root), "0"], check=True, env=env, cwd=ROOT
    )
    ref = ActivationStore(next((ref_root / "activations").glob("tiny*")))
    got = ActivationStore(next((root / "activations").glob("tiny*")))
    assert layer_bytes(got) == layer_bytes(ref)
    assert not find_partial(root)


def test_list_shows_an_unfinished_build_with_its_progress(tiny, places, cache_root, capsys) -> None:  # type: ignore[no-untyped-def]
    from core.cli import main
    from core.common.cache import folder_bytes

    with pytest.raises(KeyboardInterrupt):
        build_activations(spec_for(places), places, tiny, cache_root, progress=stop_after(4))
    partial = find_partial(cache_root)[0]
    assert core.extract.store.partial_status(partial) == (4, 15)
    assert main(["--cache-root", str(cache_root), "list", "--kind", "activations"]) == 0
    assert (
        "(unfinished: 4 of 15 batches done; resumes on the next build)" in capsys.readouterr().out
    )
    # layer files are created sparse: rows not yet written take no disk, and the listing says so
    big = np.lib.format.open_memmap(
        partial / "layer_big.npy", mode="w+", dtype="float16", shape=(100_000, 64)
    )
    del big
    assert (partial / "layer_big.npy").stat().st_size > 12_000_000
    assert folder_bytes(partial) < 1_000_000


def test_a_full_disk_is_a_clear_error_before_any_work(
    tiny, places, cache_root, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import errno

    from core.common.cache import CacheError

    if not hasattr(os, "posix_fallocate"):
        pytest.skip("no posix_fallocate on this platform: layer files stay sparse")

    def disk_full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", disk_full)
    with pytest.raises(
        CacheError,
        match=(
            r"needs 0\.00 GB \(3 layers x 120 entities x 32 float16\), "
            r"[\d.]+ GB is free.*SPACETIME_CACHE"
        ),
    ):
        build_activations(spec_for(places), places, tiny, cache_root)
    assert not find_partial(cache_root)  # nothing left half-made
    monkeypatch.undo()
    assert build_activations(spec_for(places), places, tiny, cache_root).n_entities == 120


def test_layer_files_reserve_their_disk_space(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.extract.layer_files import LayerFiles

    if not hasattr(os, "posix_fallocate"):
        pytest.skip("no posix_fallocate on this platform")
    files = LayerFiles.create(tmp_path, [0, 1], (50_000, 64), "float16")
    for layer in (0, 1):
        stat = (tmp_path / f"layer_{layer:03d}.npy").stat()
        assert stat.st_blocks * 512 >= stat.st_size == 50_000 * 64 * 2 + 128
    files.close()


CONCURRENT_SCRIPT = """
import logging, sys, time
from pathlib import Path
from core.common.config import ActivationSpec
from core.extract.store import build_activations
from tests.support.tiny import tiny_model
from tests.conftest import synthetic_places
logging.basicConfig(level=logging.WARNING)
ds = synthetic_places(400)
slow = float(sys.argv[2])
def progress(done, total):
    time.sleep(slow)
if len(sys.argv) > 3:  # imports done: wait for the go-ahead
    while not Path(sys.argv[3]).exists():
        time.sleep(0.01)
store = build_activations(ActivationSpec(model="tiny-llama", dataset=ds.name, \
max_batch_size=8), ds, tiny_model(), Path(sys.argv[1]), progress=progress)
print("built", store.folder.name)
"""


def test_a_second_build_of_the_same_cache_waits_then_reuses_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ref_root, root = tmp_path / "ref", tmp_path / "shared"
    subprocess.run(
        [sys.executable, "-c", CONCURRENT_SCRIPT, str(ref_root), "0"], check=True, env=env, cwd=ROOT
    )
    go = tmp_path / "go"
    second = subprocess.Popen(
        [sys.executable, "-c", CONCURRENT_SCRIPT, str(root), "0", str(go)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = subprocess.Popen(
        [sys.executable, "-c", CONCURRENT_SCRIPT, str(root), "0.1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not find_partial(root) and time.time() < deadline and first.poll() is None:
        time.sleep(0.02)
    assert find_partial(root) and first.poll() is None, "the first build should be under way"
    go.touch()  # about 5 s of the first build left
    second_out, second_err = second.communicate(timeout=120)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, err + second_err
    assert "another process is building activations/" in second_err
    ref = ActivationStore(next((ref_root / "activations").glob("tiny*")))
    got = ActivationStore(next((root / "activations").glob("tiny*")), verify=True)
    assert layer_bytes(got) == layer_bytes(ref)
    assert out.split() == second_out.split()  # both name the same finished folder
    assert not find_partial(root)
