"""Live probing: typed names -> the model -> every layer's probe.

The dashboard loads one model per server process and keeps it; this module holds
the Streamlit-free part: which model to load for a results folder, the
compatibility check, and names -> per-layer predictions.

Test/demo hook: with ``SPACETIME_FAKE_MODEL=<module>:<function>`` in the environment,
:func:`load_probe_model` calls that function as ``factory(n_layers=, d_model=, seed=)``
(the tests pass ``tests.support.tiny:tiny_model``: character tokenizer, random weights)
for a stand-in shaped like the results' model instead of loading real weights. Browser
tests use it so they need no converted model; its predictions are meaningless, and the
dashboard says so on the page.

Load counter: with ``SPACETIME_LOAD_COUNTER=<path>`` in the environment, every
call of :func:`load_probe_model` (real or fake model) appends one line
``<pid> <model_id> <fake|real> <unix time>`` to that file before loading, so a
test (or an operator) can check that a server loads each model once however
many sessions use it. Unset, nothing is written.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd

from core.data.prompts import compose
from core.extract.models import LoadedModel
from core.probe.metrics import haversine_km
from core.results.catalog import split_model_id
from core.results.probe_results import ProbeResults

log = logging.getLogger(__name__)

FAKE_MODEL_ENV = "SPACETIME_FAKE_MODEL"
LOAD_COUNTER_ENV = "SPACETIME_LOAD_COUNTER"
MAX_TOKENS = 64
# Intra-op threads for live probes. One name through SmolLM2-135M on this 2-core
# machine (python -m bench.dashboard): 1 thread ~65 ms whether or not other jobs
# run; 2 threads ~38 ms when idle but 0.5-2.8 s while other CPU jobs run (the
# threads wait on each other for whole time slices). One thread keeps the live
# probe well inside its 250 ms budget on a busy machine; SPACETIME_LIVE_THREADS
# overrides it (0 = torch's default).
LIVE_THREADS_ENV = "SPACETIME_LIVE_THREADS"


def _live_threads() -> int | None:
    raw = os.environ.get(LIVE_THREADS_ENV, "").strip()
    if not raw:
        return 1
    try:
        value = int(raw)
    except ValueError:
        log.warning("%s=%r is not an integer; using 1", LIVE_THREADS_ENV, raw)
        return 1
    return value if value > 0 else None


LIVE_THREADS = _live_threads()


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run torch ops of the calling thread on `n` intra-op threads (None: unchanged)."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# What the live probe shows before anything is typed (well-known names of each dataset).
EXAMPLE_NAMES: dict[str, tuple[str, ...]] = {
    "world_places": ("Paris", "Tokyo"),
    "world_capitals": ("Paris", "Tokyo"),
    "us_places": ("Chicago", "Miami"),
    "nyc_places": ("Times Square", "Coney Island"),
    "historical_figures": ("Napoleon", "Ada Lovelace"),
    "artworks": ("Casablanca", "Titanic"),
    "dated_events": ("The first Moon landing",),
}
DEFAULT_EXAMPLES = {"space": ("Paris",), "time": ("Napoleon",)}


def example_names(dataset: str, kind: str) -> tuple[str, ...]:
    return EXAMPLE_NAMES.get(dataset, DEFAULT_EXAMPLES.get(kind, ("Paris",)))


def fake_model_enabled() -> bool:
    return bool(os.environ.get(FAKE_MODEL_ENV, "").strip())


def _stand_in_factory() -> Callable[..., LoadedModel]:
    """The function named by SPACETIME_FAKE_MODEL ("module:function")."""
    spec = os.environ.get(FAKE_MODEL_ENV, "").strip()
    module_name, _, function = spec.partition(":")
    if not module_name or not function:
        raise ValueError(
            f"{FAKE_MODEL_ENV}={spec!r}: expected <module>:<function>, "
            "e.g. tests.support.tiny:tiny_model"
        )
    return getattr(importlib.import_module(module_name), function)


def _count_load(model_id: str, fake: bool) -> None:
    path = os.environ.get(LOAD_COUNTER_ENV, "").strip()
    if not path:
        return
    line = f"{os.getpid()} {model_id} {'fake' if fake else 'real'} {time.time():.3f}\n"
    with open(path, "a", encoding="utf-8") as handle:  # one short append per load
        handle.write(line)


def load_probe_model(
    model_id: str,
    n_layers: int,
    d_model: int,
    cache_root: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadedModel:
    """The model behind a results folder (its random-init control for ``<name>@random``)."""
    name, random_init = split_model_id(model_id)
    _count_load(model_id, fake_model_enabled())
    if fake_model_enabled():
        factory = _stand_in_factory()
        log.warning(
            "%s: using a stand-in model (%d layers, d=%d) instead of %s",
            FAKE_MODEL_ENV,
            n_layers,
            d_model,
            model_id,
        )
        return factory(n_layers=n_layers, d_model=d_model, seed=1000 if random_init else 0)
    from core.extract.models import load_model

    return load_model(name, random_init=random_init, cache_root=cache_root, progress=progress)


def incompatibility(loaded: LoadedModel, results: ProbeResults) -> str | None:
    """Why the probes of `results` cannot read this model's activations (None if they can)."""
    return results.incompatibility(loaded)


