"""One build of the tiny model on synthetic places, run in a child process that
``test_interrupted_builds`` kills with SIGKILL.

Two ways a run dies:

* at a random time chosen by the parent, which sends SIGKILL from outside;
* at a commit point: the child sends SIGKILL to itself just before or just after
  the n-th ``os.replace`` / ``shutil.rmtree`` whose label matches (the moments
  where a finished write becomes visible, or a finished build is cleaned up).

``throttle`` slows compute (seconds per batch, four times that per probe layer)
so that a random time lands inside the activation or the probe stage rather than
in start-up; it changes no value.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

N_ENTITIES = 240
N_LAYERS = 6
D_MODEL = 32
BATCH_SIZE = 8
COMMAND = "python -m core build --model tiny-llama --dataset synthetic_places (reliability test)"


def label(call: str, target: str) -> str:
    """'os.replace progress.json', 'os.replace <key>', 'shutil.rmtree .partial-<key>', ..."""
    name = Path(target).name
    name = re.sub(
        r"^(\.partial-|\.tmp-)?tiny-llama__.*$", lambda m: (m.group(1) or "") + "<key>", name
    )
    return f"{call} {re.sub(r'[0-9]+', '#', name)}"


def _slowed(fn: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        time.sleep(seconds)
        return out

    return wrapper


def _commit_points(kill_label: str, occurrence: int, after: bool, trace: list[str]) -> None:
    """Record every commit point in `trace`; SIGKILL at the `occurrence`-th one labelled
    `kill_label`."""
    seen = [0]

    def wrap(call: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            here = label(call, str(args[1] if call == "os.replace" else args[0]))
            trace.append(here)
            hit = False
            if here == kill_label:
                seen[0] += 1
                hit = seen[0] == occurrence
            if hit and not after:
                os.kill(os.getpid(), signal.SIGKILL)
            out = fn(*args, **kwargs)
            if hit and after:
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        return wrapper

    os.replace = wrap("os.replace", os.replace)  # type: ignore[assignment]
    shutil.rmtree = wrap("shutil.rmtree", shutil.rmtree)  # type: ignore[assignment]


def run(
    root: str,
    throttle: float = 0.0,
    kill_label: str = "",
    occurrence: int = 1,
    after: bool = False,
    trace_file: str = "",
) -> None:
    """Build (or resume) activations and probes under `root`; see the module docstring."""
    import core.extract.store
    import core.results.build
    from core.common.config import BuildConfig
    from core.results.build import build
    from tests.conftest import synthetic_places
    from tests.support.tiny import tiny_model

    # Every batch reaches the ledger (the default checkpoints every few seconds), so a
    # kill at a random moment resumes mid-build rather than from the start.
    core.extract.store.CHECKPOINT_SECONDS = 0.0
    if throttle:
        core.extract.store.forward_batch_tensor = _slowed(
            core.extract.store.forward_batch_tensor, throttle
        )  # type: ignore[assignment]
        core.results.build.fit_layer = _slowed(core.results.build.fit_layer, 4 * throttle)  # type: ignore[assignment]
    trace: list[str] = []
    if kill_label or trace_file:
        _commit_points(kill_label, occurrence, after, trace)
    build(
        BuildConfig(
            model="tiny-llama",
            dataset=synthetic_places(N_ENTITIES),
            max_batch_size=BATCH_SIZE,
            cache_root=Path(root),
        ),
        loaded=tiny_model(n_layers=N_LAYERS, d_model=D_MODEL),
        command=COMMAND,
    )
    if trace_file:
        Path(trace_file).write_text("\n".join(trace))
