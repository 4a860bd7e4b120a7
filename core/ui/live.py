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
    return [prompt_text + name for name in names]


def predict_names(
    loaded: LoadedModel,
    results: ProbeResults,
    prompt_text: str,
    names: Sequence[str],
    threads: int | None = LIVE_THREADS,
) -> dict[str, np.ndarray]:
    """name -> [n_layers, n_targets] predictions in target units (every layer's probe):
    :meth:`ProbeResults.predict_names` on `threads` torch threads."""
    with torch_threads(threads):
        return results.predict_names(loaded, names, prompt_text, max_tokens=MAX_TOKENS)


# ------------------------------------------------------------ the truth of a typed name
@dataclass(frozen=True, eq=False)
class NameTruth:
    """What the dataset knows of one typed name.

    `matches`: how many entities carry the name (case-insensitive, stripped, exact);
    `values` (the true targets: lat, lon or year) and `is_test` only when exactly one
    does. `is_test` is None when the table has no split column. `errors`: per layer, the
    prediction's distance from the truth (km for space, years for time); None without
    a truth.
    """

    name: str
    matches: int
    entity: str | None = None
    values: tuple[float, ...] | None = None
    is_test: bool | None = None
    errors: np.ndarray | None = None

    @property
    def known(self) -> bool:
        return self.values is not None

    @property
    def ambiguous(self) -> bool:
        return self.matches > 1

    @property
    def split(self) -> str:
        """Which split the matched entity is in: "test row", "training row" or
        "split unknown" (meaningful only when known)."""
        if self.is_test is None:
            return "split unknown"
        return "test row" if self.is_test else "training row"


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


def name_truths(paths: Mapping[str, np.ndarray], results: ProbeResults) -> dict[str, NameTruth]:
    """name -> its truth in `results`' entity table, with every layer's error."""
    matched = match_names(list(paths), results.entities, results.target_names)
    return {
        name: (
            dataclass_replace(t, errors=prediction_errors(paths[name], t.values, results.kind))
            if t.values is not None
            else t
        )
        for name, t in matched.items()
    }


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
        truth_labels={n: t.split for n, t in truths.items() if t.values is not None},
    )


def error_unit(kind: str) -> str:
    return "km" if kind == "space" else "years"


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
                    truth.split.removesuffix(" row") if truth is not None and values else None
                )
            rows.append(row)
    return pd.DataFrame(rows)


SPLIT_NOTES = {
    "training row": "a training row: the probes were fitted on it, so its error flatters them",
    "test row": "a test row: the probes never saw it",
    "split unknown": "the results do not say whether it is a training or a test row",
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
    if truth.ambiguous:
        return (
            f"{truth.matches} entities of {dataset} are called {truth.name!r}, "
            f"so no true {what} is shown for it."
        )
    if truth.values is None:
        return f"{truth.name!r} is not in {dataset}: no true {what} is known, predictions only."
    true = (
        f"{truth.values[0]:.2f}°, {truth.values[1]:.2f}°"
        if kind == "space"
        else f"{truth.values[0]:.0f}"
    )
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
