"""What a registered dataset is, and the registry the builders add themselves to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.data.schema import EntityDataset

ProgressFn = Callable[[int, int], None]  # (done, total or 0 when unknown)
# (cache_root, progress, allow_download) -> dataset; for datasets fetched on request
Fetcher = Callable[[Path, ProgressFn | None, bool], EntityDataset]


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
    version: str = "1"  # bump when the builder's output changes (part of the cache key)
    packages: tuple[str, ...] = ()  # source packages whose versions enter the cache key
    fetcher: Fetcher | None = None  # set for datasets downloaded on request
    description: str = ""


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    REGISTRY[spec.name] = spec
    return spec
