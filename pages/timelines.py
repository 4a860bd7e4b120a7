"""Timelines: true vs predicted year at the chosen layer, and residuals by period."""

from __future__ import annotations

import streamlit as st

from core.viz import figures as figs
from pages._state import context, widget_key
from pages._widgets import (
    colour_control,
    headline_metrics,
    layer_frame,
    layer_slider,
    points_control,
    require,
    selection_caption,
    show_figure,
    show_notes,
    take_away,
)

ctx = context(__file__)
st.title(
    "Timelines" if not ctx.state.presentation else f"{ctx.state.dataset} · layer {ctx.state.layer}"
)
selection_caption(ctx)
layer_slider(ctx)
loaded = require(ctx, "time")
if loaded is None:
    st.stop()

if not ctx.state.presentation:
    left, mid, right = st.columns([2, 1, 1])
    colour_control(ctx, left)
    mid.segmented_control("Residuals by", ["decade", "century"], key=widget_key("by"))
    points_control(ctx, right)

headline_metrics(ctx)
frame = layer_frame(ctx)
fig = figs.timeline_figure(
    frame,
    color=ctx.color,
    style=ctx.style,
    title=f"True vs predicted year at layer {ctx.state.layer} ({ctx.state.split} entities)",
)
show_figure(ctx, fig, "timeline")
resid = figs.residual_figure(
    frame,
    by=ctx.state.residuals_by,
    style=ctx.style,
    title=f"Residuals by {ctx.state.residuals_by}",
)
show_figure(ctx, resid, "residuals")
show_notes(ctx.page_notes)
take_away(ctx)
