"""Dates as fractional years (2017-07-02 -> 2017.5)."""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd


def fractional_year(when: pd.Series) -> pd.Series:
    """Datetime series -> year + elapsed fraction of that year (NaN stays NaN)."""
    when = pd.to_datetime(when)
    year = when.dt.year.astype(float)
    ones = pd.Series(1, index=when.index)
    start = pd.to_datetime(
        pd.DataFrame({"year": year, "month": ones, "day": ones}), errors="coerce"
    )
    end = pd.to_datetime(
        pd.DataFrame({"year": year + 1, "month": ones, "day": ones}), errors="coerce"
    )
    fraction = (when - start) / (end - start)
    return (year + fraction).astype(float)


def fractional_year_of(year: int, month: int = 1, day: int = 1) -> float:
    """One calendar date (any year, including BC as <= 0) -> fractional year."""
    days = 366 if calendar.isleap(year) else 365
    if 1 <= year <= 9999:
        day_index = (dt.date(year, month, day) - dt.date(year, 1, 1)).days
    else:  # proleptic arithmetic outside datetime's range
        lengths = [31, 29 if calendar.isleap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        day_index = int(np.sum(lengths[: month - 1])) + day - 1
    return year + day_index / days
