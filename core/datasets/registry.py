"""Datasets by name: the registry the CLI and dashboard look names up in."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.datasets.schema import DatasetError, EntityDataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is and how to build it (building may read package data)."""

    name: str
    kind: str  # "space" | "time"
    target: str  # e.g. "lat, lon" or "death year"
    source: str
    licence: str
    builder: Callable[[], EntityDataset]
    offline: bool = True


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    REGISTRY[spec.name] = spec
    return spec


def list_datasets() -> list[DatasetSpec]:
    _ensure_builtins()
    return [REGISTRY[name] for name in sorted(REGISTRY)]


def load_dataset(name: str, limit: int | None = None, cache_root: Path | None = None) -> EntityDataset:
    """Build (or read from the dataset cache) a registered dataset, or a user CSV by path."""
    _ensure_builtins()
    if name.endswith(".csv") or Path(name).suffix == ".csv":
        from core.datasets.user_csv import load_user_csv

        return load_user_csv(Path(name)).head(limit)
    if name not in REGISTRY:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}")
    dataset = REGISTRY[name].builder()
    return dataset.head(limit)


_LOADED = False


def _ensure_builtins() -> None:
    """Import the modules whose import registers datasets (once)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import core.datasets.builtin  # noqa: F401
