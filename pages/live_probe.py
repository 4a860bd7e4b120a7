"""Live probe: type names; the model reads each once and every layer's probe places it."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from core.results import catalog as cat
from core.ui import live
from core.ui import view_state as vs
from core.viz import figures as figs
from pages._live import probe_model, probe_names, prompt_text
from pages._loaders import try_load
from pages._state import Context, context, widget_key
from pages._steer import steer_section
from pages._widgets import empty_state, layer_slider, selection_caption, show_figure, show_notes

OWN_PROBE_KEY = "live_own_probe"  # session only: the selected results' probe instead
OPENED_KEY = "_live_opened_on"  # the chosen probe whose best layer this session opened on


def chosen_probe(ctx: Context) -> tuple[Context, live.LiveChoice | None]:
    """The context of the probe the benchmark chose for the selection (the selection's
    own when it chose none, when that folder is gone, or when the visitor asks)."""
    choice = live.live_choice(
        live.read_live_choices(ctx.catalog.root), ctx.state.model, ctx.state.dataset,
        ctx.state.prompt,
    )  # fmt: skip
    if choice is None or ctx.entry is None or st.session_state.get(OWN_PROBE_KEY):
        return ctx, choice
    if choice.key == ctx.entry.key:
        return ctx, choice
    entry = next((e for e in ctx.catalog.entries if e.key == choice.key), None)
    loaded, _ = try_load(entry)
    if entry is None or loaded is None:
        ctx.page_notes.append(
            f"The benchmark chose results {choice.key} for the live probe, but they are not "
            f"in this cache (or cannot be read): using the selected results. Rerun "
            f"`{choice.command}` to choose again."
        )
        return ctx, None
    # open once on the chosen probe's own best layer (unless a layer was picked), and
    # on it whenever the chosen probe lacks the selected layer
    first = st.session_state.get(OPENED_KEY) != choice.key
    st.session_state[OPENED_KEY] = choice.key
    at_default = ctx.state.layer == (ctx.loaded.best_layer if ctx.loaded else None)
    if (first and at_default) or ctx.state.layer not in entry.layers:
        st.session_state[widget_key("layer")] = loaded.best_layer
        st.query_params["layer"] = str(loaded.best_layer)  # the link reopens it
        ctx = replace(ctx, state=ctx.state.with_(layer=loaded.best_layer))
    return replace(ctx, entry=entry, loaded=loaded), choice


def probe_caption(ctx: Context, own: Context, choice: live.LiveChoice | None, layer: int) -> None:
    """Which probe places the names, and why that one."""
    assert ctx.entry is not None
    e = ctx.entry
    what = f"{cat.model_label(e.model_id)}'s {live.probe_description(e.target, e.n_entities)} "
    what += f"{e.dataset} probe at layer {layer}"
    if choice is not None and choice.key == e.key:
        text = f"Probe: {what}, chosen by `{choice.command}`: {choice.reason}."
        if choice.layer != layer:
            text += f" (It was measured at layer {choice.layer}.)"
    elif choice is not None:
        text = (
            f"Probe: {what}, the selected results' own, as asked; the benchmark's choice "
            f"for this model is the {choice.description} probe ({choice.reason})."
        )
    else:
        text = (
            f"Probe: {what}, the selected results' own (no benchmark choice for this model "
            "and dataset; `python -m bench.live_places` measures the world_places probes)."
        )
    st.caption(text)
    if choice is not None and own.entry is not None and own.entry.key != choice.key:
        mine = live.probe_description(own.entry.target, own.entry.n_entities)
        st.toggle(f"Use the selected results' own probe ({mine})", key=OWN_PROBE_KEY)


own = context(__file__)
st.title("Live probe")
if own.loaded is None:
    selection_caption(own)
    layer_slider(own)
    empty_state(own, what="probes")
    st.stop()
ctx, choice = chosen_probe(own)
selection_caption(ctx)
layer_slider(ctx)
assert ctx.loaded is not None
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
if int(layer) not in [int(v) for v in res.layers]:
    layer = ctx.loaded.best_layer
probe_caption(ctx, own, choice, int(layer))
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
steer_section(own, model, prefix, names)  # steering reads the selected results' probes
show_notes(ctx.page_notes)
