"""Widgets and renderers shared by the pages (not a page: the leading underscore keeps
it out of page discovery): the layer slider, headline metrics, figures with their
exports, the colour and point-cap controls, the empty state, the selection caption
and notes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.results import catalog as cat
from core.ui import view_state as vs
from core.viz import figures as figs
from pages._loaders import Loaded
from pages._state import Context, widget_key


def show_notes(notes: Sequence[str]) -> None:
    for note in notes:
        st.info(note, icon="ℹ️")


def empty_state(ctx: Context, what: str = "results") -> None:
    """Say which command builds the missing results."""
    s = ctx.state
    if ctx.load_error and ctx.entry is not None:
        st.error(f"The results in {ctx.entry.folder} cannot be read: {ctx.load_error}", icon="⚠️")
        st.caption("Rebuild them (the build replaces a broken folder) with:")
        st.code(
            ctx.entry.command or cat.build_command(s.model, s.dataset, s.prompt), language="bash"
        )
        return
    st.warning(
        f"No {what} for model **{cat.model_label(s.model)}** on dataset **{s.dataset}** "
        f"with prompt **{s.prompt}** in the cache ({ctx.catalog.root}). Build them with:",
        icon="🛠️",
    )
    st.code(cat.build_command(s.model, s.dataset, s.prompt), language="bash")
    if not len(ctx.catalog):
        st.caption(
            "The cache has no results at all. Set SPACETIME_CACHE to another cache root, "
            "or build the quick demo: "
            + cat.build_command(cat.DEFAULT_MODEL, "world_capitals", "empty")
        )


def require(ctx: Context, kind: str) -> Loaded | None:
    """The loaded results if they exist and are of `kind`; otherwise explain and return
    None."""
    if ctx.loaded is None:
        empty_state(ctx)
        return None
    if ctx.loaded.results.kind != kind:
        other = "Maps" if ctx.loaded.results.kind == "space" else "Timelines"
        st.info(
            f"{ctx.state.dataset} is a {ctx.loaded.results.kind} dataset: "
            f"open the {other} page, or choose a {kind} dataset in the sidebar."
        )
        return None
    return ctx.loaded


def selection_caption(ctx: Context) -> None:
    if ctx.state.presentation or ctx.entry is None:
        return
    e = ctx.entry
    synthetic = (
        " · synthetic demo data"
        if ctx.loaded and ctx.loaded.results.manifest.get("synthetic")
        else ""
    )
    st.caption(
        f"{cat.model_label(e.model_id)} · {e.dataset} · prompt {e.prompt} · "
        f"{e.n_entities:,} entities · "
        f"{len(e.layers)} of {e.n_model_layers} layers · results `{e.key}`{synthetic}"
    )


def layer_slider(ctx: Context) -> None:
    """The shared layer selector (its value lives in the view state and the URL)."""
    if ctx.entry is None or ctx.state.layer is None:
        return
    st.select_slider(
        "Layer",
        options=list(ctx.entry.layers),
        key=widget_key("layer"),
        help="Decoder block (0-based) whose probe is shown.",
    )


def layer_frame(ctx: Context) -> pd.DataFrame:
    """Entities of the chosen split with predictions at the chosen layer, capped to the
    point budget."""
    assert ctx.loaded is not None and ctx.state.layer is not None
    res = ctx.loaded.results
    pos = res.layer_position(ctx.state.layer)
    mask = figs.split_mask(res.entities, ctx.state.split)
    rows = np.flatnonzero(mask)
    keep = figs.sample_rows(len(rows), ctx.state.max_points)
    rows = rows[keep]
    frame = figs.prediction_frame(
        res.entities.iloc[rows], np.asarray(res.predictions[pos])[rows], res.target_names
    )
    frame["name_html"] = ctx.loaded.safe_names[rows]
    if len(keep) < int(mask.sum()):
        ctx.page_notes.append(
            f"Showing a fixed sample of {len(keep):,} of {int(mask.sum()):,} points "
            "(metrics use all of them); raise the point cap to see more."
        )
    return frame


def headline_metrics(ctx: Context) -> None:
    assert ctx.loaded is not None and ctx.state.layer is not None
    res = ctx.loaded.results
    h = figs.headline(res.metrics, ctx.state.layer, res.kind)

    def fmt(v: float | None, pattern: str) -> str:
        return "–" if v is None else pattern.format(v)

    cols = st.columns(4)
    cols[0].metric("Layer", f"{ctx.state.layer} / {res.n_model_layers - 1}")
    cols[1].metric(
        "Test R²",
        fmt(h.get("test_r2"), "{:.3f}"),
        help=f"train R² {fmt(h.get('train_r2'), '{:.3f}')}",
    )
    if res.kind == "space":
        cols[2].metric("Median error (test)", fmt(h.get("test_km_median"), "{:,.0f} km"))
    else:
        cols[2].metric("Mean abs. error (test)", fmt(h.get("test_mae_year"), "{:,.1f} years"))
    cols[3].metric(
        "Proximity error (test)",
        fmt(h.get("test_proximity_error"), "{:.3f}"),
        help="Fraction of entities whose prediction lies closer to an entity's true "
        "position than that entity's own prediction (lower is better).",
    )


def _file_stem(ctx: Context, name: str) -> str:
    s = ctx.state
    parts = [name, s.model.replace("@", "-"), s.dataset, s.prompt]
    if s.layer is not None and name in ("map", "timeline", "residuals", "live-map"):
        parts.append(f"layer{s.layer}")
    return "_".join(p for p in parts if p)


def show_figure(ctx: Context, fig: go.Figure, name: str) -> None:
    """The chart, with its modebar download and server-side PNG/SVG exports."""
    stem = _file_stem(ctx, name)
    st.plotly_chart(
        fig,
        theme=None,
        config=figs.plotly_config(ctx.topojson_url, filename=stem),
        key=f"chart_{name}",
    )
    if ctx.state.presentation:
        return
    left, right, _ = st.columns([1, 1, 6])
    left.download_button(
        "PNG",
        data=lambda: figs.figure_image(fig, "png"),
        file_name=f"{stem}.png",
        mime="image/png",
        key=f"png_{name}",
        on_click="ignore",
        icon=":material/download:",
    )
    right.download_button(
        "SVG",
        data=lambda: figs.figure_image(fig, "svg", scale=1),
        file_name=f"{stem}.svg",
        mime="image/svg+xml",
        key=f"svg_{name}",
        on_click="ignore",
        icon=":material/download:",
    )


def take_away(ctx: Context) -> None:
    """Downloads of the probes and predictions on view, and the command that rebuilds them."""
    if ctx.loaded is None or ctx.state.presentation:
        return
    from core.results import export

    res = ctx.loaded.results
    stem = _file_stem(ctx, "probes")
    with st.expander("Take it away: probe directions, predictions, the rebuild command"):
        st.caption(
            "Probe directions: `coef` [layer, target, d_model] and `intercept` per layer "
            "(safetensors; prediction = activation · coefᵀ + intercept). Predictions: every "
            "entity at every layer (parquet), or at this layer (CSV)."
        )
        cols = st.columns(3)
        cols[0].download_button(
            "Probes (safetensors)",
            data=lambda: export.probe_directions(res),
            file_name=f"{stem}.safetensors",
            mime="application/octet-stream",
            key="dl_probes",
            on_click="ignore",
            icon=":material/download:",
        )
        cols[1].download_button(
            "Predictions, all layers (parquet)",
            data=lambda: export.predictions_parquet(res),
            file_name=f"{_file_stem(ctx, 'predictions')}.parquet",
            mime="application/octet-stream",
            key="dl_predictions",
            on_click="ignore",
            icon=":material/download:",
        )
        layer = ctx.state.layer if ctx.state.layer is not None else res.best_layer()
        cols[2].download_button(
            f"Predictions, layer {layer} (CSV)",
            data=lambda: export.predictions_csv(res, layer),
            file_name=f"{_file_stem(ctx, 'predictions')}_layer{layer}.csv",
            mime="text/csv",
            key="dl_predictions_csv",
            on_click="ignore",
            icon=":material/download:",
        )
        st.code(export.rebuild_command(res), language="bash")


def colour_control(ctx: Context, container: Any) -> None:
    if ctx.loaded and ctx.loaded.groups:
        container.selectbox("Colour by", ctx.loaded.groups, key=widget_key("color"))


def points_control(ctx: Context, container: Any) -> None:
    container.selectbox(
        "Point cap",
        vs.POINT_CAPS,
        key=widget_key("pts"),
        help="Maps and timelines draw a fixed sample of at most this many points.",
    )
