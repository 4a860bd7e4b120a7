"""The offline datasets measure the model, not themselves: no text names its own answer,
and every machine builds the same bytes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.data.dedupe import names_own_container
from core.data.schema import EntityDataset
from tests.data.conftest import OFFLINE
from tests.support.fingerprint import PINNED, differences

CONTAINERS = {"world_places": "country", "us_places": "state", "nyc_places": "borough"}
MAX_SELF_NAMING = 0.01


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_texts_rarely_name_their_own_container(
    offline: dict[str, EntityDataset], name: str
) -> None:
    frame = offline[name].frame
    leaks = names_own_container(frame["text"], frame[CONTAINERS[name]])
    assert leaks.mean() <= MAX_SELF_NAMING, frame.loc[leaks, "text"].head(10).tolist()
    # what is left is the containers themselves ("Brooklyn", "Ohio", "Estonia")
    assert (frame.loc[leaks, "text"] == frame.loc[leaks, CONTAINERS[name]]).all()


def test_no_name_is_qualified_by_its_container(offline: dict[str, EntityDataset]) -> None:
    for name, container in CONTAINERS.items():
        frame = offline[name].frame
        qualified = pd.Series(
            [t.endswith(f", {c}") for t, c in zip(frame["text"], frame[container], strict=True)]
        )
        assert not qualified.any(), frame.loc[qualified, "text"].head(5).tolist()


@pytest.mark.parametrize("name", OFFLINE)
def test_dataset_matches_its_pinned_hash(offline: dict[str, EntityDataset], name: str) -> None:
    """Every machine builds the same table: shipped results and cache keys depend on it."""
    pinned = json.loads(PINNED.read_text())
    assert name in pinned, f"{name} has no pin; run python -m tests.support.fingerprint"
    found = differences(offline[name], pinned[name])
    assert not found, f"{name} differs from {PINNED.name}:\n" + "\n".join(found[:20])


def test_float_noise_does_not_change_the_hash() -> None:
    from core.data.frames import finalize

    def table(lat: float, popularity: float) -> pd.DataFrame:
        return finalize(
            pd.DataFrame(
                {"name": ["A", "B"], "text": ["A", "B"], "lat": [lat, 1.0], "lon": [2.0, 3.0],
                 "popularity": [popularity, 1.0]}
            ),
            "space",
        )  # fmt: skip

    here, there = table(-21.136830000000003, 4.301029995663981), table(-21.13683, 4.30102999566398)
    pd.testing.assert_frame_equal(here, there, check_exact=True)


def test_a_difference_names_its_column_and_rows(offline: dict[str, EntityDataset]) -> None:
    from tests.support.fingerprint import fingerprint

    data = offline["nyc_places"]
    pinned = fingerprint(data)
    frame = data.frame.copy()
    frame.loc[len(frame) - 1, "lat"] += 1e-3
    altered = EntityDataset(name=data.name, kind=data.kind, frame=frame, prompts=data.prompts)
    found = differences(altered, pinned)
    start = (len(frame) - 1) // 1000 * 1000
    assert len(found) == 1 and f"column 'lat', rows {start}-" in found[0], found
