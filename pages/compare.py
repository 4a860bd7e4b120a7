"""Compare: two models side by side at one normalised depth, one slider driving both."""

from __future__ import annotations

import streamlit as st

from core.common.depth import depth_of
from core.results import catalog as cat
from core.ui import view_state as vs
from core.viz import compare_figures as cf
from core.viz import figures as figs
from pages._loaders import try_load
from pages._state import context, widget_key
from pages._widgets import empty_state, show_notes

ctx = context(__file__)
s = ctx.state
entries = cf.rank_models(ctx.catalog.compare(s.dataset, s.prompt))
if not entries:
    st.title("Compare")
    empty_state(ctx)
    st.stop()

left, right = cf.choose_models(entries, s.compare_left, s.compare_right)
if left is not None and right is not None:
    # both on the rows they share, when they share any (the scale sample)
    left, right = ctx.catalog.pair(s.dataset, s.prompt, left.model_id, right.model_id)
shown, errors = [], []
for entry in (left, right):
    if entry is not None:
        loaded, error = try_load(entry)
        if loaded is None:
            errors.append(f"The results in {entry.folder} cannot be read: {error}")
        else:
            shown.append((entry, loaded))

depth = s.compare_depth
if shown and depth is None:
    # open on the layer the first model chooses on its training rows
    first = shown[0][1]
    depth = round(depth_of(first.best_layer, first.results.n_model_layers), vs.DEPTH_DECIMALS)
    st.session_state[widget_key("depth")] = depth

st.title(f"{s.dataset} · depth {depth:.2f}" if s.presentation and depth is not None else "Compare")
for error in errors:
    st.error(error, icon="⚠️")
if not shown:
    st.stop()
assert depth is not None

if not s.presentation:
    st.caption(
        f"Test entities of {s.dataset} (prompt {s.prompt}). Each model is shown at its probed "
        "layer nearest the normalised depth (layer + 1) / number of layers; the slider opens "
        "on the layer the first model chooses on its training rows."
        + (
            f" Both on the same {shown[0][0].n_entities:,} entities and split."
            if len(shown) == 2 and shown[0][0].meta.shares_rows(shown[1][0].meta)
            else " The two were built on different rows."
            if len(shown) == 2
            else ""
        )
    )
    pairs = ctx.catalog.scale_pairs(s.dataset, s.prompt)
    for small, large in pairs:
        if {small.model_id, large.model_id} == {e.model_id for e, _ in shown}:
            continue
        if st.button(
            f"Scale pair: {small.model} beside {large.model} (one family, same rows)",
            key=f"pair_{small.model}_{large.model}",
        ):
            st.session_state[widget_key("left")] = small.model_id
            st.session_state[widget_key("right")] = large.model_id
            st.rerun()
st.slider(
    "Normalised depth",
    min_value=0.0,
    max_value=1.0,
    step=10.0**-vs.DEPTH_DECIMALS,
    format=f"%.{vs.DEPTH_DECIMALS}f",
    key=widget_key("depth"),
    help="(layer + 1) / number of layers: 1 is every model's last layer.",
)
if not s.presentation:
    ids = [e.model_id for e in entries]
    for column, url_key, label, default in zip(
        st.columns(2),
        ("left", "right"),
        ("Left model", "Right model"),
        (
            cf.choose_models(entries, "", s.compare_right)[0],
            cf.choose_models(entries, s.compare_left, "")[1],
        ),
        strict=True,
    ):

        def option(mid: str, default: cat.ResultEntry | None = default) -> str:
            if mid:
                return cat.model_label(mid)
            return f"{cat.model_label(default.model_id)} (default)" if default else "none"

        column.selectbox(label, ["", *ids], key=widget_key(url_key), format_func=option)

if right is None:
    only = cat.model_label(shown[0][0].model_id)
    note = f"Only {only} has results on {s.dataset} with prompt {s.prompt}, so it is shown alone."
    missing = [m for m in cat.known_models() if m not in {e.model_id for e in entries}]
    if len(entries) > 1:
        note += " Pick a random-init control as the right model to set it beside one."
    elif missing:
        note += (
            f" Build a second model's with `{cat.build_command(missing[0], s.dataset, s.prompt)}`."
        )
    st.info(note, icon="ℹ️")

first = shown[0][1]
panels = [
    cf.panel(loaded.results, depth, cat.model_label(e.model_id), s.max_points, loaded.safe_names)
    for e, loaded in shown
]
for p in panels:
    if len(p.frame) < p.n_total:
        ctx.page_notes.append(
            f"{p.label}: showing a fixed sample of {len(p.frame):,} of {p.n_total:,} test "
            "entities (R² uses all of them); raise the point cap on the Maps page to see more."
        )
kind = first.results.kind
fig = cf.compare_figure(
    panels,
    kind,
    scope=first.scope or "world",
    color=s.color or (first.groups[0] if first.groups else None),
    segments=s.segments and kind == "space",
    style=ctx.style,
    title=f"{s.dataset}, prompt {s.prompt}: test entities at depth {depth:.2f}",
)
if kind == "space":
    # the two maps take the page's full width: the legend goes under them, not beside
    fig.update_layout(
        legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": 0, "yanchor": "top"},
        margin={"l": 0, "r": 0, "b": 40},
    )
    fig.update_geos(domain_y=[0.0, 1.0])
stem = cf.file_stem([e.model_id for e, _ in shown], s.dataset, s.prompt, depth)
st.plotly_chart(
    fig,
    width="stretch",
    theme=None,
    config=figs.plotly_config(ctx.topojson_url, filename=stem),
    key="chart_compare",
)
if not s.presentation:
    png, svg, _ = st.columns([1, 1, 6])
    png.download_button(
        "PNG",
        data=lambda: figs.figure_image(fig, "png", width=1600),
        file_name=f"{stem}.png",
        mime="image/png",
        key="png_compare",
        on_click="ignore",
        icon=":material/download:",
    )
    svg.download_button(
        "SVG",
        data=lambda: figs.figure_image(fig, "svg", width=1600, scale=1),
        file_name=f"{stem}.svg",
        mime="image/svg+xml",
        key="svg_compare",
        on_click="ignore",
        icon=":material/download:",
    )
show_notes(ctx.page_notes)
