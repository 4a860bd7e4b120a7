"""Discover probe results in a cache root: what the dashboard can show.

The catalog is built only from folders that ``core.common.cache.list_artifacts`` finds
under ``<root>/results/``; selections coming from a URL are matched against it by
value, so no user-supplied string is ever turned into a path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.common.cache import MANIFEST, default_cache_root, list_artifacts
from core.common.config import BuildConfig
from core.results.probe_results import ProbeResults, best_layer_of

log = logging.getLogger(__name__)

DEFAULT_MODEL = (
    "smollm2-135m"  # = core.extract.models.DEFAULT_MODEL, kept here for the no-torch path
)
RANDOM_SUFFIX = "@random"  # model id suffix of randomly initialised controls


def model_id(model: str, random_init: bool = False) -> str:
    """The id a model (or its random-init control) has in selectors and URLs."""
    return f"{model}{RANDOM_SUFFIX}" if random_init else model


def split_model_id(mid: str) -> tuple[str, bool]:
    """Inverse of :func:`model_id`: (model name, random_init)."""
    if mid.endswith(RANDOM_SUFFIX):
        return mid[: -len(RANDOM_SUFFIX)], True
    return mid, False


def model_label(mid: str) -> str:
    name, random_init = split_model_id(mid)
    return f"{name} (random init)" if random_init else name


def build_command(model: str, dataset: str, prompt: str | None = None) -> str:
    """The CLI command that builds results for one selection (model may be a model id)."""
    name, random_init = split_model_id(model)
    return BuildConfig(name, dataset, prompt=prompt or None, random_init=random_init).command()


@dataclass(frozen=True)
class ResultEntry:
    """One finished results folder, described by its manifest."""

    folder: Path
    key: str
    model: str
    dataset: str
    prompt: str
    random_init: bool
    kind: str
    n_entities: int
    layers: tuple[int, ...]
    n_model_layers: int
    d_model: int
    created_at: str
    limit: int | None
    command: str
    prompt_text: str | None
    stamp: str  # changes whenever the folder is rewritten (manifest mtime)
    target: str = "latlon"  # what the probes read: "latlon" or "globe"
    dataset_hash: str = ""  # the dataset's content: equal hashes and limits, equal rows

    @property
    def model_id(self) -> str:
        return model_id(self.model, self.random_init)

    @property
    def sample(self) -> tuple[str, int | None, int]:
        """Which rows the probes saw: builds with equal samples share entities and split."""
        return (self.dataset_hash, self.limit, self.n_entities)

    @property
    def family(self) -> str:
        from core.results.scale import family_of

        return family_of(self.model)

    @classmethod
    def from_manifest(cls, folder: Path, manifest: dict[str, Any]) -> ResultEntry | None:
        spec = manifest.get("spec", {}) or {}
        info = manifest.get("model_info", {}) or {}
        try:
            layers = tuple(int(x) for x in manifest["layers"])
            n_model_layers = int(manifest.get("n_model_layers") or info.get("n_layers") or 0)
            limit = spec.get("limit")
            prompt_text = manifest.get("prompt_text", spec.get("prompt_text"))
            entry = cls(
                folder=folder,
                key=folder.name,
                model=str(spec.get("model", "?")),
                dataset=str(spec.get("dataset", "?")),
                prompt=str(spec.get("prompt", "empty")),
                random_init=bool(spec.get("random_init", False)),
                kind=str(manifest["kind"]),
                n_entities=int(manifest.get("n_entities", 0)),
                layers=layers,
                n_model_layers=n_model_layers or (max(layers) + 1 if layers else 0),
                d_model=int(manifest.get("d_model") or info.get("d_model") or 0),
                created_at=str(manifest.get("created_at", "")),
                limit=int(limit) if limit is not None else None,
                command=str(manifest.get("command", "")),
                prompt_text=str(prompt_text) if prompt_text is not None else None,
                stamp=_stamp(folder),
                target=str((manifest.get("probe") or {}).get("target", "latlon")),
                dataset_hash=str(manifest.get("dataset_hash", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("skipping %s: manifest lacks results fields (%s)", folder, exc)
            return None
        if entry.kind not in ("space", "time") or not entry.layers:
            log.warning("skipping %s: kind %r, %d layers", folder, entry.kind, len(entry.layers))
            return None
        return entry


def _stamp(folder: Path) -> str:
    try:
        st = (folder / MANIFEST).stat()
    except OSError:
        return ""
    return f"{st.st_mtime_ns}-{st.st_size}"


@dataclass(frozen=True)
class Catalog:
    """All results found under one cache root."""

    root: Path
    entries: tuple[ResultEntry, ...] = field(default_factory=tuple)

    def models(self) -> list[str]:
        """Model ids with any results: trained models first, then random-init controls."""
        ids = {e.model_id for e in self.entries}
        return sorted(ids, key=lambda m: (split_model_id(m)[1], m))

    def datasets(self, model: str | None = None) -> list[str]:
        return sorted({e.dataset for e in self.entries if model is None or e.model_id == model})

    def prompts(self, model: str | None, dataset: str) -> list[str]:
        found = {
            e.prompt
            for e in self.entries
            if e.dataset == dataset and (model is None or e.model_id == model)
        }
        return sorted(found, key=lambda p: (p != "empty", p))

    def find(
        self, model: str, dataset: str, prompt: str, target: str = "latlon"
    ) -> ResultEntry | None:
        """The best results for a selection: the most entities, then the newest. Globe
        probes are found only when asked for (`target`), never in place of lat/lon ones."""
        hits = [
            e
            for e in self.entries
            if e.model_id == model
            and e.dataset == dataset
            and e.prompt == prompt
            and e.target == target
        ]
        if not hits:
            return None
        return max(hits, key=lambda e: (e.n_entities, e.created_at, e.key))

    def compare(self, dataset: str, prompt: str) -> list[ResultEntry]:
        """The best results of every model for one (dataset, prompt), in model order."""
        out = []
        for mid in self.models():
            entry = self.find(mid, dataset, prompt)
            if entry is not None:
                out.append(entry)
        return out

    def same_rows(
        self, dataset: str, prompt: str, model_ids: Iterable[str] | None = None
    ) -> list[ResultEntry]:
        """One result per model (of `model_ids`, default all), every one on the same rows:
        the sample the most trained models share, then the one with the most entities.
        Models without results on that sample are left out."""
        wanted = set(model_ids) if model_ids is not None else None
        hits = [
            e
            for e in self.entries
            if e.dataset == dataset
            and e.prompt == prompt
            and e.target == "latlon"
            and (wanted is None or e.model_id in wanted)
        ]
        by_sample: dict[tuple[str, int | None, int], dict[str, ResultEntry]] = {}
        for e in sorted(hits, key=lambda e: (e.created_at, e.key)):
            by_sample.setdefault(e.sample, {})[e.model_id] = e  # the newest per model
        if not by_sample:
            return []

        def coverage(sample: tuple[str, int | None, int]) -> tuple[int, int, int]:
            ids = by_sample[sample]
            return (sum(not e.random_init for e in ids.values()), len(ids), sample[2])

        best = by_sample[max(by_sample, key=coverage)]
        return [best[mid] for mid in self.models() if mid in best]

    def pair(
        self, dataset: str, prompt: str, left: str, right: str
    ) -> tuple[ResultEntry | None, ResultEntry | None]:
        """Two models' results on the largest sample both have (each one's own best when
        they share none)."""
        mine = [e for e in self.entries if e.dataset == dataset and e.prompt == prompt]
        lefts = {e.sample: e for e in mine if e.model_id == left and e.target == "latlon"}
        rights = {e.sample: e for e in mine if e.model_id == right and e.target == "latlon"}
        shared = set(lefts) & set(rights)
        if shared:
            sample = max(shared, key=lambda s: s[2])
            return lefts[sample], rights[sample]
        return self.find(left, dataset, prompt), self.find(right, dataset, prompt)

    def scale_pairs(self, dataset: str, prompt: str) -> list[tuple[ResultEntry, ResultEntry]]:
        """(smaller, larger) trained models of one family with results on the same rows
        of `dataset`, smaller first (sizes from the names)."""
        from core.results.scale import name_size

        trained = [m for m in self.models() if not split_model_id(m)[1]]
        out = []
        for i, a in enumerate(trained):
            for b in trained[i + 1 :]:
                small, large = self.pair(dataset, prompt, a, b)
                if small is None or large is None or small.sample != large.sample:
                    continue
                if small.family != large.family:
                    continue
                sizes = (name_size(small.model), name_size(large.model))
                if None in sizes or sizes[0] == sizes[1]:
                    continue
                if (sizes[0] or 0) > (sizes[1] or 0):
                    small, large = large, small
                out.append((small, large))
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


def best_model_on(catalog: Catalog, dataset: str, prompt: str = "empty") -> str | None:
    """The trained (not random-init) model whose test R², at the layer it chooses on its
    training rows, is highest on `dataset` (each model's largest run on it)."""
    import pandas as pd

    best: tuple[float, str] | None = None
    for entry in catalog.compare(dataset, prompt):
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
