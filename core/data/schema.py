"""The one schema every entity dataset follows.

A dataset is a table with one row per entity:

- ``name``: the entity as a user would name it (unique within the dataset)
- ``text``: the entity string fed to the model after the prompt prefix
- targets: ``lat``, ``lon`` (degrees) for space datasets; ``year`` (float) for time
- ``is_test``: the fixed, seeded split stored with the data
- grouping columns for held-out analyses (``group`` is the default colour/grouping
  column; others such as ``country``, ``continent``, ``state``, ``borough``,
  ``decade``, ``century``, ``entity_type``, ``creator``)
- ``popularity`` (optional): a popularity signal where the source has one

Prompts are prefixes: the model sees ``prompt + text`` so the last token is
always the entity's last token, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from core.common.hashing import sha256_frame, sha256_json
from core.data.prompts import compose

SPACE_TARGETS: tuple[str, ...] = ("lat", "lon")
TIME_TARGETS: tuple[str, ...] = ("year",)
REQUIRED_COLUMNS: tuple[str, ...] = ("name", "text", "is_test")

Kind = Literal["space", "time"]


class DatasetError(ValueError):
    """Bad dataset input; the message names the file, row, column and value."""


@dataclass(frozen=True, eq=False)
class EntityDataset:
    """An immutable table of entities with targets, split, groups and prompts."""

    name: str
    kind: Kind
    frame: pd.DataFrame
    prompts: dict[str, str] = field(default_factory=lambda: {"empty": ""})
    default_prompt: str = "empty"
    source: str = ""
    licence: str = ""
    group_column: str = "group"
    description: str = ""

    def __post_init__(self) -> None:
        missing = [c for c in (*REQUIRED_COLUMNS, *self.target_names) if c not in self.frame]
        if missing:
            raise DatasetError(f"dataset {self.name!r}: missing columns {missing}")
        if self.default_prompt not in self.prompts:
            raise DatasetError(
                f"dataset {self.name!r}: default prompt {self.default_prompt!r} not in "
                f"{sorted(self.prompts)}"
            )

    @property
    def target_names(self) -> tuple[str, ...]:
        return SPACE_TARGETS if self.kind == "space" else TIME_TARGETS

    def __len__(self) -> int:
        return len(self.frame)

    @cached_property
    def content_hash(self) -> str:
        """sha256 over the table and the prompts: part of every cache key."""
        return sha256_json(
            {
                "name": self.name,
                "kind": self.kind,
                "frame": sha256_frame(self.frame),
                "prompts": self.prompts,
            }
        )

    def targets(self) -> np.ndarray:
        """Targets as float64 [n_entities, n_targets] in source units."""
        return self.frame[list(self.target_names)].to_numpy(dtype=np.float64)

    def is_test(self) -> np.ndarray:
        return self.frame["is_test"].to_numpy(dtype=bool)

    def prompt_text(self, prompt: str) -> str:
        if prompt not in self.prompts:
            raise DatasetError(
                f"dataset {self.name!r} has no prompt {prompt!r}; choose one of "
                f"{sorted(self.prompts)}"
            )
        return self.prompts[prompt]

    def texts(self, prompt: str | None = None) -> list[str]:
        """The strings fed to the model: prompt prefix + entity text."""
        prefix = self.prompt_text(prompt or self.default_prompt)
        return [compose(prefix, str(t)) for t in self.frame["text"]]

    def head(self, limit: int | None) -> EntityDataset:
        """The first `limit` rows (a deterministic slice for quick builds)."""
        if limit is None or limit >= len(self.frame):
            return self
        return EntityDataset(
            name=self.name,
            kind=self.kind,
            frame=self.frame.iloc[:limit].reset_index(drop=True),
            prompts=self.prompts,
            default_prompt=self.default_prompt,
            source=self.source,
            licence=self.licence,
            group_column=self.group_column,
            description=self.description,
        )

    def entity_table(self) -> pd.DataFrame:
        """The columns stored with probe results so the dashboard needs no dataset."""
        return self.frame.reset_index(drop=True).copy()
