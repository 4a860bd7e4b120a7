"""A user's own CSV as an entity dataset, with errors that name file, row, column and value.

The CSV needs a name column and either lat/lon columns (a space dataset) or a year or
date column (a time dataset). Columns are taken from the arguments or recognised by
their header (case-insensitive): name/entity/place/title/label; lat/latitude;
lon/lng/long/longitude; year; date/time/timestamp/published/pub_date/release_date.
Rows are numbered as lines of the file (the header is line 1).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.dates import fractional_year
from core.data.frames import century_label, decade_of, finish_dataset
from core.data.prompts import SPACE_PROMPTS, TIME_PROMPTS
from core.data.schema import DatasetError, EntityDataset

log = logging.getLogger(__name__)

MAX_BYTES = 50 * 1024 * 1024
NAME_COLUMNS = ("name", "entity", "place", "title", "label", "person")
LAT_COLUMNS = ("lat", "latitude")
LON_COLUMNS = ("lon", "lng", "long", "longitude")
YEAR_COLUMNS = ("year",)
DATE_COLUMNS = ("date", "time", "timestamp", "published", "pub_date", "release_date", "datetime")
GROUP_COLUMNS = (
    "group",
    "country",
    "continent",
    "state",
    "borough",
    "entity_type",
    "creator",
    "category",
)
RESERVED = frozenset({"name", "text", "lat", "lon", "year", "is_test", "decade", "century"})


def _pick(
    header: list[str], given: str | None, candidates: tuple[str, ...], path: Path, role: str
) -> str | None:
    if given is not None:
        if given not in header:
            raise DatasetError(
                f"{path}: no column {given!r} for the {role} (columns: {', '.join(header)})"
            )
        return given
    lowered = {h.strip().lower(): h for h in header}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    return None


def _read_text(path: Path, max_bytes: int) -> str:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise DatasetError(f"{path}: {size} bytes is over the {max_bytes}-byte limit for a CSV")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}: not UTF-8 "
            f"(line {line}, byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); "
            "save the file as UTF-8"
        ) from exc
    if not text.strip():
        raise DatasetError(f"{path}: the file is empty")
    return text


def _rows(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) pairs; blank lines skipped, ragged rows rejected."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise DatasetError(f"{path}: no header row ({exc})") from exc
    header = [h.strip() for h in header]
    if not any(header):
        raise DatasetError(f"{path}: line 1: empty header")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DatasetError(f"{path}: line 1: repeated column names {dupes}")
    rows: list[tuple[int, list[str]]] = []
    line = reader.line_num
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise DatasetError(
                    f"{path}: line {start}: {len(cells)} fields where the header has {len(header)}"
                )
            rows.append((start, cells))
    except csv.Error as exc:
        raise DatasetError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from exc
    if not rows:
        raise DatasetError(f"{path}: no data rows under the header")
    return header, rows


def _first_bad(
    path: Path, lines: pd.Series, column: str, values: pd.Series, bad: pd.Series, why: str
) -> None:
    if bad.any():
        at = bad.to_numpy().argmax()
        raise DatasetError(
            f"{path}: line {lines.iloc[at]}, column {column!r}: {values.iloc[at]!r} {why}"
        )


def _numbers(
    path: Path, lines: pd.Series, column: str, values: pd.Series, low: float, high: float
) -> pd.Series:
    """Checked floats: every value numeric, finite and within [low, high]."""
    numbers = pd.to_numeric(values.str.strip(), errors="coerce").astype(float)
    _first_bad(path, lines, column, values, numbers.isna(), "is not a number")
    _first_bad(path, lines, column, values, ~np.isfinite(numbers), "is not a finite number")
    _first_bad(
        path, lines, column, values, ~numbers.between(low, high), f"is outside [{low:g}, {high:g}]"
    )
    return numbers


def _dates(path: Path, lines: pd.Series, column: str, values: pd.Series) -> pd.Series:
    """Fractional years from dates ("2017-03-05", "March 5, 2017") or bare years ("-44")."""
    text = values.str.strip()
    bare = text.str.fullmatch(r"-?\d{1,4}")
    when = pd.to_datetime(
        text.where(~bare), errors="coerce", format="mixed", utc=True
    ).dt.tz_localize(None)
    years = fractional_year(when)
    years = years.where(~bare, pd.to_numeric(text.where(bare), errors="coerce"))
    _first_bad(path, lines, column, values, years.isna(), "is not a date")
    return years.astype(float)


def load_user_csv(
    path: Path | str,
    name_column: str | None = None,
    lat_column: str | None = None,
    lon_column: str | None = None,
    year_column: str | None = None,
    date_column: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> EntityDataset:
    """Read and check a user's CSV.

    The split is the file's own ``is_test`` column (true/false) when it has one, else a
    seeded 20% of names. Other columns are kept as text (``popularity`` as a number);
    the first of group/country/continent/state/borough/entity_type/creator/category
    becomes the default grouping.
    """
    path = Path(path)
    header, rows = _rows(path, _read_text(path, max_bytes))
    name_col = _pick(header, name_column, NAME_COLUMNS, path, "entity name")
    if name_col is None:
        raise DatasetError(
            f"{path}: no name column (expected one of {NAME_COLUMNS}, or pass name_column)"
        )
    lat_col = _pick(header, lat_column, LAT_COLUMNS, path, "latitude")
    lon_col = _pick(header, lon_column, LON_COLUMNS, path, "longitude")
    year_col = _pick(header, year_column, YEAR_COLUMNS, path, "year")
    date_col = None if year_col else _pick(header, date_column, DATE_COLUMNS, path, "date")
    if (lat_col is None) != (lon_col is None):
        have, need = ("latitude", "longitude") if lat_col else ("longitude", "latitude")
        raise DatasetError(
            f"{path}: a {have} column but no {need} column "
            f"(expected one of {LON_COLUMNS if lat_col else LAT_COLUMNS})"
        )
    space = lat_col is not None
    if not space and year_col is None and date_col is None:
        raise DatasetError(
            f"{path}: no target columns: need lat/lon ({LAT_COLUMNS} / {LON_COLUMNS}) "
            f"or a year/date column ({YEAR_COLUMNS + DATE_COLUMNS})"
        )
    table = pd.DataFrame([cells for _, cells in rows], columns=header, dtype=str)
    lines = pd.Series([line for line, _ in rows])
    names = table[name_col].str.strip()
    _first_bad(path, lines, name_col, names, names == "", "is an empty name")
    repeated = names.duplicated(keep="first")
    if repeated.any():
        at = int(repeated.to_numpy().argmax())
        first = int(lines[(names == names.iloc[at]).to_numpy()].iloc[0])
        raise DatasetError(
            f"{path}: line {lines.iloc[at]}, column {name_col!r}: "
            f"duplicate name {names.iloc[at]!r} "
            f"(first on line {first})"
        )
    frame = pd.DataFrame({"name": names, "text": names})
    if space:
        assert lat_col is not None and lon_col is not None
        frame["lat"] = _numbers(path, lines, lat_col, table[lat_col], -90.0, 90.0)
        frame["lon"] = _numbers(path, lines, lon_col, table[lon_col], -180.0, 180.0)
    elif year_col is not None:
        frame["year"] = _numbers(path, lines, year_col, table[year_col], -1e6, 1e6)
    else:
        assert date_col is not None
        frame["year"] = _dates(path, lines, date_col, table[date_col])
    keep_split = False
    if "is_test" in header:
        flags = table["is_test"].str.strip().str.lower()
        valid = flags.isin({"true", "false", "1", "0"})
        _first_bad(path, lines, "is_test", table["is_test"], ~valid, "is not true/false")
        frame["is_test"] = flags.isin({"true", "1"})
        keep_split = True
    used = {name_col, lat_col, lon_col, year_col, date_col}
    for column in header:
        if column not in used and column not in RESERVED:
            frame[column] = table[column]
    if "popularity" in frame:
        frame["popularity"] = pd.to_numeric(frame["popularity"], errors="coerce")
    group = next((h for h in header if h.strip().lower() in GROUP_COLUMNS and h in frame), None)
    if group is not None and group != "group":
        frame["group"] = frame[group]
    if not space:
        frame["decade"] = decade_of(frame["year"])
        frame["century"] = century_label(frame["year"])
        if "group" not in frame:
            frame["group"] = frame["century"]
    if "group" not in frame:
        frame["group"] = "all"
    return finish_dataset(
        frame,
        name=path.stem,
        kind="space" if space else "time",
        prompts=SPACE_PROMPTS if space else TIME_PROMPTS,
        source=str(path),
        licence="the user's own data",
        description=f"User CSV {path.name}",
        keep_split=keep_split,
    )
