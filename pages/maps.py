"""Maps: where the probe puts every entity at the chosen layer."""

from __future__ import annotations

import streamlit as st

from core.viz import figures as figs
from pages import _ui as ui

ctx = ui.context(__file__)
st.title("Maps" if not ctx.state.presentation else f"{ctx.state.dataset} · layer {ctx.state.layer}")
ui.selection_caption(ctx)
ui.layer_slider(ctx)
loaded = ui.require(ctx, "space")
if loaded is None:
    st.stop()

if not ctx.state.presentation:
    left, mid, right = st.columns([2, 1, 1])
    ui.colour_control(ctx, left)
    mid.toggle("True → predicted segments", key="w_seg")
    ui.points_control(ctx, right)

ui.headline_metrics(ctx)
frame = ui.layer_frame(ctx)
fig = figs.map_figure(
    frame,
    scope=loaded.scope or "world",
    color=ctx.color,
    segments=ctx.state.segments,
    style=ctx.style,
    title=f"Predicted positions at layer {ctx.state.layer} ({ctx.state.split} entities)",
)
ui.show_figure(ctx, fig, "map")
ui.show_notes(ctx.page_notes)
