"""Timelines: true vs predicted year at the chosen layer, and residuals by period."""

from __future__ import annotations

import streamlit as st

from core.viz import figures as figs
from pages import _ui as ui

ctx = ui.context(__file__)
st.title(
    "Timelines" if not ctx.state.presentation else f"{ctx.state.dataset} · layer {ctx.state.layer}"
)
ui.selection_caption(ctx)
ui.layer_slider(ctx)
loaded = ui.require(ctx, "time")
if loaded is None:
    st.stop()

if not ctx.state.presentation:
    left, mid, right = st.columns([2, 1, 1])
    ui.colour_control(ctx, left)
    mid.segmented_control("Residuals by", ["decade", "century"], key="w_by")
    ui.points_control(ctx, right)

ui.headline_metrics(ctx)
frame = ui.layer_frame(ctx)
fig = figs.timeline_figure(
    frame,
    color=ctx.color,
    style=ctx.style,
    title=f"True vs predicted year at layer {ctx.state.layer} ({ctx.state.split} entities)",
)
ui.show_figure(ctx, fig, "timeline")
resid = figs.residual_figure(
    frame,
    by=ctx.state.residuals_by,
    style=ctx.style,
    title=f"Residuals by {ctx.state.residuals_by}",
)
ui.show_figure(ctx, resid, "residuals")
ui.show_notes(ctx.page_notes)
