"""Datasets by name: the registry the CLI and dashboard look names up in."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from core.data.schema import DatasetError, EntityDataset
from core.data.spec import REGISTRY, DatasetSpec, ProgressFn

log = logging.getLogger(__name__)


def list_datasets() -> list[DatasetSpec]:
    _ensure_builtins()
    return [REGISTRY[name] for name in sorted(REGISTRY)]


def get_spec(name: str) -> DatasetSpec:
    _ensure_builtins()
    if name not in REGISTRY:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def load_dataset(
    name: str,
    limit: int | None = None,
    cache_root: Path | None = None,
    progress: ProgressFn | None = None,
    use_cache: bool = True,
) -> EntityDataset:
    """A registered dataset (from the dataset cache, built on first use) or a user CSV.

    Datasets fetched on request (the paper's CSVs) download once into
    ``<cache_root>/downloads/``, reporting bytes through `progress`.
    """
    _ensure_builtins()
    if Path(name).suffix.lower() == ".csv":
        from core.data.user_csv import load_user_csv

        return load_user_csv(Path(name)).head(limit)
    spec = get_spec(name)
    root = _root(cache_root)
    if spec.fetcher is not None:
        dataset = spec.fetcher(root, progress, True)
    elif use_cache:
        from core.data.build_cache import load_cached

        dataset = load_cached(spec, root)
    else:
        dataset = spec.builder()
    return dataset.head(limit)


def dataset_table(cache_root: Path | None = None) -> pd.DataFrame:
    """One row per registered dataset: name, kind, source, rows, target, test_fraction, licence.

    Offline datasets are built (once; later calls read the cache manifest). Datasets
    fetched on request show their rows only once downloaded; nothing is downloaded here.
    """
    from core.data.build_cache import cached_summary

    root = _root(cache_root)
    rows = []
    for spec in list_datasets():
        count: int | None = None
        fraction = math.nan
        source = spec.source
        if spec.fetcher is not None:
            try:
                dataset = spec.fetcher(root, None, False)
                count, fraction = len(dataset), float(dataset.is_test().mean())
            except DatasetError:
                source = f"{spec.source} [not downloaded]"
        else:
            try:
                summary = cached_summary(spec, root)
                count, fraction = summary["rows"], summary["test_fraction"]
            except DatasetError as exc:
                log.warning("dataset %s unavailable: %s", spec.name, exc)
                source = f"{spec.source} [unavailable: {exc}]"
        rows.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "source": source,
                "rows": count,
                "target": spec.target,
                "test_fraction": round(fraction, 3) if not math.isnan(fraction) else math.nan,
                "licence": spec.licence,
            }
        )
    table = pd.DataFrame(
        rows, columns=["name", "kind", "source", "rows", "target", "test_fraction", "licence"]
    )
    table["rows"] = table["rows"].astype("Int64")
    return table


def _root(cache_root: Path | None) -> Path:
    from core.common.cache import default_cache_root

    return Path(cache_root) if cache_root else default_cache_root()


_LOADED = False


def _ensure_builtins() -> None:
    """Import the modules whose import registers datasets (once)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import core.data.builtin  # noqa: F401
    import core.data.registrations  # noqa: F401
