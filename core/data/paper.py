"""The paper's own entity CSVs (Gurnee & Tegmark 2023), downloaded on request.

Files come from ``<base>/<stem>.csv`` where the base URL defaults to the authors'
repository (wesg52/world-models, MIT) and ``SPACETIME_PAPER_DATA_URL`` overrides it.
Each download is cached under ``<cache_root>/downloads/`` with its sha256, and mapped
onto the common schema keeping the paper's own ``is_test`` split and entity strings:

- world: "Fort Amsterdam (Curaçao)" -> "Curaçao's Fort Amsterdam", and
  "The Verge, Singapore" -> "Singapore's The Verge";
- US: names as given (zip codes keep their leading zeros);
- NYC: upper-case names in title case, with short function words lower-case and
  known abbreviations (NYC, PS, FDNY, ...) kept;
- art: "<creator>'s <title>" (just "'" after a final "s"); target: release date as a
  fractional year;
- historical figures: the name; target: death year;
- headlines: the headline as stored; target: publication date as a fractional year.

Names are made unique (the CSVs repeat a few) by appending a qualifier in brackets.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.common.cache import default_cache_root
from core.common.hashing import sha256_file, sha256_json
from core.data import prompts
from core.data.dates import fractional_year
from core.data.download import ProgressFn, cached_download_path, download
from core.data.frames import century_label, decade_of, disambiguate, finalize
from core.data.schema import DatasetError, EntityDataset

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = (
    "https://raw.githubusercontent.com/wesg52/world-models/main/data/entity_datasets/"
)
BASE_URL_ENV = "SPACETIME_PAPER_DATA_URL"
LICENCE = "MIT (wesg52/world-models); cite Gurnee & Tegmark 2023"
# sha256 of the files this mapping was written against (a mismatch is logged, not fatal)
KNOWN_SHA256 = {
    "world_place": "b1608f9410b48fe4ca71836d81baa5aa20d34d319cd7f98a725fd8545bdce040",
    "us_place": "95af51d5b80ba1a0085c431583294f4917b95628869130d65762a7e8bf6eff6e",
    "nyc_place": "72558b55c86e0f113fdb35f3cd7ef0dfb439820e36b47e654e5169cb094445cf",
    "art": "37ef497d0c2871c074c166a0c4f229c460aca092a90ecc83bd6f9d0f12bc3b41",
}
NYC_STOP_WORDS = frozenset({"AND", "OR", "OF", "THE", "A", "AT", "&", "IN", "TO"})
NYC_ABBREVIATIONS = frozenset(
    [
        "FDNY",
        "NYCT",
        "YMCA",
        "LGA",
        "US",
        "NYC",
        "PS",
        "IS",
        "NYS",
        "UN",
        "NY",
        "EMS",
        "JCC",
        "NYU",
        "CC",
        "NYPD",
        "NYPA",
        "DHS",
    ]
)


@dataclass(frozen=True)
class PaperFile:
    name: str  # dataset name here
    stem: str  # file stem in the paper's repository
    kind: str
    target: str
    columns: tuple[str, ...]  # required columns


PAPER_FILES: dict[str, PaperFile] = {
    f.name: f
    for f in (
        PaperFile("paper_world_place", "world_place", "space", "lat, lon",
                  ("name", "country", "latitude", "longitude", "entity_type", "is_test")),
        PaperFile("paper_us_place", "us_place", "space", "lat, lon",
                  ("name", "latitude", "longitude", "state_name", "entity_type", "is_test")),
        PaperFile("paper_nyc_place", "nyc_place", "space", "lat, lon",
                  ("name", "latitude", "longitude", "borough_name", "is_test")),
        PaperFile("paper_art", "art", "time", "release date (fractional year)",
                  ("title", "creator", "release_date", "entity_type", "is_test")),
        PaperFile("paper_historical_figure", "historical_figure", "time", "death year",
                  ("name", "death_year", "is_test")),
        PaperFile("paper_headline", "headline", "time", "publication date (fractional year)",
                  ("headline", "pub_date", "is_test")),
    )
}  # fmt: skip


def paper_base_url() -> str:
    base = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return base if base.endswith("/") else base + "/"


def _url_and_key(stem: str) -> tuple[str, str]:
    url = paper_base_url() + f"{stem}.csv"
    return url, f"paper-{stem}-{sha256_json(url)[:12]}"


def paper_csv(
    name: str,
    cache_root: Path | None = None,
    progress: ProgressFn | None = None,
    allow_download: bool = True,
) -> Path:
    """The cached CSV of a paper dataset, downloading it first if allowed."""
    file = PAPER_FILES[name]
    root = Path(cache_root) if cache_root else default_cache_root()
    url, key = _url_and_key(file.stem)
    if not allow_download:
        cached = cached_download_path(url, key, f"{file.stem}.csv", root)
        if cached is None:
            raise DatasetError(f"{name}: not downloaded yet (load it once to fetch {url})")
        return cached
    try:
        path = download(url, key, f"{file.stem}.csv", root, progress=progress)
    except DatasetError as exc:
        raise DatasetError(
            f"{name}: {exc}. The paper's repository may not publish this file; point "
            f"{BASE_URL_ENV} at a folder that holds {file.stem}.csv"
        ) from exc
    known = KNOWN_SHA256.get(file.stem)
    if known and sha256_file(path) != known:
        log.warning("%s differs from the version this mapping was checked against", url)
    return path


def load_paper_dataset(
    name: str,
    cache_root: Path | None = None,
    progress: ProgressFn | None = None,
    allow_download: bool = True,
) -> EntityDataset:
    """Download (once) and map one of the paper's CSVs onto the common schema."""
    if name not in PAPER_FILES:
        raise DatasetError(f"unknown paper dataset {name!r}; known: {', '.join(PAPER_FILES)}")
    file = PAPER_FILES[name]
    path = paper_csv(name, cache_root, progress, allow_download)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})") from exc
    missing = [c for c in file.columns if c not in raw.columns]
    if missing:
        raise DatasetError(f"{path}: missing columns {missing} for {name}")
    frame = MAPPERS[file.stem](raw)
    frame["is_test"] = raw["is_test"].str.strip().str.lower().isin({"true", "1"}).to_numpy()
    targets = ["lat", "lon"] if file.kind == "space" else ["year"]
    unusable = frame[targets].isna().any(axis=1)
    if unusable.any():
        log.warning("%s: %d rows without a usable target left out", name, int(unusable.sum()))
        frame = frame[~unusable]
    frame = finalize(frame, file.kind, keep_split=True)
    return EntityDataset(
        name=name,
        kind="space" if file.kind == "space" else "time",
        frame=frame,
        prompts=PAPER_PROMPTS[file.stem],
        default_prompt="empty",
        source=f"Gurnee & Tegmark 2023, {file.stem}.csv ({paper_base_url()})",
        licence=LICENCE,
        group_column="group",
        description=f"The paper's own {file.stem.replace('_', ' ')} dataset, with its split",
    )


