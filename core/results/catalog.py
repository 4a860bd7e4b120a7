"""Discover probe results in a cache root: what the dashboard can show.

The catalog is built only from folders that ``core.common.cache.list_artifacts`` finds
under ``<root>/results/``; selections coming from a URL are matched against it by
value, so no user-supplied string is ever turned into a path.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.common.cache import (
    MANIFEST,
    CacheError,
    artifact_file,
    default_cache_root,
    list_artifacts,
)
from core.common.config import BuildConfig
from core.results.index import ResultSet
from core.results.meta import RANDOM_SUFFIX as RANDOM_SUFFIX  # re-exported
from core.results.meta import ResultMeta, rows_key_of
from core.results.meta import model_id as model_id  # re-exported
from core.results.meta import split_model_id as split_model_id  # re-exported
from core.results.probe_results import ENTITIES, ProbeResults, best_layer_of

log = logging.getLogger(__name__)

DEFAULT_MODEL = (
    "smollm2-135m"  # = core.extract.models.DEFAULT_MODEL, kept here for the no-torch path
)


def model_label(mid: str) -> str:
    name, random_init = split_model_id(mid)
    return f"{name} (random init)" if random_init else name


def build_command(model: str, dataset: str, prompt: str | None = None) -> str:
    """The CLI command that builds results for one selection (model may be a model id)."""
    name, random_init = split_model_id(model)
    return BuildConfig(name, dataset, prompt=prompt or None, random_init=random_init).command()


@dataclass(frozen=True)
class ResultEntry:
    """One finished results folder, described by its manifest (:class:`ResultMeta`)."""

    folder: Path
    key: str
    stamp: str  # changes whenever the folder is rewritten (manifest mtime)
    meta: ResultMeta

    # what the selectors and pages read, all from `meta`
    @property
    def model(self) -> str:
        return self.meta.model

    @property
    def dataset(self) -> str:
        return self.meta.dataset

    @property
    def prompt(self) -> str:
        return self.meta.prompt

    @property
    def random_init(self) -> bool:
        return self.meta.random_init

    @property
    def kind(self) -> str:
        return self.meta.kind

    @property
    def n_entities(self) -> int:
        return self.meta.n_entities

    @property
    def layers(self) -> tuple[int, ...]:
        return self.meta.layers

    @property
    def n_model_layers(self) -> int:
        return self.meta.n_model_layers

    @property
    def d_model(self) -> int:
        return self.meta.d_model

    @property
    def created_at(self) -> str:
        return self.meta.created_at

    @property
    def limit(self) -> int | None:
        return self.meta.limit

    @property
    def command(self) -> str:
        return self.meta.command

    @property
    def prompt_text(self) -> str | None:
        return self.meta.prompt_text

    @property
    def target(self) -> str:
        return self.meta.target

    @property
    def dataset_hash(self) -> str:
        return self.meta.dataset_hash

    @property
    def model_id(self) -> str:
        return self.meta.model_id

    @property
    def family(self) -> str:
        return self.meta.family

    @classmethod
    def from_manifest(cls, folder: Path, manifest: dict[str, Any]) -> ResultEntry | None:
        try:
            meta = ResultMeta.from_manifest(manifest, key=folder.name)
            if not meta.rows_key:  # built before rows keys: read them off its entities
                meta = dataclasses.replace(meta, rows_key=_stored_rows_key(folder, manifest))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("skipping %s: manifest lacks results fields (%s)", folder, exc)
            return None
        if meta.kind not in ("space", "time") or not meta.layers:
            log.warning("skipping %s: kind %r, %d layers", folder, meta.kind, len(meta.layers))
            return None
        return cls(folder=folder, key=folder.name, stamp=_stamp(folder), meta=meta)


def _stored_rows_key(folder: Path, manifest: dict[str, Any]) -> str:
    """The rows key of a results folder's stored entity table ("" when unreadable)."""
    import pandas as pd

    try:
        path = artifact_file(folder, manifest, ENTITIES)
        return rows_key_of(pd.read_parquet(path, columns=["name", "is_test"]))
    except (OSError, ValueError, KeyError, CacheError) as exc:
        log.warning("%s: no rows key (%s)", folder, exc)
        return ""


def _stamp(folder: Path) -> str:
    try:
        st = (folder / MANIFEST).stat()
    except OSError:
        return ""
    return f"{st.st_mtime_ns}-{st.st_size}"


