"""Placement inside groups on the Layers and Maps pages (issue 29; not a page: the leading
underscore keeps it out of page discovery).

Cached reads of a result's within-group probe (``within.parquet``), its between/within
decomposition at a layer (``between_within.parquet``, else computed from the stored
predictions: a fraction of a second) and its test entities' offsets from their groups'
centres, and the renderers the two pages call.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.probe.bootstrap import Interval
from core.probe.within import MIN_GROUP_TRAIN
from core.results.probe_results import ProbeResults
from core.results.within import (
    WithinProbe,
    decomposition_of,
    default_grouping,
    group_offsets,
    load_within,
    probe_grouping,
)
from core.viz import figures as figs
from core.viz import within_figures as wfigs
from pages._loaders import Loaded
from pages._state import Context
from pages._widgets import show_figure


@st.cache_resource(show_spinner=False, max_entries=16)
def _within(folder: str, stamp: str, _results: ProbeResults) -> WithinProbe | None:
    return load_within(_results)


@st.cache_data(show_spinner=False, max_entries=16)
def _probe_grouping(folder: str, stamp: str, _results: ProbeResults) -> str | None:
    return probe_grouping(_results)


@st.cache_data(show_spinner=False, max_entries=64)
def _split(
    folder: str, stamp: str, layer: int, _results: ProbeResults
) -> tuple[str, dict[str, Interval]] | None:
    grouping = default_grouping(_results)
    found = decomposition_of(_results, layer, grouping) if grouping else None
    return (grouping, found) if grouping and found else None


@st.cache_data(show_spinner=False, max_entries=32)
def _offsets(folder: str, stamp: str, layer: int, _results: ProbeResults) -> pd.DataFrame | None:
    return group_offsets(_results, layer)


def within_probe(loaded: Loaded) -> WithinProbe | None:
    e = loaded.entry
    return _within(str(e.folder), e.stamp, loaded.results)


def split_at(loaded: Loaded, layer: int) -> tuple[str, dict[str, Interval]] | None:
    """(grouping, stat -> Interval) of the probe at `layer` (None: no grouping)."""
    e = loaded.entry
    return _split(str(e.folder), e.stamp, int(layer), loaded.results)


# ------------------------------------------------------------------ layers
def add_within_curve(ctx: Context, loaded: Loaded, fig: go.Figure) -> go.Figure:
    """The Layers figure with the within-group probe's curve, when it is built."""
    within = within_probe(loaded)
    if within is None:
        return fig
    return wfigs.with_within_curve(
        fig,
        within.curve(),
        within.grouping,
        chosen_layer=within.layer,
        name_only=within.test_r2("name_only"),
        style=ctx.style,
    )


def within_curve_note(ctx: Context, loaded: Loaded) -> None:
    """What the within-group curve is, or that it is not built yet."""
    if ctx.state.presentation:
        return
    within = within_probe(loaded)
    res = loaded.results
    if within is None:
        e = loaded.entry
        grouping = _probe_grouping(str(e.folder), e.stamp, res)
        if grouping is not None:
            st.info(wfigs.within_missing_note(grouping, str(e.folder)), icon="ℹ️")
        return
    test = res.entities["is_test"].to_numpy(dtype=bool)
    info = res.manifest.get("within") or {}
    st.caption(
        wfigs.within_curve_caption(
            within.grouping,
            res.kind,
            within.n_groups,
            int((within.rows & test).sum()),
            int(info.get("min_train_rows", MIN_GROUP_TRAIN)),
            within.layer,
            within.test_r2(),
            within.test_r2("name_only"),
        )
    )


# ------------------------------------------------------------------ maps
def between_caption(ctx: Context, loaded: Loaded, layer: int | None) -> None:
    """Under the map: how much of this layer's R² is between groups."""
    if ctx.state.presentation or layer is None:
        return
    found = split_at(loaded, layer)
    if found is not None:
        st.caption(wfigs.between_caption(found[1], found[0], layer))


def within_view(ctx: Context, loaded: Loaded, layer: int | None) -> None:
    """Each test entity's predicted offset from its group's predicted centre against its
    true offset from its group's true centre, at `layer`."""
    if layer is None:
        return
    e = loaded.entry
    frame = _offsets(str(e.folder), e.stamp, int(layer), loaded.results)
    if frame is None:
        return
    grouping = str(frame.attrs.get("grouping") or default_grouping(loaded.results))
    one, many = wfigs.nouns(grouping)
    st.subheader(f"Within {many}")
    if frame.empty:
        st.caption(f"No {one} has two or more test entities.")
        return
    rows = figs.sample_rows(len(frame), ctx.state.max_points)
    fig = wfigs.within_offsets_figure(
        frame.iloc[rows],
        loaded.results.target_names,
        grouping,
        style=ctx.style,
        title=f"Inside each {one} at layer {layer}: predicted against true offset (test entities)",
    )
    show_figure(ctx, fig, "within")
    if ctx.state.presentation:
        return
    found = split_at(loaded, layer)
    numbers = ""
    if found is not None:
        split = found[1]
        numbers = (
            f" Here R²_within is {split['r2_within'].compact()} and the correlation "
            f"{split['within_corr'].compact()}."
        )
    shown = ""
    if len(rows) < len(frame):
        shown = f" A fixed sample of {len(rows):,} of {len(frame):,} is drawn."
    st.caption(
        f"Each point is a test entity: how far it lies from its {one}'s centre (x) and how "
        f"far the probe puts it from where it puts the {one} (y); centres are the test "
        f"entities' means, {many} with one test entity are left out, and the split selector "
        f"does not apply. On the dashed line a prediction moves exactly with the truth "
        f"inside its {one}; a flat cloud knows only which {one}; a tall one adds error "
        f"inside it.{numbers}{shown}"
    )
