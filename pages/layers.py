"""Layers: probe quality against depth, across models, and the chosen ridge penalty."""

from __future__ import annotations

import streamlit as st

from core.results import catalog as cat
from core.results import scale
from core.results.anchors import PUBLISHED_ANCHORS
from core.results.shipped import globe_table
from core.viz import figures as figs
from core.viz import globe_figures as gfigs
from pages._loaders import baseline_intervals, layer_band, load_control, try_load
from pages._scale import show_scale_pair
from pages._state import context, widget_key
from pages._widgets import empty_state, selection_caption, show_figure, take_away
from pages._within import add_within_curve, within_curve_note

ctx = context(__file__)
st.title("Layers")
selection_caption(ctx)
if ctx.loaded is None:
    empty_state(ctx)
    st.stop()

res = ctx.loaded.results
control = load_control(ctx.catalog, ctx.loaded)[0]
fig = figs.layer_curves_figure(
    res.metrics,
    res.kind,
    selected_layer=ctx.state.layer,
    style=ctx.style,
    title=f"{cat.model_label(ctx.state.model)} on {ctx.state.dataset}: probe quality by layer",
    baselines=baseline_intervals(ctx.loaded, control),
    chosen_layer=res.best_layer(),
    test_band=layer_band(ctx.loaded),
)
fig = add_within_curve(ctx, ctx.loaded, fig)
show_figure(ctx, fig, "layers")
if not ctx.state.presentation:
    st.caption(
        "The star is the layer chosen on the training rows' leave-one-out R² (test rows "
        "never choose). The shaded band is the 95% interval of each layer's test R² (a "
        "bootstrap over the test entities, 1,000 resamples); ± in the legend is half its "
        "width. Flat lines are what the same entities give without the model's knowledge: "
        "a ridge on the names' characters, each entity's group mean, and the same "
        "architecture with random weights (at the layer its own training rows choose)."
    )
within_curve_note(ctx, ctx.loaded)

st.subheader("Models compared over normalised depth")
entries = ctx.catalog.shared_sample(ctx.state.dataset, ctx.state.prompt)
offered = [e.model_id for e in entries]
if not ctx.state.presentation:
    left, right = st.columns([3, 1])
    left.multiselect(
        "Models",
        offered,
        key=widget_key("cmp"),
        format_func=cat.model_label,
        placeholder="every model with results",
    )
    right.segmented_control("Metric", ["r2", "proximity_error"], key=widget_key("metric"))
chosen = [e for e in entries if not ctx.state.compare or e.model_id in ctx.state.compare]
runs = []
for e in chosen:
    other, _ = try_load(e)
    if other is not None:
        runs.append((cat.model_label(e.model_id), other.results.metrics, e.n_model_layers))
references = None
marks_offered = ctx.state.compare_metric == "r2" and "world_place" in ctx.state.dataset
if marks_offered and st.toggle(
    "Published world R² as reference marks (Llama-2, Pythia; the paper's data)",
    key="published_marks",
):
    references = {a.model: a.world_r2 for a in PUBLISHED_ANCHORS}
cmp_fig = figs.model_comparison_figure(
    runs,
    references=references,
    metric=ctx.state.compare_metric,
    split="test",
    style=ctx.style,
    title=f"{ctx.state.dataset}, prompt {ctx.state.prompt}: "
    f"test {ctx.state.compare_metric.replace('_', ' ')}",
    families={cat.model_label(e.model_id): scale.family_label(e.model) for e in chosen},
)
show_figure(ctx, cmp_fig, "models")
if not ctx.state.presentation and entries:
    coder = any(scale.is_coder(e.model) for e in chosen)
    st.caption(
        f"Every model here on the same {entries[0].n_entities:,} entities and split (the "
        "sample the most models share; a model's own page may show a larger build). One "
        "colour per family: sizes are comparable only within a family, since across "
        "families the tokenizer, training data, quantisation and tuning differ too."
        + (f" {scale.CODER_NOTE}." if coder else "")
    )

for small_entry, large_entry in ctx.catalog.scale_pairs(ctx.state.dataset, ctx.state.prompt):
    show_scale_pair(ctx, small_entry, large_entry)

globe_entry = ctx.catalog.find(ctx.state.model, ctx.state.dataset, ctx.state.prompt, target="globe")
globe, _ = try_load(globe_entry)
if res.kind == "space" and globe is not None and globe_entry is not None:
    st.subheader("Globe target vs lat/lon")
    same = globe_entry.meta.shares_rows(ctx.loaded.entry.meta)
    show_figure(
        ctx,
        gfigs.globe_comparison_figure(
            {"lat/lon": res.metrics, "globe (x, y, z)": globe.results.metrics},
            style=ctx.style,
            title=f"{cat.model_label(ctx.state.model)} on {ctx.state.dataset}: the same "
            "activations, two probe targets",
        ),
        "globe",
    )
    if not ctx.state.presentation:
        table = globe_table([res, globe.results])
        if same and not table.empty:
            st.dataframe(table, width="stretch")
        st.caption(
            "The globe probe reads (x, y, z) on the unit sphere, mapped back to lat/lon: "
            "no seam at ±180° longitude and no squeeze at the poles. Each row is at the "
            "layer its own training rows choose."
            + ("" if same else " The two were built on different numbers of entities.")
        )

st.subheader("Ridge penalty per layer")
alpha_fig = figs.alpha_figure(res.metrics, res.alphas, res.layers, style=ctx.style)
show_figure(ctx, alpha_fig, "alphas")
if not ctx.state.presentation:
    with st.expander("Per-layer metrics table"):
        st.dataframe(res.metrics, hide_index=True)
take_away(ctx)