def name_activations(
    loaded: LoadedModel, texts: Sequence[str], layers: Sequence[int]
) -> np.ndarray:
    """Last-token activations [len(layers), len(texts), d_model] of the prompt-prefixed names."""
    from core.extract.activations import last_token_activations

    return last_token_activations(loaded, list(texts), max_tokens=MAX_TOKENS, layers=list(layers))


def probe_texts(prompt_text: str, names: Sequence[str]) -> list[str]:
    """What the model reads for each name: the results' prompt prefix + the name."""
    return [compose(prompt_text, name) for name in names]


def predict_names(
    loaded: LoadedModel,
    results: ProbeResults,
    names: Sequence[str],
    prompt_text: str | None = None,
    *,
    threads: int | None = LIVE_THREADS,
) -> dict[str, np.ndarray]:
    """name -> [n_layers, n_targets] predictions in target units (every layer's probe):
    ``results.predict_names(loaded, names, prompt_text)`` (its arguments, in its order;
    default: the results' own prompt) on `threads` torch threads."""
    with torch_threads(threads):
        return results.predict_names(loaded, names, prompt_text, max_tokens=MAX_TOKENS)


# ------------------------------------------------- which probe the live page opens on
LIVE_CHOICES_FILE = "live_probes.json"  # under the cache root, by bench/live_places.py


def probe_description(target: str, n_entities: int) -> str:
    """ "globe-target, 8,000-row" / "lat/lon-target, 1,500-row": a probe in words."""
    what = "globe" if target == "globe" else "lat/lon"
    return f"{what}-target, {n_entities:,}-row"


@dataclass(frozen=True)
class LiveChoice:
    """The probe the benchmark chose for one model: its results folder and why."""

    model: str
    key: str
    target: str
    n_entities: int
    layer: int
    median_km: float
    p90_km: float
    reason: str
    command: str

    @property
    def description(self) -> str:
        return probe_description(self.target, self.n_entities)


