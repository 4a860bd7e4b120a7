"""One typed view of a result: what a results manifest says, parsed once.

:class:`ResultMeta` is the only reader of a results manifest's ``spec``: the catalog's
entries (``ResultEntry.meta``) and loaded results (``ProbeResults.meta``) both carry one,
and :mod:`core.results.index` pairs results by it alone.

The **rows key** says which rows a probe saw: the sha256 of the entity names and the
train/test split, in stored order (:func:`rows_key_of`). Builds write it into the
manifest (``ProbeResults.save``); ``python -m core.results.upgrade`` adds it to results
built before it, from their stored entity table; a manifest without one gets it computed
from the entities when it is read. Two results are on the same rows when their
:attr:`ResultMeta.rows` are equal (:meth:`ResultMeta.shares_rows`): the same dataset
content and the same rows key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

RANDOM_SUFFIX = "@random"  # model id suffix of randomly initialised controls
ROWS_KEY = "rows_key"  # the manifest field the rows key is stored in
_ROWS_VERSION = "rows-v1"  # part of the hash: a new rule must not equal the old keys


def model_id(model: str, random_init: bool = False) -> str:
    """The id a model (or its random-init control) has in selectors and URLs."""
    return f"{model}{RANDOM_SUFFIX}" if random_init else model


def split_model_id(mid: str) -> tuple[str, bool]:
    """Inverse of :func:`model_id`: (model name, random_init)."""
    if mid.endswith(RANDOM_SUFFIX):
        return mid[: -len(RANDOM_SUFFIX)], True
    return mid, False


def rows_key_of(entities: pd.DataFrame) -> str:
    """The sha256 of the entities' names and train/test split, in their stored order."""
    body = {
        "version": _ROWS_VERSION,
        "name": [str(n) for n in entities["name"].tolist()],
        "is_test": [bool(t) for t in entities["is_test"].tolist()],
    }
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def spec_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved spec an artifact's manifest records ({} when it has none)."""
    return dict(manifest.get("spec", {}) or {})


# "135m", "270M", "7b", "1.5B" as a separate token of a model name
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([mb])(?![a-z0-9])", re.IGNORECASE)
_SCALE = {"m": 1e6, "b": 1e9}


def name_size(name: str) -> float | None:
    """Parameter count written in a model name ("smollm2-135m", "Llama-2-7b-hf"), if any."""
    hit = _SIZE.search(name.rsplit("/", 1)[-1])
    if hit is None:
        return None
    return float(hit.group(1)) * _SCALE[hit.group(2).lower()]


def registered_model(model: str) -> Any:
    """The model's registry entry (`core.extract.models.MODELS`), if it has one."""
    try:  # the registry imports no torch at module level
        from core.extract.models import MODELS
    except ImportError:
        return None
    return MODELS.get(model)


def family_of(model: str) -> str:
    """The family a model belongs to: its registered family, else its name without the
    size token ("Llama-2-7b-hf" -> "Llama-2-hf")."""
    source = registered_model(model)
    if source is not None and source.family:
        return str(source.family)
    stem = _SIZE.sub("", model.rsplit("/", 1)[-1])
    return re.sub(r"[-_.]{2,}", "-", stem).strip("-_.") or model


@dataclass(frozen=True)
class ResultMeta:
    """What one results manifest records, typed (see the module docstring)."""

    model: str
    dataset: str
    kind: str  # "space" | "time"
    prompt: str = "empty"
    start_token: str | None = None  # as resolved at build time (None: not recorded)
    random_init: bool = False
    target: str = "latlon"  # what the probes read: "latlon" or "globe"
    n_entities: int = 0
    layers: tuple[int, ...] = ()
    n_model_layers: int = 0
    d_model: int = 0
    limit: int | None = None
    dataset_hash: str = ""  # the dataset's content
    rows_key: str = ""  # the rows the probes saw ("": unknown, equal to nothing)
    created_at: str = ""
    command: str = ""
    prompt_text: str | None = None  # the prefix of every text (None: not recorded)
    key: str = ""  # the results folder's name

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], **known: Any) -> ResultMeta:
        """Parse a results manifest; `known` fields (a loaded result's own kind, layers,
        entity count, rows key...) override what the manifest says. Raises KeyError,
        TypeError or ValueError when a required field (kind, layers) is missing or bad."""
        spec = spec_of(manifest)
        info = dict(manifest.get("model_info", {}) or {})
        kind, layers = known.pop("kind", None), known.pop("layers", None)
        values: dict[str, Any] = {
            "kind": str(manifest["kind"] if kind is None else kind),
            "layers": tuple(int(x) for x in (manifest["layers"] if layers is None else layers)),
        }
        limit = spec.get("limit")
        prompt_text = manifest.get("prompt_text", spec.get("prompt_text"))
        start = spec.get("start_token")
        values.update(
            model=str(spec.get("model", "?")),
            dataset=str(spec.get("dataset", "?")),
            prompt=str(spec.get("prompt", "empty")),
            start_token=None if start is None else str(start),
            random_init=bool(spec.get("random_init", False)),
            target=str((manifest.get("probe") or {}).get("target", "latlon")),
            n_entities=int(manifest.get("n_entities", 0)),
            n_model_layers=int(manifest.get("n_model_layers") or info.get("n_layers") or 0),
            d_model=int(manifest.get("d_model") or info.get("d_model") or 0),
            limit=int(limit) if limit is not None else None,
            dataset_hash=str(manifest.get("dataset_hash", "") or ""),
            rows_key=str(manifest.get(ROWS_KEY, "") or ""),
            created_at=str(manifest.get("created_at", "")),
            command=str(manifest.get("command", "")),
            prompt_text=str(prompt_text) if prompt_text is not None else None,
            key=str(manifest.get("key", "") or ""),
        )
        names = {f.name for f in fields(cls)}
        unknown = set(known) - names
        if unknown:
            raise TypeError(f"unknown ResultMeta fields {sorted(unknown)}")
        values.update({k: v for k, v in known.items() if v is not None})
        if not values["n_model_layers"]:
            stored: Sequence[int] = values["layers"]
            values["n_model_layers"] = max(stored) + 1 if stored else 0
        return cls(**values)

    @property
    def model_id(self) -> str:
        return model_id(self.model, self.random_init)

    @property
    def family(self) -> str:
        return family_of(self.model)

    @property
    def size(self) -> float | None:
        """The parameter count the model's name states (None when it states none)."""
        return name_size(self.model)

    @property
    def rows(self) -> tuple[str, str, str] | None:
        """Which rows the probes saw: (dataset, dataset content, rows key); None when the
        rows key is unknown (such a result is on the same rows as nothing)."""
        if not self.rows_key:
            return None
        return (self.dataset, self.dataset_hash, self.rows_key)

    def shares_rows(self, other: ResultMeta) -> bool:
        """The same dataset content, entities (in order) and train/test split."""
        return self.rows is not None and self.rows == other.rows
