"""The globe target: a place as (x, y, z) on the unit sphere, and back to (lat, lon).

A probe of (x, y, z) has no seam at ±180° longitude and no squeeze at the poles; its
predictions, which need not lie on the sphere, are read back as the direction they point.
"""

from __future__ import annotations

import numpy as np

GLOBE_AXES: tuple[str, ...] = ("x", "y", "z")


def to_globe(latlon: np.ndarray) -> np.ndarray:
    """[..., 2] (lat, lon) in degrees -> [..., 3] unit vectors."""
    latlon = np.asarray(latlon, dtype=np.float64)
    phi, lmb = np.radians(latlon[..., 0]), np.radians(latlon[..., 1])
    cos_phi = np.cos(phi)
    return np.stack([cos_phi * np.cos(lmb), cos_phi * np.sin(lmb), np.sin(phi)], axis=-1)


def from_globe(xyz: np.ndarray) -> np.ndarray:
    """[..., 3] vectors (any length) -> [..., 2] (lat, lon) in degrees of their direction;
    the zero vector reads as (0, 0)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    horizontal = np.hypot(xyz[..., 0], xyz[..., 1])
    lat = np.degrees(np.arctan2(xyz[..., 2], horizontal))
    lon = np.degrees(np.arctan2(xyz[..., 1], xyz[..., 0]))
    return np.stack([lat, lon], axis=-1)
