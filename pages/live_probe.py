"""Live probe: type names; the model reads each once and every layer's probe places it."""

from __future__ import annotations

import streamlit as st

from core.ui import live
from core.ui import view_state as vs
from core.viz import figures as figs
from pages._live import probe_model, probe_names, prompt_text
from pages._state import context, widget_key
from pages._steer import steer_section
from pages._widgets import empty_state, layer_slider, selection_caption, show_figure, show_notes

ctx = context(__file__)
st.title("Live probe")
selection_caption(ctx)
layer_slider(ctx)
if ctx.loaded is None:
    empty_state(ctx, what="probes")
    st.stop()
res = ctx.loaded.results

st.text_area(
    "Names, one per line",
    key=widget_key("names"),
    max_chars=vs.MAX_NAMES_CHARS,
    placeholder="Kyoto\nLake Titicaca" if res.kind == "space" else "Napoleon\nAda Lovelace",
    help=f"Up to {vs.MAX_NAMES} names of up to {vs.MAX_NAME_CHARS} characters; "
    "press Ctrl+Enter or click outside to run.",
)
if live.fake_model_enabled():
    st.warning(
        f"{live.FAKE_MODEL_ENV} is set: a stand-in test model replaces the real one, "
        "so these predictions are meaningless (test/demo mode).",
        icon="🧪",
    )
names = list(ctx.state.names)
if not names and str(st.session_state.get(widget_key("names")) or "").strip():
    st.caption("Type a name to see where (or when) the model puts it at every layer.")
    st.stop()
if not names:  # an example, probed until the user types (it stays out of the URL)
    names = list(live.example_names(res.dataset, res.kind))
    st.caption(
        f"An example: {', '.join(names)}. Type names above to see where (or when) the "
        "model puts them at every layer."
    )

try:
    model = probe_model(ctx)
except Exception as exc:  # missing package, conversion failure, out of memory
    st.error(f"Could not load the model: {exc}")
    st.stop()
problem = live.incompatibility(model, res)
if problem:
    st.error(f"These probes do not fit the loaded model: {problem}.")
    st.stop()

prefix = prompt_text(ctx)
with st.spinner("Running the model…"):
    paths = probe_names(ctx, model, prefix, names)
layer = ctx.state.layer if ctx.state.layer is not None else ctx.loaded.best_layer
scope = ctx.loaded.scope if res.kind == "space" else None
truths = live.name_truths(paths, res, scope)
landed = live.landing_containers(paths, res.layers, layer, scope)
marks = live.truth_marks(truths)
if res.kind == "space":
    fig = figs.live_map_figure(
        paths,
        res.layers,
        layer,
        ctx.loaded.scope or "world",
        style=ctx.style,
        title=f"Predicted position at layer {layer}, and the path across layers",
        **marks,
    )
    show_figure(ctx, fig, "live-map")
else:
    fig = figs.live_time_figure(
        paths, res.layers, layer, style=ctx.style, title="Predicted year at each layer", **marks
    )
    show_figure(ctx, fig, "live-years")
st.subheader(f"At layer {layer}")
for name, truth in truths.items():
    headline = live.truth_headline(
        truth, paths[name], res.layers, layer, res.kind, res.dataset, scope, landed.get(name)
    )
    st.markdown(live.markdown_text(headline))
    if not ctx.state.presentation:
        note = live.truth_note(truth, res.kind, res.dataset, res.layers, layer)
        st.caption(live.markdown_text(note))

if not ctx.state.presentation:
    table = live.prediction_table(paths, res.layers, res.target_names, res.kind, truths)
    with st.expander("Predictions per layer"):
        st.dataframe(table, hide_index=True)
    if prefix:
        st.caption(f"The model reads each name after the prompt prefix {prefix!r}.")
steer_section(ctx, model, prefix, names)
show_notes(ctx.page_notes)
