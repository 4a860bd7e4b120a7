"""Activation builds on a local Ray: the same bytes as one process, with faults too."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from core.cluster.pool import ModelPool
from core.common.cache import read_manifest
from core.common.config import ActivationSpec
from core.data.schema import EntityDataset
from core.extract.layer_files import read_progress
from core.extract.models import LoadedModel
from core.extract.store import ActivationStore, build_activations, find_partial
from tests.cluster.helpers import dying_replica, tiny_replica
from tests.conftest import single_torch_thread, synthetic_places
from tests.support.interrupt import stop_after

pytestmark = pytest.mark.usefixtures("ray_local")


def spec_for(dataset: EntityDataset) -> ActivationSpec:
    # 120 entities in 15 batches: enough for both workers to hold several at once
    return ActivationSpec(model="tiny-llama", dataset=dataset.name, max_batch_size=8)


def layer_bytes(store: ActivationStore) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.folder.glob("layer_*.npy"))}


@pytest.fixture(scope="module")
def dataset() -> EntityDataset:
    return synthetic_places()


@pytest.fixture(scope="module")
def reference(dataset: EntityDataset, tmp_path_factory: pytest.TempPathFactory) -> ActivationStore:
    """The single-process build, one torch thread per forward pass as in each worker."""
    from tests.support.tiny import tiny_model

    with single_torch_thread():
        return build_activations(
            spec_for(dataset), dataset, tiny_model(), tmp_path_factory.mktemp("single")
        )


@pytest.fixture(scope="module")
def pool() -> ModelPool:
    with ModelPool(tiny_replica, n_workers=2, torch_threads=1) as started:
        yield started


def ray_build(pool: ModelPool, dataset: EntityDataset, root: Path, **kw: object) -> ActivationStore:
    described, _ = pool.describe()
    assert described.model is None  # the driver holds no weights
    return build_activations(
        spec_for(dataset), dataset, described, root, runner=pool.run_batches, **kw
    )


def same_build(store: ActivationStore, reference: ActivationStore) -> None:
    assert store.folder.name == reference.folder.name  # the same cache key
    assert layer_bytes(store) == layer_bytes(reference)
    ours, theirs = read_manifest(store.folder), read_manifest(reference.folder)
    assert ours["files"] == theirs["files"]  # checksums
    assert ours["max_abs"] == theirs["max_abs"]
    assert ours["storage_dtype"] == theirs["storage_dtype"]


def test_ray_build_is_byte_identical(pool, dataset, reference, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ray_build(pool, dataset, tmp_path)
    same_build(store, reference)
    assert ActivationStore(store.folder, verify=True).n_entities == len(dataset.frame)
    work = pool.throughput()
    assert sum(w["entities"] for w in work) >= len(dataset.frame)
    assert all(w["batches"] > 0 for w in work)  # both workers served batches


def test_driver_killed_part_way_resumes_with_a_plain_build(
    pool, dataset, reference, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from tests.support.tiny import tiny_model

    with pytest.raises(KeyboardInterrupt):
        ray_build(pool, dataset, tmp_path, progress=stop_after(4))
    (partial,) = find_partial(tmp_path)
    committed = read_progress(partial, partial.name.removeprefix(".partial-"))
    assert committed is not None and len(committed) >= 4  # what was written is kept
    with single_torch_thread():
        store = build_activations(spec_for(dataset), dataset, tiny_model(), tmp_path)
    same_build(store, reference)
    assert not find_partial(tmp_path)


def test_a_pool_serves_a_new_build_after_an_interrupted_one(
    pool, dataset, reference, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyboardInterrupt):
        ray_build(pool, dataset, tmp_path / "stopped", progress=stop_after(2))
    assert all(slot.in_flight == 0 for slot in pool.slots)  # nothing counted as still out
    same_build(ray_build(pool, dataset, tmp_path / "next"), reference)


def test_worker_killed_mid_batch_loses_nothing(dataset, reference, tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = str(tmp_path / "killed-once")
    loader = functools.partial(dying_replica, marker, 3)
    with ModelPool(loader, n_workers=2, torch_threads=1) as dying:
        store = ray_build(dying, dataset, tmp_path / "cache")
        assert Path(marker).exists()  # a worker did die, mid forward pass
        assert dying.replaced == 1
        assert sum(w["lost"] for w in dying.throughput()) == 1
    same_build(store, reference)


def test_describe_matches_the_model_loaded_here(pool) -> None:  # type: ignore[no-untyped-def]
    described, batching = pool.describe()
    local: LoadedModel = tiny_replica()
    assert (described.weights_hash, described.n_layers, described.d_model) == (
        local.weights_hash,
        local.n_layers,
        local.d_model,
    )
    assert batching == (4096, 64)