def world_text(name: str) -> str:
    """The paper's world-place string: "X (Y)" -> "Y's X"; "A, B" -> "B's A"."""
    inner = re.search(r"\((.*?)\)", name)
    if inner:
        rest = re.sub(r"\(.*?\)", "", name).strip()
        return f"{inner.group(1)}'s {rest}"
    if "," in name:
        head, _, tail = name.rpartition(",")
        return f"{tail.strip()}'s {head}"
    return name


def nyc_text(name: str) -> str:
    """The paper's NYC string: title case, stop words lower-case, abbreviations kept."""
    out = []
    for word in name.split():
        if word in NYC_STOP_WORDS:
            out.append(word.lower())
        elif word in NYC_ABBREVIATIONS:
            out.append(word)
        else:
            out.append(word.lower().capitalize())
    return " ".join(out)


def _num(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series.replace("", np.nan), errors="coerce")


def _log10(series: pd.Series) -> pd.Series:
    values = _num(series)
    return np.log10(values.where(values > 0))


def _continents(country: pd.Series, lat: pd.Series, lon: pd.Series) -> pd.Series:
    """Continent by country name, else by the nearest GeoNames city ("Other" without them)."""
    try:
        from core.data.geo import countries, nearest_continent

        table = countries()
        by_name = dict(zip(table["country"].str.lower(), table["continent"], strict=True))
        nearest = pd.Series(
            nearest_continent(lat.fillna(0).to_numpy(), lon.fillna(0).to_numpy()),
            index=country.index,
        )
    except DatasetError:
        return pd.Series("Other", index=country.index)
    return country.str.lower().map(by_name).fillna(nearest)


