"""Prompts: prefixes, and templates that put the name inside a question."""

from __future__ import annotations

from core.data.prompts import WHERE_WORLD, WORLD_PROMPTS, compose
from core.data.schema import EntityDataset


def test_a_prefix_is_read_before_the_name_and_a_template_around_it() -> None:
    assert compose("Where is ", "Paris") == "Where is Paris"
    assert compose(WHERE_WORLD, "Paris") == "Where is Paris in the world?"
    assert compose("", "Paris") == "Paris"


def test_dataset_texts_fill_a_template(places: EntityDataset) -> None:
    templated = EntityDataset(
        name=places.name,
        kind=places.kind,
        frame=places.frame,
        prompts={**places.prompts, "where_world": WHERE_WORLD},
    )
    first = str(places.frame["text"].iloc[0])
    assert templated.texts("where_world")[0] == f"Where is {first} in the world?"
    assert templated.texts("empty") == places.texts("empty")


def test_the_builtin_world_prompts_are_unchanged() -> None:
    # a new prompt would change world_places' content hash and every shipped cache key
    assert "where_world" not in WORLD_PROMPTS