def read_live_choices(root: Path) -> dict[str, object]:
    """The benchmark's choices file under cache `root` ({} when missing or unreadable)."""
    import json

    path = Path(root) / LIVE_CHOICES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def live_choice(
    choices: Mapping[str, object], model: str, dataset: str, prompt: str
) -> LiveChoice | None:
    """The benchmark's probe for (model, dataset, prompt), or None when it chose none."""
    if choices.get("dataset") != dataset or choices.get("prompt") != prompt:
        return None
    per_model = choices.get("choices")
    if not isinstance(per_model, dict) or not isinstance(per_model.get(model), dict):
        return None
    c = per_model[model]
    try:
        return LiveChoice(
            model=model,
            key=str(c["key"]),
            target=str(c["target"]),
            n_entities=int(c["n_entities"]),
            layer=int(c["layer"]),
            median_km=float(c["median_km"]),
            p90_km=float(c["p90_km"]),
            reason=str(c["reason"]),
            command=str(choices.get("command", "python -m bench.live_places")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring the live choice for %s: %s", model, exc)
        return None


# ------------------------------------------------------------ the truth of a typed name
# Time datasets whose entities are people: their names are also looked up in WordNet.
PEOPLE_DATASETS = frozenset({"historical_figures"})
# The country a map scope's gazetteer matches are preferred in ("Paris" on a US map).
SCOPE_COUNTRY = {"usa": "United States", "nyc": "United States"}
GAZETTEER = "gazetteer"
DATASET = "dataset"


@dataclass(frozen=True, eq=False)
class NameTruth:
    """What is known of one typed name.

    `matches`: how many entities of the dataset carry the name (case-insensitive,
    stripped, exact). `source`: where the truth comes from: "dataset" (the one entity
    that carries it), "gazetteer" (the offline gazetteer, :mod:`core.data.gazetteer`,
    for a name no entity or several carry) or "" (not found). `values` (the true targets:
    lat, lon or year) only when known; `is_test` only for a dataset row (None when the
    table has no split column). `label`: the true entity as a reader knows it ("Tokyo,
    Japan"); `match`: which gazetteer match was used, in words; `container`: the
    country (state, borough) of the true position on the results' map. `errors`: per
    layer, the prediction's distance from the truth (km for space, years for time).
    """

    name: str
    matches: int
    entity: str | None = None
    values: tuple[float, ...] | None = None
    is_test: bool | None = None
    errors: np.ndarray | None = None
    source: str = DATASET
    label: str = ""
    match: str = ""
    container: str | None = None

    @property
    def known(self) -> bool:
        return self.values is not None

    @property
    def ambiguous(self) -> bool:
        return self.matches > 1

    @property
    def split(self) -> str:
        """Which split the matched entity is in: "test row", "training row", "split
        unknown", or "not a row" for a gazetteer match (meaningful only when known)."""
        if self.source == GAZETTEER:
            return "not a row"
        if self.is_test is None:
            return "split unknown"
        return "test row" if self.is_test else "training row"

    @property
    def shown_as(self) -> str:
        """The truth in a sentence: its label, else the entity, else the typed name."""
        return self.label or self.entity or self.name


def name_key(name: object) -> str:
    """How typed names meet the entity table: stripped, case-folded."""
    return str(name).strip().casefold()


def match_names(
    names: Sequence[str], entities: pd.DataFrame, target_names: Sequence[str]
) -> dict[str, NameTruth]:
    """name -> its :class:`NameTruth` without errors: the one entity of `entities` whose
    ``name`` equals it (case-insensitive, both stripped); none when no entity or several
    do, or when the entity's targets are missing."""
    targets = list(target_names)
    if "name" not in entities or not set(targets) <= set(entities.columns):
        return {name: NameTruth(name, 0) for name in names}
    keys = entities["name"].astype(str).map(name_key).to_numpy()
    out: dict[str, NameTruth] = {}
    for name in names:
        rows = np.flatnonzero(keys == name_key(name)) if name_key(name) else np.array([], int)
        if len(rows) != 1:
            out[name] = NameTruth(name, int(len(rows)))
            continue
        row = entities.iloc[int(rows[0])]
        values = tuple(float(row[t]) for t in targets)
        if not all(np.isfinite(values)):
            out[name] = NameTruth(name, 1, entity=str(row["name"]))
            continue
        is_test = (
            bool(row["is_test"]) if "is_test" in entities and pd.notna(row["is_test"]) else None
        )
        out[name] = NameTruth(name, 1, entity=str(row["name"]), values=values, is_test=is_test)
    return out


def prediction_errors(path: np.ndarray, truth: Sequence[float], kind: str) -> np.ndarray:
    """[n_layers] error of each layer's prediction `path` [n_layers, n_targets]:
    great-circle km from the true (lat, lon) for space, absolute years for time."""
    path = np.asarray(path, dtype=np.float64).reshape(len(path), -1)
    if kind == "space":
        return np.asarray(haversine_km(path[:, 0], path[:, 1], truth[0], truth[1]))
    return np.abs(path[:, 0] - float(truth[0]))


def _dataset_container(truth: NameTruth, entities: pd.DataFrame, scope: str | None) -> str | None:
    """The outline a dataset row's container label names, else the one its true point
    falls in (None off the outlines, or without a map scope)."""
    if scope is None or truth.values is None:
        return None
    from core.viz import containers as cont

    column = cont.container_column(entities, scope)
    if column is not None and truth.entity is not None:
        keys = entities["name"].astype(str).map(name_key)
        labels = entities.loc[keys == name_key(truth.entity), column]
        if len(labels):
            found = cont.match_container(labels.iloc[0], scope)
            if found is not None:
                return found
    return cont.lands_in([truth.values[0]], [truth.values[1]], scope)[0]


def _label(entity: str, container: str | None) -> str:
    return f"{entity}, {container}" if container and container != entity else entity


def gazetteer_truth(name: str, kind: str, dataset: str, scope: str | None) -> NameTruth | None:
    """The gazetteer's truth for a name the dataset does not settle: the most populous
    place of that name (space), the WordNet person (time, people datasets only)."""
    from core.data import gazetteer

    if kind == "space":
        found = gazetteer.lookup_place(name, country=SCOPE_COUNTRY.get(scope or ""))
        if found is None:
            return None
        place = found.place
        container: str | None = None
        if scope == "world":
            container = place.country
        elif scope == "usa":
            container = place.state or place.country
        elif scope is not None:
            from core.viz import containers as cont

            container = cont.lands_in([place.lat], [place.lon], scope)[0]
        return NameTruth(
            name,
            0,
            entity=place.name,
            values=(place.lat, place.lon),
            source=GAZETTEER,
            label=place.label,
            match=found.describe(),
            container=container,
        )
    if dataset not in PEOPLE_DATASETS:
        return None
    person = gazetteer.lookup_person(name)
    if person is None:
        return None
    return NameTruth(
        name,
        0,
        entity=person.person.name,
        values=(person.person.year,),
        source=GAZETTEER,
        label=person.person.name,
        match=person.describe(),
    )


def find_truths(
    names: Sequence[str], results: ProbeResults, scope: str | None = None, gazetteer: bool = True
) -> dict[str, NameTruth]:
    """name -> its truth without errors: the dataset's one entity of that name first,
    then (with `gazetteer`) the offline gazetteer; `scope` is the results' map scope."""
    matched = match_names(names, results.entities, results.target_names)
    out: dict[str, NameTruth] = {}
    for name, truth in matched.items():
        if truth.known:
            container = _dataset_container(truth, results.entities, scope)
            out[name] = dataclass_replace(
                truth,
                container=container,
                label=_label(str(truth.entity), container) if results.kind == "space" else "",
            )
            continue
        found = gazetteer_truth(name, results.kind, results.dataset, scope) if gazetteer else None
        if found is None:
            out[name] = dataclass_replace(truth, source="")
        else:
            out[name] = dataclass_replace(found, matches=truth.matches)
    return out


def name_truths(
    paths: Mapping[str, np.ndarray],
    results: ProbeResults,
    scope: str | None = None,
    gazetteer: bool = True,
) -> dict[str, NameTruth]:
    """name -> its truth (:func:`find_truths`), with every layer's error."""
    found = find_truths(list(paths), results, scope, gazetteer)
    return {
        name: (
            dataclass_replace(t, errors=prediction_errors(paths[name], t.values, results.kind))
            if t.values is not None
            else t
        )
        for name, t in found.items()
    }


def landing_containers(
    paths: Mapping[str, np.ndarray],
    layers: Sequence[int] | np.ndarray,
    layer: int,
    scope: str | None,
) -> dict[str, str | None]:
    """name -> the country (state, borough) its prediction at `layer` falls in (None at
    sea or beyond the outlines; every name None without a map scope)."""
    if scope is None or not paths:
        return {name: None for name in paths}
    from core.viz import containers as cont

    pos = [int(v) for v in layers].index(int(layer))
    names = list(paths)
    lat = [float(paths[n][pos, 0]) for n in names]
    lon = [float(paths[n][pos, 1]) for n in names]
    return dict(zip(names, cont.lands_in(lat, lon, scope), strict=True))


def _year(value: float) -> str:
    return f"{-value:,.0f} BC" if value < 0 else f"{value:.0f}"


def truth_headline(
    truth: NameTruth,
    path: np.ndarray,
    layers: Sequence[int] | np.ndarray,
    layer: int,
    kind: str,
    dataset: str,
    scope: str | None = None,
    landed: str | None = None,
) -> str:
    """One sentence on a typed name at `layer`: where (when) the probe puts it, how far
    that is from the truth and, on a map, which country (state, borough) the prediction
    falls in against the true one: "Tokyo: predicted in Saudi Arabia, 8,600 km from
    Tokyo, Japan". Plain text (escape it for markdown)."""
    pos = [int(v) for v in layers].index(int(layer))
    noun = {"world": "country", "usa": "state", "nyc": "borough"}.get(scope or "", "")
    if kind == "space":
        if scope is None:
            where = f"predicted at {path[pos, 0]:.1f}°, {path[pos, 1]:.1f}°"
        elif landed is None:
            where = f"predicted outside every {noun} (at sea or beyond the map)"
        else:
            where = f"predicted in {landed}"
    else:
        where = f"predicted {_year(float(path[pos, 0]))}"
    if truth.values is None:
        looked = f"{dataset} or the gazetteer" if kind == "space" else dataset
        if kind == "time" and dataset in PEOPLE_DATASETS:
            looked = f"{dataset} or WordNet"
        why = f"{truth.matches} entities of {dataset} share it; " if truth.ambiguous else ""
        return f"{truth.name}: {where}; {why}not found in {looked}, so no true value to compare."
    off = float(truth.errors[pos]) if truth.errors is not None else None
    if kind == "space":
        text = f"{truth.name}: {where}"
        if off is not None:
            text += f", {off:,.0f} km from {truth.shown_as}"
        if scope is not None and truth.container is not None and landed is not None:
            text += f" (the right {noun})" if landed == truth.container else ""
        return text
    text = f"{truth.name}: {where}"
    if off is not None:
        text += f", {off:,.0f} years from {_year(truth.values[0])}"
    return text + (f" ({truth.shown_as})" if truth.shown_as != truth.name else "")


class TruthMarks(TypedDict):
    """The live figures' keyword arguments for the names the dataset knows."""

    truths: dict[str, tuple[float, ...]]
    errors: dict[str, np.ndarray]
    truth_labels: dict[str, str]


def truth_marks(truths: Mapping[str, NameTruth]) -> TruthMarks:
    """What the live map or timeline draws of `truths`: true values, per-layer errors and
    each entity's split, for the names the dataset knows."""
    return TruthMarks(
        truths={n: t.values for n, t in truths.items() if t.values is not None},
        errors={n: t.errors for n, t in truths.items() if t.errors is not None},
        truth_labels={
            n: (f"gazetteer: {t.shown_as}" if t.source == GAZETTEER else t.split)
            for n, t in truths.items()
            if t.values is not None
        },
    )


def error_unit(kind: str) -> str:
    return "km" if kind == "space" else "years"


# the table's "row" column: which split a known name is in, or where its truth comes from
ROW_LABELS = {"training row": "training", "test row": "test", "not a row": GAZETTEER}


def prediction_table(
    paths: Mapping[str, np.ndarray],
    layers: Sequence[int] | np.ndarray,
    target_names: Sequence[str],
    kind: str,
    truths: Mapping[str, NameTruth],
) -> pd.DataFrame:
    """One row per (name, layer): the predictions and, for names the dataset knows, the
    truth, the error and whether the entity is a training or a test row (columns for
    these only when some name is known)."""
    any_known = any(truths[n].known for n in paths if n in truths)
    unit = error_unit(kind)
    rows = []
    for name, path in paths.items():
        truth = truths.get(name)
        values = truth.values if truth is not None else None
        errors = truth.errors if truth is not None else None
        for i, lay in enumerate(layers):
            row: dict[str, object] = {"name": name, "layer": int(lay)}
            for j, target in enumerate(target_names):
                row[f"predicted {target}"] = round(float(path[i, j]), 2)
            if any_known:
                for j, target in enumerate(target_names):
                    row[f"true {target}"] = round(values[j], 2) if values is not None else None
                row[f"error ({unit})"] = round(float(errors[i]), 1) if errors is not None else None
                row["row"] = (
                    ROW_LABELS.get(truth.split, truth.split)
                    if truth is not None and values
                    else None
                )
            rows.append(row)
    return pd.DataFrame(rows)


SPLIT_NOTES = {
    "training row": "a training row: the probes were fitted on it, so its error flatters them",
    "test row": "a test row: the probes never saw it",
    "split unknown": "the results do not say whether it is a training or a test row",
    "not a row": "not among the probes' rows: they never saw it",
}


def truth_note(
    truth: NameTruth,
    kind: str,
    dataset: str,
    layers: Sequence[int] | np.ndarray = (),
    layer: int | None = None,
) -> str:
    """One line of plain text on what `dataset` says of a typed name; with `layer` (one
    of `layers`), how far that layer's probe puts it from the truth."""
    what = "position" if kind == "space" else "year"
    shared = (
        f"{truth.matches} entities of {dataset} are called {truth.name!r}"
        if truth.ambiguous
        else ""
    )
    if truth.values is None:
        if shared:
            return f"{shared}, and the gazetteer has none, so no true {what} is shown for it."
        return (
            f"{truth.name!r} is not found in {dataset} or the offline gazetteer: "
            f"no true {what} is known, predictions only."
        )
    true = (
        f"{truth.values[0]:.2f}°, {truth.values[1]:.2f}°"
        if kind == "space"
        else f"{truth.values[0]:.0f}"
    )
    if truth.source == GAZETTEER:
        text = f"{shared}; " if shared else f"{truth.name!r} is not in {dataset}; "
        text += f"the gazetteer's match: {truth.match}, true {what} {true}"
    else:
        same = truth.entity == truth.name
        text = f"{truth.name!r}" + ("" if same else f" matches {truth.entity!r}")
        text += f" in {dataset}: true {what} {true}"
    text += f" ({SPLIT_NOTES[truth.split]})"
    positions = [int(v) for v in layers]
    if truth.errors is not None and layer is not None and layer in positions:
        off = truth.errors[positions.index(layer)]
        text += f"; layer {layer}'s probe is off by {off:,.0f} {error_unit(kind)}"
    return text + "."


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def markdown_text(text: str) -> str:
    """`text` escaped for Streamlit markdown (st.caption): typed names show as typed,
    never as emphasis, links, LaTeX or colour directives."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