def _map_world(raw: pd.DataFrame) -> pd.DataFrame:
    country = raw["country"].str.replace("_", " ")
    lat, lon = _num(raw["latitude"]), _num(raw["longitude"])
    frame = pd.DataFrame(
        {
            "text": raw["name"].map(world_text),
            "lat": lat,
            "lon": lon,
            "country": country,
            "continent": _continents(country, lat, lon),
            "entity_type": raw["entity_type"],
            "entity_subtype": raw.get("entity_subtype", ""),
            "popularity": _log10(raw["page_views"]) if "page_views" in raw else np.nan,
        }
    )
    frame["name"] = disambiguate(raw["name"], raw["entity_type"], country)
    frame["group"] = frame["continent"]
    return frame


def _map_us(raw: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "text": raw["name"],
            "lat": _num(raw["latitude"]),
            "lon": _num(raw["longitude"]),
            "state": raw["state_name"],
            "entity_type": raw["entity_type"],
            "popularity": _log10(raw["population"]) if "population" in raw else np.nan,
            "country": "United States",
        }
    )
    frame["name"] = disambiguate(
        raw["name"], raw["entity_type"], raw.get("state_id", raw["state_name"])
    )
    frame["group"] = frame["state"]
    return frame


def _map_nyc(raw: pd.DataFrame) -> pd.DataFrame:
    borough = raw["borough_name"].replace("", "Unknown")
    text = raw["name"].map(nyc_text)
    frame = pd.DataFrame(
        {
            "text": text,
            "lat": _num(raw["latitude"]),
            "lon": _num(raw["longitude"]),
            "borough": borough,
            "entity_type": raw.get("facility_t_name", ""),
        }
    )
    frame["name"] = disambiguate(text, borough, frame["entity_type"])
    frame["group"] = borough
    return frame


def _possessive(creator: str) -> str:
    return f"{creator}'" if creator.endswith("s") else f"{creator}'s"


def _map_art(raw: pd.DataFrame) -> pd.DataFrame:
    text = [f"{_possessive(c)} {t}" for c, t in zip(raw["creator"], raw["title"], strict=True)]
    when = pd.to_datetime(raw["release_date"], format="%Y-%m-%d", errors="coerce")
    frame = pd.DataFrame(
        {
            "text": text,
            "year": fractional_year(when),
            "creator": raw["creator"],
            "title": raw["title"],
            "entity_type": raw["entity_type"],
            "popularity": _log10(raw["page_views"]) if "page_views" in raw else np.nan,
        }
    )
    frame["decade"] = decade_of(frame["year"])
    frame["name"] = disambiguate(frame["text"], raw["entity_type"], raw["release_date"])
    frame["group"] = frame["entity_type"]
    return frame


def _map_people(raw: pd.DataFrame) -> pd.DataFrame:
    year = _num(raw["death_year"])
    frame = pd.DataFrame(
        {
            "text": raw["name"],
            "year": year,
            "entity_type": raw.get("occupation", ""),
            "country": raw.get("country", ""),
        }
    )
    frame["decade"] = decade_of(year)
    frame["century"] = century_label(year.fillna(0))
    frame["name"] = disambiguate(raw["name"], raw.get("description", raw["name"]))
    frame["group"] = frame["century"]
    return frame


def _map_headlines(raw: pd.DataFrame) -> pd.DataFrame:
    when = pd.to_datetime(
        raw["pub_date"], errors="coerce", utc=True, format="mixed"
    ).dt.tz_localize(None)
    frame = pd.DataFrame(
        {
            "text": raw["headline"],
            "year": fractional_year(when),
            "entity_type": raw.get("section", ""),
            "news_desk": raw.get("news_desk", ""),
            "date": when.dt.strftime("%Y-%m-%d"),
        }
    )
    frame["name"] = disambiguate(raw["headline"], frame["date"])
    frame["group"] = frame["news_desk"].where(frame["news_desk"] != "", "Other")
    return frame


MAPPERS = {
    "world_place": _map_world,
    "us_place": _map_us,
    "nyc_place": _map_nyc,
    "art": _map_art,
    "historical_figure": _map_people,
    "headline": _map_headlines,
}
PAPER_PROMPTS = {
    # the paper's world places also take Godey et al.'s question (published anchors)
    "world_place": {**prompts.WORLD_PROMPTS, "where_world": prompts.WHERE_WORLD},
    "us_place": prompts.US_PROMPTS,
    "nyc_place": prompts.NYC_PROMPTS,
    "art": prompts.ART_PROMPTS,
    "historical_figure": prompts.PERSON_PROMPTS,
    "headline": prompts.HEADLINE_PROMPTS,
}
