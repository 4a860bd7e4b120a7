"""Widgets and renderers shared by the pages (not a page: the leading underscore keeps
it out of page discovery): the layer slider, headline metrics, figures with their
exports, the colour and point-cap controls, the empty state, the selection caption
and notes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.results import catalog as cat
from core.results.probe_results import ProbeResults
from core.ui import view_state as vs
from core.viz import containers as cont
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
        from pages._switch import offer_switch

        offer_switch(ctx, kind)  # opened here: switches; picked here: offers a button
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


# ------------------------------------------------------- right container
@dataclass(frozen=True)
class Landings:
    """Where the selected layer's predictions land (`core.viz.containers`)."""

    landed: pd.Series  # per entity (results' index): its container, None at sea/outside
    score: cont.ContainerScore  # the test split's share landing in their own container


def landings(ctx: Context) -> Landings | None:
    """The container every prediction of the selected layer lands in, and the test share
    landing in the right one; None for a dataset without a container column (a
    spatial join of every entity against the shipped outlines: ~20-40 ms for 8,000)."""
    loaded = ctx.loaded
    if loaded is None or loaded.scope is None or ctx.state.layer is None:
        return None
    res = loaded.results
    column = cont.container_column(res.entities, loaded.scope)
    if column is None:
        return None
    preds = np.asarray(res.predictions[res.layer_position(ctx.state.layer)], dtype=np.float64)
    frame = pd.DataFrame(
        {
            "pred_lat": preds[:, list(res.target_names).index("lat")],
            "pred_lon": preds[:, list(res.target_names).index("lon")],
            "is_test": res.entities["is_test"].to_numpy(dtype=bool),
            column: res.entities[column].to_numpy(),
        },
        index=res.entities.index,
    )
    landed, score = cont.container_score(frame, loaded.scope, column)
    return Landings(landed=pd.Series(landed, index=frame.index, dtype=object), score=score)


def lands_in_column(landings: Landings, frame: pd.DataFrame) -> pd.Series:
    """The map frame's ``lands_in`` column (what the hover shows), rows matched by index."""
    outside = f"no {landings.score.noun} (sea or beyond the outlines)"
    return landings.landed.reindex(frame.index).fillna(outside)


@st.cache_resource(show_spinner=False)
def _baseline_pool() -> ThreadPoolExecutor:
    # one worker: the name-only ridge takes both cores for 30-60 s on 8,000 entities
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="baseline-containers")


@st.cache_resource(show_spinner=False, max_entries=16)
def _name_only_job(
    folder: str, stamp: str, scope: str, column: str, _results: ProbeResults
) -> tuple[Future[dict[str, cont.ContainerScore]], float]:
    """The name-only baseline's container share, computed once per results folder in the
    background (its predictions are not stored and take 30-60 s to refit on 8,000 on 2
    cores), and when it was submitted (``time.monotonic``)."""
    job = _baseline_pool().submit(
        cont.baseline_scores,
        _results.entities,
        scope,
        column,
        "test",
        cont.probe_spec(_results.manifest),
        ("name_only",),
    )
    return job, time.monotonic()


@st.cache_data(show_spinner=False, max_entries=32)
def _group_mean_scores(
    folder: str, stamp: str, scope: str, column: str, _results: ProbeResults
) -> dict[str, cont.ContainerScore]:
    return cont.baseline_scores(_results.entities, scope, column, "test", None, ("group_mean",))


@st.cache_data(show_spinner=False, max_entries=32)
def _stored_scores(
    folder: str, stamp: str, scope: str, column: str, _results: ProbeResults
) -> dict[str, cont.ContainerScore]:
    """The baselines' container shares from their stored predictions (no refit)."""
    stored = cont.stored_baselines(_results)
    return cont.baseline_scores(
        _results.entities, scope, column, "test", None, tuple(stored), stored=stored
    )


def _share(score: cont.ContainerScore | None) -> str:
    return "–" if score is None or not score.n else f"{score.share:.1%}"


def _container_help(
    landings: Landings,
    group: cont.ContainerScore | None,
    group_column: str | None,
    name_only: cont.ContainerScore | None | str,
) -> str:
    s = landings.score
    text = (
        f"Test places whose predicted point falls inside the outline of their own "
        f"{s.noun} (the outlines the map draws): {s.hits:,} of {s.n:,}."
    )
    if s.n_unmatched:
        text += (
            f" {s.n_unmatched:,} test places whose {s.noun} has no outline at this scale "
            "(small islands, city states) are left out."
        )
    names = name_only if isinstance(name_only, str) else _share(name_only)
    text += f" Same share for the name-only baseline: {names}"
    if group is not None:
        text += f"; for the {group_column or 'group'} mean: {_share(group)}"
    return text + "."


def _container_metric(ctx: Context, landings: Landings, col: Any) -> None:
    """ "In the right <noun>" with the baselines' shares in its help; the name-only one
    is computed in the background and filled in when ready (the metric polls)."""
    assert ctx.entry is not None and ctx.loaded is not None
    res = ctx.loaded.results
    s = landings.score
    args = (str(ctx.entry.folder), ctx.entry.stamp, s.scope, s.column, res)
    group_column = cont.reference_column(res.entities)
    label = f"In the right {s.noun} (test)"
    if res.baseline_prediction("name_only") is not None:  # stored by the build: no refit
        stored = _stored_scores(*args)
        help_text = _container_help(
            landings, stored.get("group_mean"), group_column, stored.get("name_only")
        )
        col.metric(label, _share(s), help=help_text)
        return
    group = _group_mean_scores(*args).get("group_mean")
    job, submitted = _name_only_job(*args)
    if not job.done() and time.monotonic() - submitted < 2.0:
        # just submitted: a small dataset is done in a moment (errors: in the help below)
        with contextlib.suppress(Exception):
            job.result(timeout=0.5)
    value = _share(s)

    def name_only() -> cont.ContainerScore | None | str:
        if not job.done():
            return "being computed (once per results, 30-60 s for 8,000 places)"
        if job.exception() is not None:
            return f"unavailable ({job.exception()})"
        return job.result().get("name_only")

    if job.done():
        col.metric(label, value, help=_container_help(landings, group, group_column, name_only()))
        return

    @st.fragment(run_every=3.0)
    def poll() -> None:
        if job.done():
            st.rerun()  # one full run shows the metric without polling
        st.metric(label, value, help=_container_help(landings, group, group_column, name_only()))

    with col:
        poll()


def headline_metrics(ctx: Context, landings: Landings | None = None) -> None:
    """Layer, test R², error and proximity error; with `landings`, the share of test
    entities whose prediction lands in the right country (state, borough) beside them."""
    assert ctx.loaded is not None and ctx.state.layer is not None
    res = ctx.loaded.results
    h = figs.headline(res.metrics, ctx.state.layer, res.kind)

    def fmt(v: float | None, pattern: str) -> str:
        return "–" if v is None else pattern.format(v)

    cols = st.columns(5 if landings is not None else 4)
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
    if landings is not None:
        _container_metric(ctx, landings, cols[4])


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
