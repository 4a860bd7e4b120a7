"""The live probe's cached work for the pages (not a page: the leading underscore keeps
it out of page discovery): the selected results' model, the prompt prefix, name
predictions and steered answers, each computed once per server process.

These take the page's ``Context`` (``pages._state``), so they live apart from
``pages._loaders``, which ``pages._state`` is built on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from core.results import catalog as cat
from core.results.probe_results import ProbeResults
from pages._loaders import cache_root, freeze_long_lived_objects
from pages._state import Context

log = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False, max_entries=2)
def _probe_model(
    model_id: str,
    n_layers: int,
    d_model: int,
    root: str,
    fake: bool,
    _progress: Callable[[str], None] | None = None,
) -> Any:
    from core.ui import live

    model = live.load_probe_model(
        model_id, n_layers, d_model, cache_root=Path(root), progress=_progress
    )
    freeze_long_lived_objects()  # torch, transformers and the model itself
    return model


def _show(placeholder: Any, message: str) -> None:
    placeholder.caption(message)


def probe_model(ctx: Context) -> Any:
    """The model of the selected results, loaded once per server process (spinner
    meanwhile)."""
    from core.ui import live

    assert ctx.entry is not None
    e = ctx.entry
    stage = st.empty()  # what the first load is doing (joining parts, converting, waiting)
    with st.spinner(
        f"Loading {cat.model_label(e.model_id)} (once per server; the first load of a GGUF "
        "model converts it, a minute or more)…"
    ):
        model = _probe_model(
            e.model_id,
            e.n_model_layers,
            e.d_model,
            str(cache_root()),
            live.fake_model_enabled(),
            _progress=lambda message: _show(stage, message),
        )
    stage.empty()
    return model


@st.cache_data(show_spinner=False)
def _registry_prompt_text(dataset: str, prompt: str) -> str | None:
    try:
        from core.data.registry import load_dataset

        return load_dataset(dataset).prompt_text(prompt)
    except Exception as exc:  # unknown dataset/prompt, missing data package
        log.warning("no prompt text for %s/%s: %s", dataset, prompt, exc)
        return None


def prompt_text(ctx: Context) -> str:
    """The prefix the results were built with (manifest first, then the dataset registry)."""
    assert ctx.entry is not None
    if ctx.entry.prompt_text is not None:
        return ctx.entry.prompt_text
    if ctx.entry.prompt == "empty":
        return ""
    text = _registry_prompt_text(ctx.entry.dataset, ctx.entry.prompt)
    if text is None:
        ctx.page_notes.append(
            f"The results do not record the text of prompt {ctx.entry.prompt!r}; "
            "names are probed without a prefix."
        )
        return ""
    return text


RATE_CAP_KEY = "_live_rate_cap"


def _rate_cap() -> Any:
    """This session's :class:`core.ui.fair_share.RateCap` (names through the model a minute)."""
    from core.ui import fair_share as fair

    cap = st.session_state.get(RATE_CAP_KEY)
    if cap is None:
        cap = fair.RateCap(fair.rate_limit())
        st.session_state[RATE_CAP_KEY] = cap
    return cap


def probe_names(
    ctx: Context, model: Any, prefix: str, names: Sequence[str]
) -> dict[str, np.ndarray]:
    """name -> [n_layers, n_targets], each name computed once per (model, results, prompt)
    and server process. Names not yet computed take their turn in the server's model queue
    one by one (a "busy, N ahead of you" note while they wait) and count against the
    session's probe cap; the names the cap or a full queue holds back are left out, with a
    note saying so (the page stops when none is left). See core/ui/fair_share.py."""
    from core.ui import fair_share as fair
    from core.ui import live

    assert ctx.entry is not None and ctx.loaded is not None
    base = (f"{model.name}:{model.weights_hash}", str(ctx.entry.folder), ctx.entry.stamp, prefix)
    done: dict[str, np.ndarray] = {}
    missing = []
    for name in names:
        hit = fair.PREDICTIONS.get((*base, name))
        if hit is not None:
            done[name] = np.array(hit)
        elif name not in missing:
            missing.append(name)
    held_back = ""
    if missing:
        cap = _rate_cap()
        decision = cap.take(len(missing))
        if decision.allowed < len(missing):
            held_back = fair.capped_message(cap, decision, len(missing) - decision.allowed)
        notice = st.empty()
        counted = decision.allowed
        try:
            for name in missing[: decision.allowed]:
                try:
                    with fair.MODEL_QUEUE.turn(
                        on_wait=lambda ahead: notice.info(fair.busy_message(ahead), icon="⏳")
                    ):
                        value = live.predict_names(model, ctx.loaded.results, [name], prefix)[name]
                except fair.QueueFull as full:
                    held_back = fair.full_message(full.ahead)
                    break
                counted -= 1
                fair.PREDICTIONS.put((*base, name), np.array(value))
                done[name] = np.array(value)
        finally:
            cap.refund(counted)  # names that never reached the model cost nothing
            notice.empty()
    if held_back:
        st.warning(held_back, icon="⏳")
        if not done:
            st.stop()
    return {name: done[name] for name in names if name in done}


@st.cache_data(show_spinner=False, max_entries=64)
def _steered(
    model_key: str,
    folder: str,
    stamp: str,
    prefix: str,
    name: str,
    layer: int,
    target: tuple[float, ...],
    strength: float,
    question: str,
    _model: Any,
    _results: ProbeResults,
    _cap: Any,
) -> Any:
    from core.steer.run import steer_one
    from core.ui import fair_share as fair
    from core.ui import live

    decision = _cap.take(1)  # one generation counts as one probe against the session's cap
    if not decision.allowed:
        raise _Held(fair.capped_message(_cap, decision, 1))
    try:
        with fair.MODEL_QUEUE.turn(), live.torch_threads(live.LIVE_THREADS):
            return steer_one(_model, _results, prefix, name, layer, target, strength, question)
    except fair.QueueFull as full:
        _cap.refund(1)
        raise _Held(fair.full_message(full.ahead)) from None


class _Held(Exception):
    """A steering run the probe cap or a full model queue held back (the page says why)."""


def steer_name(
    ctx: Context,
    model: Any,
    prefix: str,
    name: str,
    layer: int,
    target: Sequence[float],
    strength: float,
    question: str,
) -> Any:
    """:func:`core.steer.run.steer_one`, computed once per choice (per model and results),
    in its turn in the server's model queue (the page stops with a note when the session's
    probe cap or a full queue holds it back)."""
    assert ctx.entry is not None and ctx.loaded is not None
    try:
        return _steered(
            f"{model.name}:{model.weights_hash}",
            str(ctx.entry.folder),
            ctx.entry.stamp,
            prefix,
            name,
            int(layer),
            tuple(float(v) for v in target),
            float(strength),
            question,
            model,
            ctx.loaded.results,
            _rate_cap(),
        )
    except _Held as held:
        st.warning(str(held), icon="⏳")
        st.stop()
