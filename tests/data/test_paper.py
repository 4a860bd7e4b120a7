"""The paper's CSVs, downloaded through a real HTTP server on 127.0.0.1 (never the internet).

The four CSVs in ../shared/paper-data/entity_datasets/ are served as they are; the two
the folder lacks (historical figures, headlines) are small files written here with the
columns the paper's code produces.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from core.data.paper import PAPER_FILES, load_paper_dataset, nyc_text, world_text
from core.data.registry import dataset_table, load_dataset
from core.data.schema import DatasetError

REPO = Path(__file__).resolve().parents[2]
# The paper's CSVs sit in ../shared beside the checkout; SPACETIME_PAPER_DIR points elsewhere.
PAPER_DIR = Path(
    os.environ.get("SPACETIME_PAPER_DIR", REPO.parent / "shared" / "paper-data" / "entity_datasets")
)
REAL = ("world_place", "us_place", "nyc_place", "art")
needs_paper_data = pytest.mark.skipif(
    not all((PAPER_DIR / f"{stem}.csv").is_file() for stem in REAL),
    reason=f"the paper's CSVs are not at {PAPER_DIR} (put them in ../shared/paper-data/"
    "entity_datasets beside the checkout, or set SPACETIME_PAPER_DIR)",
)

PEOPLE_CSV = """wiki_id,name,description,gender,country,occupation,birth_year,death_year,\
cause_of_death,age,death_century,death_decade,is_test
Q517,Napoleon,French emperor,Male,France,military officer,1769,1821,,51,18,182,False
Q1048,Julius Caesar,Roman general,Male,Ancient Rome,politician,-100,-44,homicide,56,-1,-5,True
Q254,Wolfgang Amadeus Mozart,Austrian composer,Male,Austria,composer,1756,1791,,35,17,179,False
Q1035,Charles Darwin,English naturalist,Male,United Kingdom,naturalist,1809,1882,,73,18,188,False
"""
HEADLINE_CSV = """headline,word_count,pub_date,print_section,print_page,section,news_desk,\
year,is_trump,is_test
Obama Signs Health Care Overhaul Into Law.,900,2010-03-23T12:00:00+0000,A,1,U.S.,National,\
2010,False,False
Pilgrims Arrive in Mecca for Annual Hajj.,700,2020-07-29T08:00:00+0000,A,9,World,Foreign,\
2020,False,True
Senate Passes Tax Bill.,800,2017-12-20T05:00:00+0000,A,1,U.S.,Politics,2017,False,False
"""


class Recorder(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, format: str, *args: object) -> None:  # quiet
        type(self).requests.append(self.path)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """A folder of paper CSVs behind http://127.0.0.1:<port>/entity_datasets/."""
    folder = tmp_path / "www" / "entity_datasets"
    folder.mkdir(parents=True)
    for stem in REAL:
        if (PAPER_DIR / f"{stem}.csv").is_file():
            (folder / f"{stem}.csv").symlink_to(PAPER_DIR / f"{stem}.csv")
    (folder / "historical_figure.csv").write_text(PEOPLE_CSV, encoding="utf-8")
    (folder / "headline.csv").write_text(HEADLINE_CSV, encoding="utf-8")
    handler = type("Handler", (Recorder,), {"requests": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(tmp_path / "www"))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/entity_datasets"
    monkeypatch.setenv("SPACETIME_PAPER_DATA_URL", base)  # no trailing slash: added
    try:
        yield base, handler.requests
    finally:
        server.shutdown()
        server.server_close()


@needs_paper_data
@pytest.mark.parametrize("stem", REAL)
def test_real_paper_files(served: tuple[str, list[str]], tmp_path: Path, stem: str) -> None:
    name = f"paper_{stem}"
    seen: list[tuple[int, int]] = []
    data = load_dataset(
        name, cache_root=tmp_path / "cache", progress=lambda done, total: seen.append((done, total))
    )
    raw = pd.read_csv(PAPER_DIR / f"{stem}.csv", dtype=str, keep_default_na=False)
    size = (PAPER_DIR / f"{stem}.csv").stat().st_size
    assert seen and seen[-1] == (size, size)
    assert data.frame["name"].is_unique
    assert len(data) >= len(raw) - 60  # rows without a usable target are the only ones left out
    assert (
        abs(data.is_test().mean() - (raw["is_test"] == "True").mean()) < 0.005
    )  # the paper's own split
    manifest_dir = next((tmp_path / "cache" / "downloads").iterdir())
    manifest = json.loads((manifest_dir / "manifest.json").read_text())
    assert (
        manifest["sha256"] == hashlib.sha256((PAPER_DIR / f"{stem}.csv").read_bytes()).hexdigest()
    )
    assert manifest["url"].endswith(f"/entity_datasets/{stem}.csv")
    if data.kind == "space":
        assert (
            data.frame["lat"].between(-90, 90).all() and data.frame["lon"].between(-180, 180).all()
        )
    again = load_dataset(name, cache_root=tmp_path / "cache")
    assert again.content_hash == data.content_hash
    assert served[1].count(f"/entity_datasets/{stem}.csv") == 1  # the second load used the cache


@needs_paper_data
def test_paper_conventions(served: tuple[str, list[str]], tmp_path: Path) -> None:
    root = tmp_path / "cache"
    world = load_paper_dataset("paper_world_place", root).frame.set_index("name")
    assert world.loc["Fort Amsterdam (Curaçao)", "text"] == "Curaçao's Fort Amsterdam"
    assert world.loc["The Verge, Singapore", "text"] == "Singapore's The Verge"
    us = load_paper_dataset("paper_us_place", root).frame
    assert us.loc[us["entity_type"] == "zip", "text"].str.fullmatch(r"\d{5}").all()
    assert "01001" in set(us["text"])
    nyc = load_paper_dataset("paper_nyc_place", root).frame
    assert "Whitestone" in set(nyc["text"]) and nyc["borough"].nunique() >= 5
    art = load_paper_dataset("paper_art", root).frame.set_index("text")
    it = art.loc["Stephen King's It"]
    assert 1986.7 < float(it["year"]) < 1986.71 and it["entity_type"] == "book"
    assert art.groupby("creator")["is_test"].nunique().max() == 1


def test_synthetic_people_and_headlines(served: tuple[str, list[str]], tmp_path: Path) -> None:
    people = load_dataset("paper_historical_figure", cache_root=tmp_path).frame.set_index("name")
    assert people.loc["Julius Caesar", "year"] == -44 and bool(
        people.loc["Julius Caesar", "is_test"]
    )
    assert people.loc["Napoleon", "century"] == "19th c."
    news = load_dataset("paper_headline", cache_root=tmp_path).frame.set_index("text")
    assert 2010.2 < news.loc["Obama Signs Health Care Overhaul Into Law.", "year"] < 2010.25
    assert news["is_test"].sum() == 1


def test_missing_file_names_the_url(served: tuple[str, list[str]], tmp_path: Path) -> None:
    base = served[0].replace("/entity_datasets", "/nothing-here")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPACETIME_PAPER_DATA_URL", base)
        with pytest.raises(DatasetError, match=r"HTTP 404.*SPACETIME_PAPER_DATA_URL"):
            load_dataset("paper_headline", cache_root=tmp_path)
    assert not list(tmp_path.glob("downloads/*/headline.csv"))  # nothing half-written is kept


def test_not_downloaded_is_not_fetched(served: tuple[str, list[str]], tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not downloaded yet"):
        load_paper_dataset("paper_headline", tmp_path, allow_download=False)
    assert served[1] == []


def test_table_shows_downloaded_rows(
    served: tuple[str, list[str]], tmp_path: Path, session_cache: Path
) -> None:
    load_dataset("paper_historical_figure", cache_root=session_cache)
    rows = dataset_table(session_cache).set_index("name")
    assert rows.loc["paper_historical_figure", "rows"] == 4
    assert rows.loc["paper_historical_figure", "test_fraction"] == 0.25


def test_altered_download_is_fetched_again(served: tuple[str, list[str]], tmp_path: Path) -> None:
    load_dataset("paper_headline", cache_root=tmp_path)
    cached = next((tmp_path / "downloads").glob("*/headline.csv"))
    cached.write_text(HEADLINE_CSV.replace("Senate", "Congress"), encoding="utf-8")
    data = load_dataset("paper_headline", cache_root=tmp_path)
    assert "Senate Passes Tax Bill." in set(data.frame["text"])
    assert served[1].count("/entity_datasets/headline.csv") == 2


def test_bad_columns(served: tuple[str, list[str]], tmp_path: Path) -> None:
    (tmp_path / "www" / "entity_datasets" / "headline.csv").write_text(
        "title,when\nx,2020-01-01\n", encoding="utf-8"
    )
    with pytest.raises(
        DatasetError, match=r"missing columns \['headline', 'pub_date', 'is_test'\]"
    ):
        load_dataset("paper_headline", cache_root=tmp_path / "cache")


def test_world_and_nyc_strings() -> None:
    assert (
        world_text("Landmark Theatre (Syracuse, New York)")
        == "Syracuse, New York's Landmark Theatre"
    )
    assert world_text("Chapel Street, Melbourne") == "Melbourne's Chapel Street"
    assert world_text("Eiffel Tower") == "Eiffel Tower"
    assert nyc_text("PS 123 AT THE PARK OF NYC") == "PS 123 at the Park of NYC"
    assert set(PAPER_FILES) == {
        "paper_world_place", "paper_us_place", "paper_nyc_place",
        "paper_art", "paper_historical_figure", "paper_headline",
    }  # fmt: skip


def test_default_tests_cannot_reach_the_internet(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"127\.0\.0\.1:9"):
        load_dataset("paper_art", cache_root=tmp_path)
