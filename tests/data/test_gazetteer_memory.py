"""The gazetteer's memory in a server: each table is built once per process even when
several sessions (threads) ask for it at once, and building the county table leaves no
copy of the zip-code data behind (docs/reliability.md: four concurrent builds took the
8-session server from ~600 MiB to 1.7 GiB)."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator

import pandas as pd
import pytest

from core.data import gazetteer


@pytest.fixture
def stub_places(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The place index over a two-city stub whose build is slow and counts itself."""
    calls: list[str] = []
    city = pd.DataFrame(
        {
            "name": ["Stubville", "Other"],
            "kind": "city",
            "lat": [1.0, 2.0],
            "lon": [3.0, 4.0],
            "country": "Stubland",
            "state": "",
            "population": [10.0, 5.0],
            "zip_codes": 0,
            "source_id": ["geonames:1", "geonames:2"],
        }
    )

    def cities() -> pd.DataFrame:
        calls.append(threading.current_thread().name)
        time.sleep(0.3)  # long enough for every thread to miss the cache meanwhile
        return city

    monkeypatch.setattr(gazetteer, "_cities", cities)
    monkeypatch.setattr(gazetteer, "_countries", lambda: city.iloc[:0])
    monkeypatch.setattr(gazetteer, "_states", lambda: city.iloc[:0])
    monkeypatch.setattr(gazetteer, "_alternates", lambda c: pd.DataFrame({"name": [], "row": []}))
    gazetteer._place_index.cache_clear()  # type: ignore[attr-defined]
    yield calls
    gazetteer._place_index.cache_clear()  # type: ignore[attr-defined]  # the real one next


def test_sessions_asking_at_once_share_one_build(stub_places: list[str]) -> None:
    found: list[object] = []
    threads = [
        threading.Thread(target=lambda: found.append(gazetteer.lookup_place("stubville")))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stub_places) == 1, stub_places  # one build, the other five waited for it
    assert len(found) == 6
    assert all(m is not None and m.place.name == "Stubville" for m in found)  # type: ignore[attr-defined]


def test_the_zip_table_leaves_no_copy_of_the_zip_codes_behind() -> None:
    from core.data.us_places import _zip_table

    gc.collect()
    before = len(gc.get_objects())
    assert len(_zip_table()) > 30_000  # built, then dropped
    gc.collect()
    # list_all()'s cached dicts: ~170k objects (89 MiB) kept for the life of the process
    assert len(gc.get_objects()) - before < 50_000
