"""Registers the eight offline datasets and the paper's six downloadable ones."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import ModuleType

from core.data import (
    artworks,
    dated_events,
    headlines,
    historical_figures,
    nyc_places,
    nyc_zipcodes,
    us_places,
    world_places,
)
from core.data.paper import LICENCE as PAPER_LICENCE
from core.data.paper import PAPER_FILES, load_paper_dataset
from core.data.schema import EntityDataset
from core.data.spec import DatasetSpec, ProgressFn, register

OFFLINE: tuple[tuple[ModuleType, str, str], ...] = (
    (world_places, "space", "lat, lon"),
    (us_places, "space", "lat, lon"),
    (nyc_places, "space", "lat, lon"),
    (nyc_zipcodes, "space", "lat, lon"),
    (historical_figures, "time", "death year"),
    (artworks, "time", "release year"),
    (headlines, "time", "publication date (fractional year)"),
    (dated_events, "time", "event year"),
)

for module, kind, target in OFFLINE:
    register(
        DatasetSpec(
            name=module.NAME,
            kind=kind,
            target=target,
            source=module.SOURCE,
            licence=module.LICENCE,
            builder=module.build,
            version=module.VERSION,
            packages=module.PACKAGES,
            description=(module.__doc__ or "").strip().splitlines()[0],
        )
    )


def _fetch(
    name: str, cache_root: Path, progress: ProgressFn | None, allow_download: bool
) -> EntityDataset:
    return load_paper_dataset(name, cache_root, progress, allow_download)


def _build_paper(name: str) -> EntityDataset:
    return load_paper_dataset(name)


for paper_file in PAPER_FILES.values():
    register(
        DatasetSpec(
            name=paper_file.name,
            kind=paper_file.kind,
            target=paper_file.target,
            source=f"wesg52/world-models {paper_file.stem}.csv (on request)",
            licence=PAPER_LICENCE,
            builder=partial(_build_paper, paper_file.name),
            offline=False,
            fetcher=partial(_fetch, paper_file.name),
            description=f"Gurnee & Tegmark's {paper_file.stem}.csv with its own split",
        )
    )
