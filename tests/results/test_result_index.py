"""The one result index: the same answers over loaded results and catalog entries."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from core.results.catalog import discover
from core.results.index import HasMeta, ResultSet
from core.results.probe_results import ProbeResults
from tests.support.synthetic import save_synthetic, space_entities, synthetic_results


def _build(root: Path) -> list[ProbeResults]:
    world = space_entities(200, "world", seed=1)
    bigger = space_entities(400, "world", seed=2)
    made = [
        ("qwen2.5-coder-0.5b", world, False, "a"),
        ("qwen2.5-coder-1.5b", world, False, "b"),
        ("qwen2.5-coder-1.5b", world, True, "b-rand"),
        ("qwen2.5-coder-1.5b", bigger, False, "b-big"),
        ("tinymodel-1.5b", world, False, "t"),  # another family
        ("acme-1.5b", world, False, "c1"),  # one family, equal sizes: no scale pair
        ("acme-1500m", world, False, "c2"),
        ("gemma3-270m", bigger, False, "g"),
    ]
    out = []
    for model, entities, rand, key in made:
        res = synthetic_results(entities, "space", 4, 8, model, random_init=rand)
        save_synthetic(root, res, key)
        out.append(res)
    return out


def _key(item: HasMeta | None) -> str | None:
    return None if item is None else item.meta.key


def _keys(items: Iterable[HasMeta | None]) -> list[str]:
    return [_key(i) or "" for i in items]


@pytest.mark.parametrize("view", ["loaded", "catalog"])
def test_loaded_results_and_catalog_entries_get_the_same_answers(
    cache_root: Path, view: str
) -> None:
    built = _build(cache_root)
    index: ResultSet[Any] = ResultSet(built) if view == "loaded" else discover(cache_root)
    small = index.find("qwen2.5-coder-0.5b", "world_places", "empty")
    large = index.find("qwen2.5-coder-1.5b", "world_places", "empty")
    assert small is not None and large is not None
    assert _keys([small, large]) == ["a", "b-big"]  # the most entities, then the newest
    on_world = ["a", "b", "b-rand", "c1", "c2", "t"]
    assert sorted(_keys(index.same_rows(small))) == on_world
    # the control on identical rows only: the larger build's rows have none
    b = next(i for i in index.same_rows(small) if _key(i) == "b")
    assert _key(index.control_of(b)) == "b-rand" and index.missing_control(b) == ""
    assert index.control_of(large) is None
    assert "not on these rows" in index.missing_control(large)
    # the pair Compare shows: the rows both share, else each one's own
    qwen = index.pair("world_places", "empty", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
    assert _keys(qwen) == ["a", "b"]
    assert _keys(index.pair("world_places", "empty", "gemma3-270m", "qwen2.5-coder-0.5b")) == [
        "g",
        "a",
    ]
    # one scale pair: Qwen on identical rows; not across families, not equal sizes
    assert [_keys(p) for p in index.scale_pairs()] == [["a", "b"]]
    assert index.scale_pairs("us_places") == []
    # the sample the most trained models share, one result per model id
    assert sorted(_keys(index.shared_sample("world_places"))) == on_world
