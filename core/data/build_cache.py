"""Built dataset tables cached as parquet, keyed by the builder's version and sources.

Layout: ``<cache_root>/datasets/<name>-<hash>/entities.parquet`` + ``manifest.json``.
The hash covers the dataset name, its builder version, the installed versions of its
source packages and the dataset code itself (every ``core/data/*.py``), so upgrading
a data package or changing a builder, a helper or a prompt rebuilds the table.
A missing, partial or altered cache entry is rebuilt (and rewritten atomically).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from core.common.cache import (
    CacheError,
    artifact_dir,
    atomic_dir,
    read_manifest,
    verify_files,
    write_manifest,
)
from core.common.hashing import sha256_json
from core.data.schema import DatasetError, EntityDataset
from core.data.sources import source_versions
from core.data.spec import DatasetSpec

log = logging.getLogger(__name__)

TABLE = "entities.parquet"
FORMAT = 1


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the dataset code itself, so any change to a builder or helper rebuilds."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(spec: DatasetSpec) -> str:
    body = {
        "name": spec.name,
        "version": spec.version,
        "sources": source_versions(spec.packages),
        "code": code_digest(),
        "format": FORMAT,
    }
    return f"{spec.name}-{sha256_json(body)[:16]}"


def _manifest(dataset: EntityDataset, spec: DatasetSpec) -> dict[str, Any]:
    return {
        "kind": "dataset",
        "spec": {"dataset": dataset.name, "version": spec.version},
        "sources": source_versions(spec.packages),
        "dataset": {
            "name": dataset.name,
            "kind": dataset.kind,
            "prompts": dataset.prompts,
            "default_prompt": dataset.default_prompt,
            "source": dataset.source,
            "licence": dataset.licence,
            "group_column": dataset.group_column,
            "description": dataset.description,
        },
        "content_hash": dataset.content_hash,
        "rows": len(dataset),
        "test_fraction": float(dataset.is_test().mean()) if len(dataset) else 0.0,
    }


def _read(folder: Path) -> EntityDataset:
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    meta = manifest["dataset"]
    frame = pd.read_parquet(folder / TABLE)
    dataset = EntityDataset(
        name=meta["name"],
        kind=meta["kind"],
        frame=frame,
        prompts=dict(meta["prompts"]),
        default_prompt=meta["default_prompt"],
        source=meta["source"],
        licence=meta["licence"],
        group_column=meta["group_column"],
        description=meta["description"],
    )
    if dataset.content_hash != manifest["content_hash"]:
        raise CacheError(f"{folder}: content hash differs from the manifest")
    return dataset


def _write(folder: Path, dataset: EntityDataset, spec: DatasetSpec) -> None:
    try:
        with atomic_dir(folder) as tmp:
            dataset.frame.to_parquet(tmp / TABLE, index=False)
            write_manifest(tmp, _manifest(dataset, spec))
    except OSError as exc:  # read-only cache, or another process finished first
        log.warning("could not cache dataset %s in %s: %s", dataset.name, folder, exc)
        return
    _prune(folder)


def _prune(current: Path) -> None:
    """Remove this dataset's entries from older builder versions (same name, other hash)."""
    name = current.name.rsplit("-", 1)[0]
    for old in current.parent.glob(f"{name}-*"):
        if (
            old != current
            and old.is_dir()
            and re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{16}}", old.name)
        ):
            shutil.rmtree(old, ignore_errors=True)
            log.info("removed stale dataset cache %s", old)


def load_cached(spec: DatasetSpec, cache_root: Path, rebuild: bool = False) -> EntityDataset:
    """The dataset from its cache entry, building (and caching) it when needed."""
    folder = artifact_dir(cache_root, "datasets", cache_key(spec))
    if folder.exists() and not rebuild:
        try:
            return _read(folder)
        except (CacheError, DatasetError, OSError, KeyError, ValueError) as exc:
            log.warning("rebuilding dataset %s: cached copy unusable (%s)", spec.name, exc)
    log.info("building dataset %s", spec.name)
    dataset = spec.builder()
    _write(folder, dataset, spec)
    return dataset


def cached_summary(spec: DatasetSpec, cache_root: Path) -> dict[str, Any]:
    """Rows and test fraction from the cache manifest (building the table if needed)."""
    folder = artifact_dir(cache_root, "datasets", cache_key(spec))
    try:
        manifest = read_manifest(folder)
        if (folder / TABLE).is_file() and (folder / TABLE).stat().st_size == manifest["files"][
            TABLE
        ]["bytes"]:
            return {
                "rows": int(manifest["rows"]),
                "test_fraction": float(manifest["test_fraction"]),
            }
    except (CacheError, KeyError, ValueError, OSError):
        pass
    dataset = load_cached(spec, cache_root)
    return {
        "rows": len(dataset),
        "test_fraction": float(dataset.is_test().mean()) if len(dataset) else 0.0,
    }
