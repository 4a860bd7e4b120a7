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


def balanced_group_split(
    groups: pd.Series, test_fraction: float = 0.2, seed: int = 0
) -> np.ndarray:
    """Hold out whole groups, filling the test side to `test_fraction` of the rows.

    Groups are taken in the order of a seeded hash of their key; each joins the test side
    if it still fits under ``round(test_fraction * rows)`` (a group that would overshoot is
    skipped and later, smaller ones are tried). For tables with few, unequal groups, where
    :func:`group_split`'s share of test rows drifts far from `test_fraction`.
    """
    keys = groups.astype(str).to_numpy()
    sizes = pd.Series(keys).value_counts()
    order = sorted(sizes.index, key=lambda g: (_unit_hash(str(g), seed), str(g)))
    target = round(test_fraction * len(keys))
    test: set[str] = set()
    filled = 0
    for group in order:
        if filled + int(sizes[group]) <= target:
            test.add(group)
            filled += int(sizes[group])
    return np.isin(keys, list(test))


def hash_order(names: pd.Series, seed: int = 0) -> np.ndarray:
    """A seeded, stable row order (argsort of a hash of each name).

    Datasets are stored in this order so that ``head(n)`` is a representative sample
    rather than, say, the first n entities alphabetically or by source file.
    """
    keys = np.array([_unit_hash(f"order:{n}", seed) for n in names], dtype=np.float64)
    return np.argsort(keys, kind="stable")