@dataclass(frozen=True)
class Catalog(ResultSet[ResultEntry]):
    """All results found under one cache root; which go together is answered by
    :class:`core.results.index.ResultSet` (find, control_of, shared_sample, pair,
    scale_pairs...)."""

    root: Path
    entries: tuple[ResultEntry, ...] = field(default_factory=tuple)

    @property
    def items(self) -> tuple[ResultEntry, ...]:
        return self.entries

    def datasets(self, model: str | None = None) -> list[str]:
        return sorted({e.dataset for e in self.entries if model is None or e.model_id == model})

    def prompts(self, model: str | None, dataset: str) -> list[str]:
        found = {
            e.prompt
            for e in self.entries
            if e.dataset == dataset and (model is None or e.model_id == model)
        }
        return sorted(found, key=lambda p: (p != "empty", p))

    def compare(self, dataset: str, prompt: str) -> list[ResultEntry]:
        """The best results of every model for one (dataset, prompt), in model order."""
        out = []
        for mid in self.models():
            entry = self.find(mid, dataset, prompt)
            if entry is not None:
                out.append(entry)
        return out

    def kind_of(self, dataset: str) -> str | None:
        for e in self.entries:
            if e.dataset == dataset:
                return e.kind
        return None

    def __len__(self) -> int:
        return len(self.entries)


def signature(root: Path) -> tuple[tuple[str, str], ...]:
    """A cheap fingerprint of the results folder (names and manifest stamps)."""
    base = Path(root) / "results"
    if not base.is_dir():
        return ()
    out = []
    for folder in sorted(base.iterdir()):
        if folder.is_dir() and not folder.name.startswith("."):
            out.append((folder.name, _stamp(folder)))
    return tuple(out)


def discover(root: Path) -> Catalog:
    """Every readable results folder under ``<root>/results``."""
    entries: list[ResultEntry] = []
    for folder, manifest in list_artifacts(Path(root), "results"):
        entry = ResultEntry.from_manifest(folder, manifest)
        if entry is not None:
            entries.append(entry)
    log.debug("catalog of %s: %d results", root, len(entries))
    return Catalog(root=Path(root), entries=tuple(entries))


def load_results(
    model: str,
    dataset: str,
    prompt: str = "empty",
    *,
    random_init: bool = False,
    cache_root: Path | None = None,
) -> ProbeResults:
    """The results of (model, dataset, prompt) under the cache root (default
    ``default_cache_root()``): the one the dashboard shows (most entities, then newest).
    A LookupError names the build command when there are none."""
    root = default_cache_root() if cache_root is None else Path(cache_root)
    entry = discover(root).find(model_id(model, random_init), dataset, prompt)
    if entry is None:
        raise LookupError(
            f"no results for {model_id(model, random_init)} on {dataset} ({prompt}) under "
            f"{root}; build them with: {build_command(model, dataset, prompt)}"
        )
    return ProbeResults.load(entry.folder)


def known_datasets() -> dict[str, str]:
    """Registered dataset names and kinds (for offering build commands); {} if unavailable."""
    try:
        from core.data.registry import list_datasets

        return {spec.name: spec.kind for spec in list_datasets()}
    except Exception as exc:  # the registry imports optional data packages
        log.warning("dataset registry unavailable: %s", exc)
        return {}


def known_models(extra: Iterable[str] = ()) -> list[str]:
    """Registered model names (the default first), then `extra`.

    ``core.extract.models`` imports torch only when a model is loaded, so this stays cheap.
    """
    try:
        from core.extract.models import DEFAULT_MODEL as default
        from core.extract.models import MODELS

        names = [default, *MODELS]
    except ImportError as exc:
        log.warning("core.extract.models unavailable: %s", exc)
        names = [DEFAULT_MODEL]
    return list(dict.fromkeys([*names, *extra]))


# The models the first `make run` converts before anything else (the Qwen parts install
# afterwards): the dashboard opens on one of these, so its first view needs no wait.
OPENING_MODELS: tuple[str, ...] = ("smollm2-135m", "gemma3-270m")


def best_model_on(
    catalog: Catalog,
    dataset: str,
    prompt: str = "empty",
    among: Iterable[str] | None = None,
) -> str | None:
    """The trained (not random-init) model whose test R², at the layer it chooses on its
    training rows, is highest on `dataset` (each model's largest run on it)."""
    import pandas as pd

    best: tuple[float, str] | None = None
    allowed = None if among is None else set(among)
    for entry in catalog.compare(dataset, prompt):
        if allowed is not None and entry.model not in allowed:
            continue
        if entry.random_init:
            continue
        try:
            metrics = pd.read_parquet(entry.folder / "metrics.parquet")
        except (OSError, ValueError) as exc:
            log.warning("cannot read metrics of %s: %s", entry.folder, exc)
            continue
        test = metrics[metrics["split"] == "test"].set_index("layer")["r2"]
        if test.empty or (metrics["split"] != "train").all():
            continue
        score = float(test.get(best_layer_of(metrics), float("nan")))
        if best is None or score > best[0]:
            best = (score, entry.model_id)
    return None if best is None else best[1]
