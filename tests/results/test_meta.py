"""The typed view of a result and its rows key."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.results.catalog import discover
from core.results.meta import ResultMeta, rows_key_of
from tests.support.synthetic import save_synthetic, space_entities, synthetic_results


def test_the_rows_key_is_the_names_and_split_in_order() -> None:
    world = space_entities(50, "world", seed=1)
    key = rows_key_of(world)
    moved = world.copy()
    moved["lat"] = 0.0  # targets are not part of it (the dataset hash covers them)
    assert rows_key_of(moved) == key
    resplit = world.copy()
    resplit.loc[0, "is_test"] = not bool(resplit.loc[0, "is_test"])
    assert rows_key_of(resplit) != key
    assert rows_key_of(world.iloc[::-1]) != key  # order counts
    assert rows_key_of(world.iloc[:49]) != key


def test_entry_and_results_share_one_view(cache_root: Path) -> None:
    res = synthetic_results(
        space_entities(80, "world", seed=2), "space", 4, 8, "gemma3-270m", random_init=True
    )
    folder = save_synthetic(cache_root, res)
    (entry,) = discover(cache_root).entries
    assert entry.meta == res.meta  # the saved manifest reads back as the in-memory one
    meta = entry.meta
    assert (meta.model, meta.dataset, meta.prompt, meta.random_init) == (
        "gemma3-270m",
        "world_places",
        "empty",
        True,
    )
    assert meta.model_id == "gemma3-270m@random" and meta.key == folder.name
    assert (meta.n_entities, meta.layers, meta.n_model_layers, meta.d_model) == (
        80,
        (0, 1, 2, 3),
        4,
        8,
    )
    assert meta.rows == ("world_places", "", rows_key_of(res.entities))
    assert res.model == meta.model and res.prompt == "empty"


def test_a_manifest_without_a_prompt_reads_as_empty_and_needs_kind_and_layers() -> None:
    meta = ResultMeta.from_manifest({"spec": {"model": "m"}, "kind": "time", "layers": [0, 2]})
    assert meta.prompt == "empty" and meta.n_model_layers == 3 and meta.rows is None
    assert not meta.shares_rows(meta)  # unknown rows are the same as nothing
    with pytest.raises(KeyError):
        ResultMeta.from_manifest({"spec": {"model": "m"}, "kind": "time"})
