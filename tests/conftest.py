"""Shared fixtures: a tiny random model built in code and small synthetic datasets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.data.schema import EntityDataset
from core.data.splits import random_split
from core.extract.models import LoadedModel
from tests.support.tiny import tiny_model


@pytest.fixture(scope="session")
def tiny() -> LoadedModel:
    return tiny_model()


@pytest.fixture(scope="session")
def tiny_left() -> LoadedModel:
    return tiny_model(padding_side="left")


def synthetic_places(n: int = 120, seed: int = 0) -> EntityDataset:
    """Random 'place names' of varied length with random coordinates."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    names = []
    for i in range(n):
        length = int(rng.integers(3, 18))
        names.append("".join(rng.choice(letters, length)).capitalize() + f" {i}")
    frame = pd.DataFrame(
        {
            "name": names,
            "text": names,
            "lat": rng.uniform(-60, 70, n),
            "lon": rng.uniform(-180, 180, n),
            "group": rng.choice(["EU", "AS", "NA"], n),
        }
    )
    frame["is_test"] = random_split(frame["name"], 0.25, seed)
    return EntityDataset(
        name="synthetic_places",
        kind="space",
        frame=frame,
        prompts={"empty": "", "coords": "What are the lat/lon coordinates of "},
    )


@pytest.fixture
def places() -> EntityDataset:
    return synthetic_places()


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    root = tmp_path / "cache"
    root.mkdir()
    return root


@contextlib.contextmanager
def single_torch_thread() -> Iterator[None]:
    """For builds compared byte for byte within one process: one thread, one summation
    order. With two threads such a rebuild has (rarely, on a loaded machine) differed in
    the last float16 bits; see docs/reliability.md."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    with single_torch_thread():
        yield
