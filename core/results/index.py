"""The result index: what ships, and which results go together.

What ships is one folder name per line in ``<cache>/<kind>/SHIPPED``. Which results go
together (a result and its random-init control, several models on the same rows, two
sizes of one family, the pair Compare shows) is decided here only, by
:class:`ResultSet`, from each result's metadata and its rows key.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from core.results.meta import ResultMeta, family_of, name_size, split_model_id

# Written by `python -m core demo`: the result folders that ship (tests and the README's
# scoreboard read these only, never whatever else a user built into the cache).
SHIPPED_INDEX = "SHIPPED"


def write_shipped_index(
    cache_root: Path, folders: Iterable[Path | None], kind: str = "results"
) -> Path:
    """Record which `kind` folders ship (one name per line): results, or the analyses
    (named by their results' keys)."""
    path = Path(cache_root) / kind / SHIPPED_INDEX
    names = sorted({Path(folder).name for folder in folders if folder is not None})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(names) + "\n")
    return path


def shipped_names(cache_root: Path, kind: str) -> set[str] | None:
    """The folder names a kind's index lists; None without an index (nothing shipped)."""
    index = Path(cache_root) / kind / SHIPPED_INDEX
    return set(index.read_text().split()) if index.is_file() else None


# ------------------------------------------------------------------ the result index
class HasMeta(Protocol):
    """A result the index can pair: a catalog entry or loaded `ProbeResults`."""

    @property
    def meta(self) -> ResultMeta: ...


R = TypeVar("R", bound=HasMeta)


def _newest(meta: ResultMeta) -> tuple[str, str]:
    return (meta.created_at, meta.key)


def _best(meta: ResultMeta) -> tuple[int, str, str]:
    """Which of several results of one selection to show: the most entities, then newest."""
    return (meta.n_entities, *_newest(meta))


