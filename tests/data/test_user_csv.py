"""A user's CSV: column detection, and an error naming file, line, column and value for
bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data.registry import load_dataset
from core.data.schema import DatasetError
from core.data.user_csv import load_user_csv


def write(tmp_path: Path, text: str, name: str = "mine.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_space_csv_by_header(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'Name,Latitude,Lng,country\nParis,48.85,2.35,France\n"Kyoto, Japan",35.0,135.7,Japan\n',
    )
    data = load_user_csv(path)
    assert data.kind == "space" and data.name == "mine" and len(data) == 2
    frame = data.frame.set_index("name")
    assert frame.loc["Kyoto, Japan", "lon"] == 135.7
    assert frame.loc["Paris", "group"] == "France"
    assert data.prompts["empty"] == "" and "random" in data.prompts


def test_time_csv_dates_and_years(tmp_path: Path) -> None:
    path = write(tmp_path, "title,published\nA,2017-07-02\nB,March 5 2017\nC,-44\nD,1500-03-01\n")
    data = load_user_csv(path)
    years = data.frame.set_index("name")["year"]
    assert data.kind == "time"
    assert years["A"] == pytest.approx(2017.4986, abs=1e-3)
    assert years["C"] == -44 and years["D"] == pytest.approx(1500.16, abs=0.01)
    assert set(data.frame["century"]) >= {"1st c. BC", "21st c."}


def test_flags_choose_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "who,born,died\nX,1900,1950\nY,1910,1990\n")
    data = load_user_csv(path, name_column="who", year_column="died")
    assert data.kind == "time" and list(data.frame.sort_values("name")["year"]) == [1950.0, 1990.0]
    path = write(tmp_path, "who,y,x\nX,10,20\n", "xy.csv")
    data = load_user_csv(path, name_column="who", lat_column="y", lon_column="x")
    assert data.kind == "space" and data.targets().tolist() == [[10.0, 20.0]]


def test_own_split_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "name,year,is_test\nA,1,true\nB,2,false\nC,3,False\n")
    assert load_user_csv(path).frame.set_index("name")["is_test"].to_dict() == {
        "A": True,
        "B": False,
        "C": False,
    }


def test_registry_routes_csv_paths(tmp_path: Path) -> None:
    path = write(tmp_path, "name,year\nA,1990\nB,2000\n")
    assert len(load_dataset(str(path))) == 2


def test_deterministic(tmp_path: Path) -> None:
    path = write(
        tmp_path, "name,lat,lon\n" + "".join(f"p{i},{i % 90},{i % 180}\n" for i in range(300))
    )
    first, second = load_user_csv(path), load_user_csv(path)
    assert first.content_hash == second.content_hash
    assert 0.1 < first.is_test().mean() < 0.3


BAD = [
    # (csv text, expected message parts)
    ("name,lat,lon\nA,1,2\nB,abc,3\n", ["line 3", "'lat'", "'abc'", "not a number"]),
    ("name,lat,lon\nA,1,2\nB,,3\n", ["line 3", "'lat'", "''", "not a number"]),
    ("name,lat,lon\nA,NaN,2\n", ["line 2", "'lat'", "'NaN'", "not a number"]),
    ("name,lat,lon\nA,1,inf\n", ["line 2", "'lon'", "'inf'", "not a finite number"]),
    ("name,lat,lon\nA,1,2\nB,91,3\n", ["line 3", "'lat'", "'91'", "outside [-90, 90]"]),
    ("name,lat,lon\nA,-90.5,2\n", ["line 2", "'lat'", "'-90.5'", "outside [-90, 90]"]),
    ("name,lat,lon\nA,1,2\nB,3,-181\n", ["line 3", "'lon'", "'-181'", "outside [-180, 180]"]),
    ("name,date\nA,2020-01-01\nB,yesterday\n", ["line 3", "'date'", "'yesterday'", "not a date"]),
    ("name,date\nA,2020-13-45\n", ["line 2", "'date'", "'2020-13-45'", "not a date"]),
    ("name,year\nA,1900\nB,19o0\n", ["line 3", "'year'", "'19o0'", "not a number"]),
    (
        "name,lat,lon\nA,1,2\nB,3,4\nA,5,6\n",
        ["line 4", "'name'", "duplicate name 'A'", "first on line 2"],
    ),
    ("name,lat,lon\nA,1,2\n ,3,4\n", ["line 3", "'name'", "empty name"]),
    ("name,lat,lon\nA,1,2\nB,3\n", ["line 3", "2 fields where the header has 3"]),
    ("name,lat,lon\n", ["no data rows"]),
    ("", ["the file is empty"]),
    ("\n\n  \n", ["the file is empty"]),
    ("place,latitude\nA,1\n", ["a latitude column but no longitude column"]),
    ("city,size\nA,1\n", ["no name column"]),
    ("name,size\nA,1\n", ["no target columns", "lat/lon", "year/date"]),
    ("name,lat,lon,name\nA,1,2,B\n", ["line 1", "repeated column names ['name']"]),
    ("name,year,is_test\nA,1,maybe\n", ["line 2", "'is_test'", "'maybe'", "not true/false"]),
    ('name,lat,lon\n"A,1,2\n', ["line 2", "malformed CSV"]),
]


@pytest.mark.parametrize(("text", "parts"), BAD, ids=[p[-1][:30] for _, p in BAD])
def test_bad_csv(tmp_path: Path, text: str, parts: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DatasetError) as info:
        load_user_csv(path)
    message = str(info.value)
    assert str(path) in message
    for part in parts:
        assert part in message, (part, message)


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "name,lat,lon\nA,1,2\nZürich,47.4,8.5\n", encoding="latin-1")
    with pytest.raises(DatasetError, match=r"mine\.csv: not UTF-8 \(line 3, byte \d+: b'\\xfc'\)"):
        load_user_csv(path)


def test_size_cap(tmp_path: Path) -> None:
    path = write(tmp_path, "name,lat,lon\n" + "A,1,2\n" * 100)
    with pytest.raises(DatasetError, match=r"mine\.csv: \d+ bytes is over the 100-byte limit"):
        load_user_csv(path, max_bytes=100)


def test_missing_file_and_flag(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_user_csv(tmp_path / "absent.csv")
    path = write(tmp_path, "name,lat,lon\nA,1,2\n")
    with pytest.raises(
        DatasetError, match=r"no column 'latitude' for the latitude \(columns: name, lat, lon\)"
    ):
        load_user_csv(path, lat_column="latitude")


def test_bom_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffname,lat,lon\r\nA,1,2\r\n\r\nB,3,4\r\n")
    assert sorted(load_user_csv(path).frame["name"]) == ["A", "B"]


names = (
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)
points = st.tuples(st.floats(-90, 90, allow_nan=False), st.floats(-180, 180, allow_nan=False))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.dictionaries(names, points, min_size=1, max_size=20))
def test_property_round_trip(tmp_path: Path, rows: dict[str, tuple[float, float]]) -> None:
    """Any set of uniquely named valid points comes back with the same coordinates, to the
    6 decimals (0.1 m) every table is rounded to so its hash is the same on any machine."""
    body = "".join(
        f'"{n.replace(chr(34), chr(34) * 2)}",{lat!r},{lon!r}\n' for n, (lat, lon) in rows.items()
    )
    path = write(tmp_path, "name,lat,lon\n" + body, name="prop.csv")
    frame = load_user_csv(path).frame.set_index("name")
    assert len(frame) == len(rows)
    for name, (lat, lon) in rows.items():
        assert frame.loc[name, "lat"] == np.round(lat, 6) and frame.loc[name, "lon"] == np.round(
            lon, 6
        )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 30),
    data=st.data(),
    bad=st.one_of(st.floats(90.001, 1e6), st.floats(-1e6, -90.001), st.just(float("nan"))),
)
def test_property_bad_latitude_found(
    tmp_path: Path, n: int, data: st.DataObject, bad: float
) -> None:
    """A bad latitude anywhere is reported at its own line, with its value."""
    at = data.draw(st.integers(0, n - 1))
    lats = [0.5] * n
    lats[at] = bad
    path = write(
        tmp_path,
        "name,lat,lon\n" + "".join(f"p{i},{lat!r},1\n" for i, lat in enumerate(lats)),
        name="bad.csv",
    )
    with pytest.raises(DatasetError) as info:
        load_user_csv(path)
    assert f"line {at + 2}, column 'lat': {repr(bad)!r}" in str(info.value)
    assert np.isnan(bad) or "outside" in str(info.value)
