"""Time datasets carry time, not source: dated events, era-balanced people, one-source
headlines, and a `source` column on every time dataset (for the source-mean baseline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.data import sources
from core.data.dated_events import read_calendar, split_year
from core.data.historical_figures import DECADE_CAP, MIN_YEAR, calendar_death, name_key
from core.data.registry import list_datasets, load_dataset
from core.data.schema import DatasetError, EntityDataset

TIME_OFFLINE = sorted(s.name for s in list_datasets() if s.offline and s.kind == "time")


@pytest.fixture(scope="module")
def time_sets(session_cache: Path) -> dict[str, EntityDataset]:
    return {name: load_dataset(name, cache_root=session_cache) for name in TIME_OFFLINE}


def test_time_datasets_are_registered() -> None:
    assert {"dated_events", "historical_figures", "artworks", "headlines"} <= set(TIME_OFFLINE)


@pytest.mark.parametrize("name", TIME_OFFLINE)
def test_every_time_dataset_has_a_source(time_sets: dict[str, EntityDataset], name: str) -> None:
    frame = time_sets[name].frame
    assert "source" in frame, name
    assert frame["source"].map(type).eq(str).all() and (frame["source"].str.len() > 0).all()


def test_dated_events(time_sets: dict[str, EntityDataset]) -> None:
    data = time_sets["dated_events"]
    frame = data.frame
    assert len(frame) >= 1_000 and frame["name"].is_unique and frame["text"].is_unique
    assert frame["year"].max() - frame["year"].min() > 500
    assert (frame["year"] < 0).any() and frame["year"].between(-1000, 2030).all()
    assert {"history", "music", "computer"} <= set(frame["source"])
    assert not frame["source"].isin(["birthday", "holiday", "freebsd", "argentina"]).any()
    for column in ("decade", "century", "group"):
        assert frame[column].notna().all(), column
    assert (frame["group"] == frame["decade"].astype(str) + "s").all()
    for text, year in zip(frame["text"], frame["year"], strict=True):
        assert not re.search(rf"(?<!\d)0*{abs(int(year))}(?!\d)", text), (text, year)
    assert not frame["text"].str.contains("\t").any()
    events = frame.set_index("text")
    assert events.loc["Batman the TV series debuts on ABC", "year"] == 1966
    assert events.loc["Rome is founded by Romulus and Remus", "year"] == -753


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Batman the TV series debuts on ABC, 1966", ("Batman the TV series debuts on ABC", 1966)),
        (
            "Rome is founded by Romulus and Remus, 753 BC",
            ("Rome is founded by Romulus and Remus", -753),
        ),
        (
            "Julius Caesar is stabbed to death by senators, 44BC",
            ("Julius Caesar is stabbed to death by senators", -44),
        ),
        ("Death of Alexander the Great, 323 B.C.", ("Death of Alexander the Great", -323)),
        ('"Star Trek" debuts on NBC (1966)', ('"Star Trek" debuts on NBC', 1966)),
        ("First US Black newspaper founded in 1827", ("First US Black newspaper founded", 1827)),
        ("Explorer I launched, 1958. Van Allen Belt discovered", None),  # year in the middle
        ("Constitutional Act of 1791 passed, 1791", None),  # the year stays in the text
        ("End of Prohibition, 1933 (at least the alcohol part)", None),
        ("The Roman Emperor Nero commits suicide, 68", None),  # AD years need 3-4 digits
        ("Battle of New Orleans", None),
    ],
)
def test_split_year(line: str, expected: tuple[str, int] | None) -> None:
    assert split_year(line) == expected


def test_read_calendar_joins_continuations(tmp_path: Path) -> None:
    path = tmp_path / "calendar.test"
    path.write_text(
        "/*\n * header\n */\n#ifndef _x_\nLANG=UTF-8\n\n"
        "01/02\tCanada and the United States agree on a plan to preserve\n"
        "\tNiagara Falls, 1929\nJan 03\tOne, 1925\n"
        "01 Feb\tRichard ``the Lionheart'' crowned, 1189\n"
        "#endif\n",
        encoding="utf-8",
    )
    lines = list(read_calendar(path, "test"))
    assert [(e.line, e.date) for e in lines] == [(7, "01/02"), (9, "Jan 03"), (10, "01 Feb")]
    assert lines[0].text.endswith("to preserve Niagara Falls, 1929")
    assert lines[2].text == 'Richard "the Lionheart" crowned, 1189'


def test_calendar_file_names_the_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sources, "CALENDAR_DIRS", (tmp_path,))
    with pytest.raises(DatasetError, match="apt-get install -y calendar"):
        sources.calendar_file("history")
    (tmp_path / "calendar.history").write_text("", encoding="utf-8")
    assert sources.calendar_file("history") == sources.calendar_file("calendar.history")
    assert sources.source_versions(("calendar",))["calendar"] != "missing"


def test_debian_version(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(
        "Package: wordnet-base\nStatus: install ok installed\nVersion: 1:3.0-38\n\n"
        "Package: calendar\nStatus: install ok installed\nSource: bsdmainutils\n"
        "Version: 12.1.8\nDescription: x\n multi-line: text\n",
        encoding="utf-8",
    )
    assert sources.debian_version("calendar", status) == "12.1.8"
    assert sources.debian_version("absent", status) is None
    assert sources.debian_version("calendar", tmp_path / "none") is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Karl Marx died, 1883", (["Karl Marx"], 1883)),
        ("Aristotle died, 322BC", (["Aristotle"], -322)),
        ("Alexander the Great dies (323BC)", (["Alexander the Great"], -323)),
        ("Terry Pratchett (Sir) dies, 2015, author", (["Terry Pratchett"], 2015)),
        ("David Packard died, 1996; age of 83", (["David Packard"], 1996)),
        ("Soviet President Leonid Brezhnev dies at age 75, 1982", (["Leonid Brezhnev"], 1982)),
        ("President Garfield dies of wounds in Baltimore, 1881", (["President Garfield"], 1881)),
        (
            "John Adams and Thomas Jefferson die on same day, 1826",
            (["John Adams", "Thomas Jefferson"], 1826),
        ),
        ("Thomas Mann's Death, 1955", (["Thomas Mann"], 1955)),
        ("Nikola Tesla died in the Hotel New Yorker room 3327, 1943", (["Nikola Tesla"], 1943)),
        ("Word is received that Perry has reached the North Pole and died, 1909", None),
        ("Queen Elizabeth, the Queen Mother, died at the age of 101, 2002", None),
        ("J.D. Salinger born, 1919", None),
    ],
)
def test_calendar_death(line: str, expected: tuple[list[str], int] | None) -> None:
    assert calendar_death(line) == expected


def test_name_key_matches_spellings() -> None:
    assert name_key("Mao Tse-Tung") == name_key("Mao Tsetung")
    assert name_key("Dr. Mendeleev") == name_key("Mendeleev")
    assert name_key("P.T. Barnum") == name_key("P. T. Barnum")


def test_historical_figures_balanced(time_sets: dict[str, EntityDataset]) -> None:
    frame = time_sets["historical_figures"].frame
    assert (frame["year"] >= MIN_YEAR).all()
    assert frame.groupby("decade").size().max() <= DECADE_CAP
    assert set(frame["source"]) == {"wordnet", "calendar"}
    people = frame.set_index("name")
    assert people.loc["Steve Jobs", "source"] == "calendar"  # WordNet 3.0 has him living
    assert people.loc["Steve Jobs", "year"] == 2011
    assert people.loc["Karl Marx", "source"] == "wordnet"  # in both: WordNet's row is kept
    assert "Mao Tse-Tung" not in people.index  # WordNet's Mao Zedong, another spelling


def test_headlines_are_one_kind_of_source(time_sets: dict[str, EntityDataset]) -> None:
    frame = time_sets["headlines"].frame
    assert (frame["entity_type"] == "health_headline").all()
    assert frame["source_id"].str.startswith("tweet:").all()
    assert frame["year"].between(2011, 2016).all()
    accounts = frame["source_id"].str.split(":").str[1]
    assert (frame["source"] == accounts).all()
    assert frame["source"].nunique() >= 10