class ResultSet(Generic[R]):
    """Which results go together: the one place that finds a result, its random-init
    control, the results on the same rows, the sample several models share, the scale
    pairs and the pair Compare shows. Everything is decided from the results' metadata
    (:class:`core.results.meta.ResultMeta`); "the same rows" is always equal rows keys
    (and dataset content), never an entity count or a limit.

    Works over catalog entries (``core.results.catalog.Catalog`` is one) and over
    loaded ``ProbeResults`` alike.
    """

    def __init__(self, items: Iterable[R] = ()) -> None:
        self._items: tuple[R, ...] = tuple(items)

    @property
    def items(self) -> tuple[R, ...]:
        return self._items

    def _with_meta(self) -> list[tuple[R, ResultMeta]]:
        return [(item, item.meta) for item in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def models(self) -> list[str]:
        """Model ids with any results: trained models first, then random-init controls."""
        ids = {m.model_id for _, m in self._with_meta()}
        return sorted(ids, key=lambda mid: (split_model_id(mid)[1], mid))

    def find(self, model: str, dataset: str, prompt: str, target: str = "latlon") -> R | None:
        """The results shown for a selection (a model id): the most entities, then the
        newest. Globe probes are found only when asked for (`target`), never in place of
        lat/lon ones."""
        hits = [
            (item, m)
            for item, m in self._with_meta()
            if (m.model_id, m.dataset, m.prompt, m.target) == (model, dataset, prompt, target)
        ]
        return max(hits, key=lambda hit: _best(hit[1]))[0] if hits else None

    def control_of(self, result: HasMeta) -> R | None:
        """The random-init control of a trained result: the same model, dataset, prompt
        and probe target on identical rows (the newest when rebuilt). None when there is
        none (:meth:`missing_control` says why): a control on other rows is never taken
        in its place."""
        own = result.meta
        if own.random_init:
            return None
        hits = [
            (item, m)
            for item, m in self._with_meta()
            if m.random_init
            and (m.model, m.dataset, m.prompt, m.target)
            == (own.model, own.dataset, own.prompt, own.target)
            and own.shares_rows(m)
        ]
        return max(hits, key=lambda hit: _newest(hit[1]))[0] if hits else None

    def missing_control(self, result: HasMeta) -> str:
        """Why :meth:`control_of` finds no control ("" when it finds one)."""
        own = result.meta
        if own.random_init:
            return f"these results are one ({own.model_id})"
        if self.control_of(result) is not None:
            return ""
        others = sorted(
            {
                m.n_entities
                for _, m in self._with_meta()
                if m.random_init
                and (m.model, m.dataset, m.prompt, m.target)
                == (own.model, own.dataset, own.prompt, own.target)
            }
        )
        if not others:
            return f"not built (none of {own.model} on {own.dataset}, prompt {own.prompt})"
        if own.rows is None:
            return f"not known to be on these rows ({own.key or own.model} has no rows key)"
        sizes = ", ".join(f"{n:,}" for n in others)
        return (
            f"not on these rows (those of {own.model} on {own.dataset} were built on other "
            f"rows, n={sizes}; none on these {own.n_entities:,})"
        )

    def same_rows(self, result: HasMeta) -> list[R]:
        """Every result (any model, control or target) of the same prompt on exactly the
        rows `result` saw, `result` itself included when it is in the set."""
        own = result.meta
        return [
            item for item, m in self._with_meta() if m.prompt == own.prompt and own.shares_rows(m)
        ]

    def _by_rows(self, dataset: str, prompt: str, model: str) -> dict[tuple[str, str, str], R]:
        """rows -> the newest lat/lon result of one model id on them."""
        out: dict[tuple[str, str, str], tuple[R, ResultMeta]] = {}
        for item, m in self._with_meta():
            if (m.model_id, m.dataset, m.prompt, m.target) != (model, dataset, prompt, "latlon"):
                continue
            if m.rows is not None and (m.rows not in out or _newest(m) > _newest(out[m.rows][1])):
                out[m.rows] = (item, m)
        return {rows: item for rows, (item, _) in out.items()}

    def shared_sample(self, dataset: str, prompt: str = "empty") -> list[R]:
        """One lat/lon result per model id (controls too, the newest per model) on the
        rows the most trained models share, then the most models, then the most rows:
        models compare on identical entities. In :meth:`models` order."""
        groups: dict[tuple[str, str, str], dict[str, tuple[R, ResultMeta]]] = {}
        for item, m in sorted(self._with_meta(), key=lambda hit: _newest(hit[1])):
            if (m.dataset, m.prompt, m.target) == (dataset, prompt, "latlon") and m.rows:
                groups.setdefault(m.rows, {})[m.model_id] = (item, m)  # the newest per model
        if not groups:
            return []

        def coverage(rows: tuple[str, str, str]) -> tuple[int, int, int, tuple[str, str]]:
            members = groups[rows].values()
            return (
                sum(not m.random_init for _, m in members),
                len(members),
                max(m.n_entities for _, m in members),
                max(_newest(m) for _, m in members),
            )

        best = groups[max(groups, key=coverage)]
        return [best[mid][0] for mid in self.models() if mid in best]

    def _shared_rows(self, dataset: str, prompt: str, left: str, right: str) -> tuple[R, R] | None:
        """Two model ids' results on the largest rows both have (None: they share none)."""
        lefts = self._by_rows(dataset, prompt, left)
        rights = self._by_rows(dataset, prompt, right)
        shared = [rows for rows in lefts if rows in rights]
        if not shared:
            return None
        rows = max(shared, key=lambda r: (lefts[r].meta.n_entities, _newest(lefts[r].meta), r))
        return lefts[rows], rights[rows]

    def pair(self, dataset: str, prompt: str, left: str, right: str) -> tuple[R | None, R | None]:
        """What Compare shows for two model ids: their results on the largest rows both
        have, else each one's own (:meth:`find`)."""
        shared = self._shared_rows(dataset, prompt, left, right)
        if shared is not None:
            return shared
        return self.find(left, dataset, prompt), self.find(right, dataset, prompt)

    def scale_pairs(
        self, dataset: str | None = None, prompt: str | None = None
    ) -> list[tuple[R, R]]:
        """(smaller, larger): two trained models of one family whose names state
        different sizes (equal sizes are no scale pair), lat/lon probes on identical rows
        of one dataset and prompt (the largest rows they share). Every dataset and prompt
        unless given; ordered by dataset, prompt, family and models."""
        trained: dict[tuple[str, str], set[str]] = {}
        for _, m in self._with_meta():
            if m.random_init or m.target != "latlon" or m.size is None:
                continue
            if (dataset is None or m.dataset == dataset) and (prompt is None or m.prompt == prompt):
                trained.setdefault((m.dataset, m.prompt), set()).add(m.model)
        out: list[tuple[tuple[str, str, str, float, float, str, str], tuple[R, R]]] = []
        for (ds, pr), models in trained.items():
            ordered = sorted(models, key=lambda name: (name_size(name) or 0.0, name))
            for i, small in enumerate(ordered):
                for large in ordered[i + 1 :]:
                    sizes = (name_size(small) or 0.0, name_size(large) or 0.0)
                    if family_of(small) != family_of(large) or sizes[0] == sizes[1]:
                        continue
                    shared = self._shared_rows(ds, pr, small, large)
                    if shared is not None:
                        order = (ds, pr, family_of(large), *sizes, large, small)
                        out.append((order, shared))
        return [pair for _, pair in sorted(out, key=lambda hit: hit[0])]
