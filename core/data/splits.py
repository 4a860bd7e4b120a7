"""Fixed, seeded train/test splits stored with the data."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def _unit_hash(value: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def random_split(names: pd.Series, test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Test membership by a hash of each name: stable under reordering and additions."""
    return np.array([_unit_hash(str(n), seed) < test_fraction for n in names], dtype=bool)


def group_split(groups: pd.Series, test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Hold out whole groups (e.g. creators): every row of a group is on one side."""
    return np.array([_unit_hash(str(g), seed) < test_fraction for g in groups], dtype=bool)


def hash_order(names: pd.Series, seed: int = 0) -> np.ndarray:
    """A seeded, stable row order (argsort of a hash of each name).

    Datasets are stored in this order so that ``head(n)`` is a representative sample
    rather than, say, the first n entities alphabetically or by source file.
    """
    keys = np.array([_unit_hash(f"order:{n}", seed) for n in names], dtype=np.float64)
    return np.argsort(keys, kind="stable")
