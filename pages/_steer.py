"""The Live probe page's "Steer" section: push a typed name along a layer's probe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from core.steer.run import question_for
from core.steer.targets import find_place
from core.viz import steer_figures as sfigs
from pages._live import steer_name
from pages._state import Context
from pages._widgets import show_figure

PLACE_HINT = "a place in these results, a city, or 'lat, lon'"


def _target(ctx: Context, kind: str) -> tuple[list[float], str] | None:
    assert ctx.loaded is not None
    if kind != "space":
        year = st.number_input("Toward the year", value=1000, step=50, key="steer_year")
        return [float(year)], f"{int(year)}"
    text = st.text_input(f"Toward ({PLACE_HINT})", value="Tokyo", key="steer_target")
    try:
        place = find_place(text, ctx.loaded.results.entities)
    except ValueError as exc:
        st.error(str(exc))
        return None
    if place is None:
        st.warning(f"No place called {text!r} in these results or in GeoNames' cities.")
        return None
    return [place[0], place[1]], text.strip()


def steer_section(ctx: Context, model: Any, prefix: str, names: Sequence[str]) -> None:
    """Choose a name, a target, a layer and a strength; show both continuations, the
    random-direction control and every layer's reading."""
    assert ctx.loaded is not None and ctx.entry is not None
    res = ctx.loaded.results
    if ctx.state.presentation:
        return
    st.subheader("Steer")
    if not st.toggle("Push a name along a probe direction", key="steer_on"):
        return
    st.caption(
        "Adds to the residual stream at the name's tokens, after one block, the least-norm "
        "change that makes that block's probe read the target (times the strength); the "
        "rest of the model runs unchanged. The control adds a random direction of the same "
        "norm. If the probe's direction is what the model uses, only the push along it "
        "should change the answer."
    )
    layers = [int(v) for v in res.layers]
    left, right = st.columns(2)
    with left:
        name = st.selectbox("Name", list(names), key="steer_name")
        target = _target(ctx, res.kind)
    with right:
        layer = st.select_slider(
            "Push after block", options=layers, value=layers[len(layers) // 2], key="steer_layer"
        )
        strength = st.slider(
            "Strength (1: the probe reads the target)", 0.0, 16.0, 1.0, 0.5, key="steer_strength"
        )
    question = st.text_input(
        "Question ({name} is the name)", value=question_for(res.dataset, res.kind), key="steer_q"
    )
    if target is None or not name:
        return
    if "{name}" not in question:
        st.error("The question must contain {name}.")
        return
    with st.spinner("Generating…"):
        out = steer_name(ctx, model, prefix, name, layer, target[0], strength, question)
    st.markdown(f"**{out.question}** …")
    cols = st.columns(3)
    for col, label, text in zip(
        cols,
        ("Untouched", "Pushed along the probe", "Control: random direction"),
        (out.before, out.after, out.control),
        strict=True,
    ):
        col.markdown(f"*{label}*")
        col.code(text.strip() or "(nothing)", language=None)
    st.caption(
        f"Change added at layer {layer}: norm {out.delta_norm:.1f} (the same for the control)."
    )
    fig = sfigs.steer_readings_figure(
        out.readings,
        res.layers,
        res.kind,
        target[0],
        target[1],
        scope=ctx.loaded.scope or "world",
        style=ctx.style,
        title=f"{name}: every layer's probe reading, untouched and pushed at layer {layer}",
    )
    show_figure(ctx, fig, "steer")
