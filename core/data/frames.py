"""Finishing a built table: unique names, split, stable order, checks, column order."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.data.schema import SPACE_TARGETS, TIME_TARGETS, DatasetError, EntityDataset, Kind
from core.data.splits import balanced_group_split, group_split, hash_order, random_split

log = logging.getLogger(__name__)

TEST_FRACTION = 0.2
# Float columns are rounded to this many decimals (0.1 m in lat/lon) before hashing and
# storing: trig and log10 differ in their last bits between CPUs, and the content hash
# (a cache key) must be the same on every machine.
FLOAT_DECIMALS = 6
SPLIT_SEED = 0
LEADING_COLUMNS = (
    "name", "text", "lat", "lon", "year", "is_test", "group", "entity_type",
    "country", "continent", "state", "borough", "decade", "century", "creator", "popularity",
)  # fmt: skip


def disambiguate(names: pd.Series, *qualifiers: pd.Series) -> pd.Series:
    """Make names unique: append the first qualifier that separates duplicates.

    A name that is already unique is kept as is. Duplicates become ``"name (q)"`` using
    the first qualifier series that makes them unique; any still left get ``" [2]"``,
    ``" [3]"``... in their current row order (callers sort rows first, so this is stable).
    """
    out = names.astype(str).copy()
    for qualifier in qualifiers:
        dup = out.duplicated(keep=False)
        if not dup.any():
            return out
        q = qualifier.astype(str).fillna("")
        usable = dup & (q.str.len() > 0) & (q != "nan")
        out = out.where(~usable, out + " (" + q + ")")
    dup = out.duplicated(keep=False)
    if dup.any():
        rank = out.groupby(out).cumcount() + 1
        out = out.where(~dup | (rank == 1), out + " [" + rank.astype(str) + "]")
    return out


def decade_of(year: pd.Series) -> pd.Series:
    return (np.floor(year.astype(float) / 10) * 10).astype("Int64")


def century_label(year: pd.Series) -> pd.Series:
    """'19th c.' style labels (years 1801-1900 are the 19th century; BC as 'BC')."""
    labels = []
    for value in year.astype(float):
        y = int(np.floor(value))
        if y > 0:
            labels.append(f"{_ordinal((y - 1) // 100 + 1)} c.")
        else:
            labels.append(f"{_ordinal((-y) // 100 + 1)} c. BC")
    return pd.Series(labels, index=year.index, dtype="str")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def finalize(
    frame: pd.DataFrame,
    kind: str,
    split_by: str | None = None,
    seed: int = SPLIT_SEED,
    test_fraction: float = TEST_FRACTION,
    keep_split: bool = False,
    balance_groups: bool = False,
) -> pd.DataFrame:
    """Check a built table and give it its seeded split and stable row order.

    `split_by` holds out whole groups (e.g. ``creator``), filled to `test_fraction` of
    the rows when `balance_groups` (:func:`balanced_group_split`); `keep_split` keeps an
    ``is_test`` column the source already has (the paper's own split).
    """
    targets: Sequence[str] = SPACE_TARGETS if kind == "space" else TIME_TARGETS
    frame = frame.reset_index(drop=True).copy()
    for column in ("name", "text"):
        frame[column] = frame[column].astype("str")
    dup = frame["name"].duplicated(keep=False)
    if dup.any():
        examples = frame.loc[dup, "name"].head(5).tolist()
        raise DatasetError(f"duplicate entity names after disambiguation, e.g. {examples}")
    if (frame["text"].str.strip() == "").any():
        raise DatasetError("empty entity text in built table")
    for column in targets:
        frame[column] = frame[column].astype("float64")
        if frame[column].isna().any():
            raise DatasetError(
                f"missing {column} for {frame.loc[frame[column].isna(), 'name'].head(3).tolist()}"
            )
    for column in frame.columns[frame.dtypes == "float64"]:
        frame[column] = frame[column].round(FLOAT_DECIMALS)
    if kind == "space":
        check_range(frame, "lat", -90, 90)
        check_range(frame, "lon", -180, 180)
    if not keep_split:
        if split_by and balance_groups:
            frame["is_test"] = balanced_group_split(frame[split_by], test_fraction, seed)
        elif split_by:
            frame["is_test"] = group_split(frame[split_by], test_fraction, seed)
        else:
            frame["is_test"] = random_split(frame["name"], test_fraction, seed)
    frame["is_test"] = frame["is_test"].astype(bool)
    frame = frame.iloc[hash_order(frame["name"], seed)].reset_index(drop=True)
    lead = [c for c in LEADING_COLUMNS if c in frame]
    rest = sorted(c for c in frame if c not in lead)
    return frame[lead + rest]


def finish_dataset(
    frame: pd.DataFrame,
    *,
    name: str,
    kind: Kind,
    prompts: dict[str, str],
    source: str,
    licence: str,
    description: str,
    split_by: str | None = None,
    keep_split: bool = False,
    balance_groups: bool = False,
) -> EntityDataset:
    """The common tail of a dataset builder: :func:`finalize` the table, then wrap it.

    The table must already have its ``name`` and ``group`` columns; the dataset gets
    the ``"empty"`` default prompt and ``group`` as its grouping column.
    """
    return EntityDataset(
        name=name,
        kind=kind,
        frame=finalize(
            frame, kind, split_by=split_by, keep_split=keep_split, balance_groups=balance_groups
        ),
        prompts=prompts,
        default_prompt="empty",
        source=source,
        licence=licence,
        group_column="group",
        description=description,
    )


def check_range(frame: pd.DataFrame, column: str, low: float, high: float) -> None:
    bad = ~frame[column].between(low, high)
    if bad.any():
        row = frame.loc[bad].iloc[0]
        raise DatasetError(f"{column}={row[column]} out of [{low}, {high}] for {row['name']!r}")
