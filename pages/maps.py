"""Maps: where the probe puts every entity at the chosen layer."""

from __future__ import annotations

import streamlit as st

from core.viz import figures as figs
from pages._state import context, widget_key
from pages._widgets import (
    colour_control,
    headline_metrics,
    landings,
    lands_in_column,
    layer_frame,
    layer_slider,
    points_control,
    require,
    selection_caption,
    show_figure,
    show_notes,
    take_away,
)
from pages._within import between_caption, within_view

ctx = context(__file__)
st.title("Maps" if not ctx.state.presentation else f"{ctx.state.dataset} · layer {ctx.state.layer}")
selection_caption(ctx)
layer_slider(ctx)
loaded = require(ctx, "space")
if loaded is None:
    st.stop()

if not ctx.state.presentation:
    left, mid, right = st.columns([2, 1, 1])
    colour_control(ctx, left)
    mid.toggle("True → predicted segments", key=widget_key("seg"))
    points_control(ctx, right)

landed = landings(ctx)
headline_metrics(ctx, landed)
frame = layer_frame(ctx)
if landed is not None:
    frame["lands_in"] = lands_in_column(landed, frame)
fig = figs.map_figure(
    frame,
    scope=loaded.scope or "world",
    color=ctx.color,
    segments=ctx.state.segments,
    style=ctx.style,
    title=f"Predicted positions at layer {ctx.state.layer} ({ctx.state.split} entities)",
)
show_figure(ctx, fig, "map")
between_caption(ctx, loaded, ctx.state.layer)
show_notes(ctx.page_notes)
within_view(ctx, loaded, ctx.state.layer)
take_away(ctx)
