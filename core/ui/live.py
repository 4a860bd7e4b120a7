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
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from core.extract.models import LoadedModel
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
