"""Cache keys, paths and manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.common.cache import (
    CacheError,
    artifact_dir,
    atomic_dir,
    read_manifest,
    verify_files,
    write_manifest,
)
from core.common.config import ActivationSpec, ProbeSpec


def test_key_is_stable_and_sensitive() -> None:
    spec = ActivationSpec(model="smollm2-135m", dataset="world_places", prompt="empty")
    key = spec.key("d" * 64, "w" * 64)
    assert key == ActivationSpec(model="smollm2-135m", dataset="world_places").key(
        "d" * 64, "w" * 64
    )
    # Golden value: a change here silently orphans every user's cache, so it must be deliberate.
    assert key == "smollm2-135m__world_places__empty__b03dbde047793c32"
    assert spec.key("e" * 64, "w" * 64) != key  # dataset content
    assert spec.key("d" * 64, "x" * 64) != key  # weights
    assert (
        ActivationSpec(model="smollm2-135m", dataset="world_places", prompt="coords").key(
            "d" * 64, "w" * 64
        )
        != key
    )
    assert (
        ActivationSpec(model="smollm2-135m", dataset="world_places", random_init=True).key(
            "d" * 64, "w" * 64
        )
        != key
    )
    # batching knobs do not change values, so they do not change the key
    assert (
        ActivationSpec(model="smollm2-135m", dataset="world_places", max_batch_size=8).key(
            "d" * 64, "w" * 64
        )
        == key
    )
    probe_key = ProbeSpec().key(key)
    assert probe_key == ProbeSpec().key(key) and probe_key != ProbeSpec(method="gcv").key(key)


@pytest.mark.parametrize(
    "key", ["../escape", "..", "a/../../b", "/etc/passwd", "a/b", "", "x" * 300, "../../etc/passwd"]
)
def test_keys_cannot_escape_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        artifact_dir(tmp_path, "results", key)


def test_artifact_dir_inside_root(tmp_path: Path) -> None:
    path = artifact_dir(tmp_path, "results", "model__data__empty__0123")
    assert path.parent == (tmp_path / "results").resolve()
    with pytest.raises(ValueError):
        artifact_dir(tmp_path, "elsewhere", "k")


def test_manifest_detects_truncation_and_alteration(tmp_path: Path) -> None:
    folder = tmp_path / "artifact"
    with atomic_dir(folder) as tmp:
        (tmp / "data.bin").write_bytes(b"0123456789" * 100)
        write_manifest(tmp, {"artifact": "test", "command": "make it"})
    manifest = read_manifest(folder)
    assert manifest["files"]["data.bin"]["bytes"] == 1000
    assert "library_versions" in manifest and "created_at" in manifest
    verify_files(folder, manifest)
    (folder / "data.bin").write_bytes(b"0123456789" * 99)
    with pytest.raises(CacheError, match="truncated"):
        verify_files(folder, manifest, "make it")
    (folder / "data.bin").write_bytes(b"X123456789" + b"0123456789" * 99)
    with pytest.raises(CacheError, match="checksum.*rebuild with: make it"):
        verify_files(folder, manifest, "make it")


def test_atomic_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    folder = tmp_path / "artifact"
    with pytest.raises(RuntimeError), atomic_dir(folder) as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("crash")
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(CacheError, match="no manifest.json"):
        read_manifest(folder)
