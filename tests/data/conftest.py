"""Shared fixtures: a session dataset cache in a temporary folder, and no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.registry import load_dataset
from core.data.schema import EntityDataset

OFFLINE = (
    "world_places",
    "us_places",
    "nyc_places",
    "nyc_zipcodes",
    "historical_figures",
    "artworks",
    "headlines",
    "dated_events",
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Paper downloads go to a closed local port unless a test serves files itself,
    and the default cache root is a temporary folder."""
    monkeypatch.setenv("SPACETIME_PAPER_DATA_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("SPACETIME_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dataset-cache")


@pytest.fixture(scope="session")
def offline(session_cache: Path) -> dict[str, EntityDataset]:
    """Every offline dataset, built once per test session into the session cache."""
    return {name: load_dataset(name, cache_root=session_cache) for name in OFFLINE}
