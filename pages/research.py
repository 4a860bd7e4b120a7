"""Research: controls, block hold-out, MLP vs linear, neurons, prompt transfer, layer animation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import beside_paper
from core.analysis.run import AnalysisResults, analyze_command
from core.results import catalog as cat
from core.results import intervals
from core.results.probe_results import ProbeResults
from core.steer.report import steer_reading
from core.ui import view_state as vs
from core.viz import analysis_figures as afigs
from core.viz import figures as figs
from core.viz import steer_figures as sfigs
from pages._loaders import (
    Loaded,
    baseline_intervals,
    era_table_of,
    layer_band,
    load_analysis,
    load_control,
    load_steering_of,
    try_load,
)
from pages._state import Context, context
from pages._widgets import empty_state, selection_caption, show_figure


@dataclass(frozen=True)
class View:
    """What every section reads: the selection, its results and its analysis (if any)."""

    ctx: Context
    loaded: Loaded
    res: ProbeResults
    entry: cat.ResultEntry
    s: vs.ViewState
    model_name: str
    is_random: bool
    analysis: AnalysisResults | None
    error: str | None
    analysed: pd.DataFrame  # the analysed rows: all entities, or their first n (a sample)


def paper_line(v: View, text: str | None) -> None:
    """Our number beside the paper's Llama-2-7B figure, and what differs."""
    if text and not v.s.presentation:
        st.caption(f"Beside the paper: {text} {beside_paper.DIFFERS}")


def controls_section(v: View) -> None:
    """The probe's test R² against its baselines and the random-init model, per layer."""
    ctx = v.ctx
    res = v.res
    entry = v.entry
    s = v.s
    analysis = v.analysis
    error = v.error
    model_name = v.model_name
    is_random = v.is_random
    loaded = v.loaded
    command = analyze_command(model_name, s.dataset, s.prompt, entry.limit)
    st.subheader("Probe against controls")
    if analysis is not None and analysis.n_entities < entry.n_entities and not s.presentation:
        st.caption(
            f"The analyses below ran on a seeded sample: the first {analysis.n_entities:,} of "
            f"the {entry.n_entities:,} entities, probes refitted on it."
        )
    random_loaded, no_control = load_control(ctx.catalog, loaded)
    random_metrics = random_loaded.results.metrics if random_loaded else None
    # 95% intervals of the test R² (bootstrap over test entities of the stored predictions)
    st.dataframe(
        intervals.summary_table(
            res,
            baseline_intervals(loaded, random_loaded),
            random_loaded.results if random_loaded else None,
        ),
        hide_index=True,
        width="stretch",
        key="r_intervals",
    )
    if not s.presentation:
        st.caption(
            "Test R² at the layer chosen on training rows, and what it is read against; ± is "
            "half the width of the 95% interval (a bootstrap over the test entities, 1,000 "
            "resamples). The random-init model is read at the layer its own training rows "
            "choose."
            + (
                f" No random-init control is shown: {no_control}."
                if random_loaded is None and not is_random
                else ""
            )
        )
    eras = era_table_of(loaded)
    if len(eras):
        st.markdown("**Within eras** (test rows; R² around each era's own mean)")
        st.dataframe(eras, hide_index=True, width="stretch", key="r_eras")
    bands = {"probe": layer_band(loaded)}
    if random_loaded is not None:
        bands["random_init"] = layer_band(random_loaded)
    if analysis is not None:
        fig = afigs.controls_figure(
            analysis.controls,
            random_metrics,
            selected_layer=s.layer,
            style=ctx.style,
            title=f"{cat.model_label(s.model)} on {s.dataset}: test split, probe and controls",
            # the stored probe's band only where the analysis refitted it on the same rows
            bands=bands
            if analysis.n_entities == entry.n_entities
            else {k: v for k, v in bands.items() if k != "probe"},
        )
        show_figure(ctx, fig, "controls")
        paper_line(v, beside_paper.linear_vs_mlp(analysis, s.dataset, res.best_layer()))
        if not s.presentation:
            with st.expander("Linear vs MLP probe and controls, per layer (test R²)"):
                test = analysis.controls[analysis.controls["split"] == "test"]
                st.dataframe(
                    test.pivot_table(index="layer", columns="control", values="r2"), width="stretch"
                )
    else:
        if error:
            st.error(f"The analysis of these results cannot be read: {error}", icon="⚠️")
        st.info(
            "No analyses for this selection yet (controls, block hold-out, MLP probe, neurons). "
            "Compute them with:"
        )
        st.code(command, language="bash")
        if random_metrics is not None:
            random_label = cat.model_label(cat.model_id(model_name, True))
            fig = figs.model_comparison_figure(
                [
                    (cat.model_label(s.model), res.metrics, res.n_model_layers),
                    (random_label, random_metrics, res.n_model_layers),
                ],
                style=ctx.style,
                title="Trained vs random-init model (test R², 95% bands)",
                bands={
                    cat.model_label(s.model): bands["probe"],
                    random_label: bands["random_init"],
                },
            )
            show_figure(ctx, fig, "random_init")


def holdout_section(v: View) -> None:
    """Block hold-out: each block left out of training in turn."""
    loaded = v.loaded
    ctx = v.ctx
    res = v.res
    s = v.s
    analysis = v.analysis
    analysed = v.analysed
    if analysis is not None and len(analysis.holdout) and analysis.holdout_layers:
        st.subheader(f"Block hold-out by {analysis.group_column}")
        st.caption(
            "Each block is left out of training in turn; its proximity error is compared with the "
            "nominal one: the block's test rows under the probe trained on every training row. "
            "A probe that only memorises blocks fails on held-out ones. The layer is the one with "
            "the best training leave-one-out R²."
        )
        layer = analysis.holdout_layers[0]
        by_block = analysis.holdout[analysis.holdout["column"] == analysis.group_column]
        show_figure(
            ctx,
            afigs.holdout_bars_figure(
                by_block,
                layer,
                style=ctx.style,
                title=f"Layer {layer}: held-out vs nominal proximity error",
            ),
            "holdout",
        )
        table = by_block[by_block["layer"] == layer]
        blocks = table.sort_values("n", ascending=False)["block"].tolist()
        block = (
            st.selectbox("Held-out block", blocks, key="r_block")
            if not s.presentation
            else blocks[0]
        )
        row = table[table["block"] == block].iloc[0]
        mean = [float(row[f"train_mean_{t}"]) for t in res.target_names]
        fig = afigs.holdout_prediction_figure(
            analysed,
            analysis.heldout_pred[0],
            str(analysis.group_column),
            str(block),
            res.target_names,
            res.kind,
            scope=loaded.scope or "world",
            train_mean=mean,
            style=ctx.style,
            title=f"{block} held out: predictions of a probe that never saw it (star: train mean)",
        )
        show_figure(ctx, fig, "holdout_map")
        paper_line(v, beside_paper.holdout(analysis, s.dataset, str(analysis.group_column), False))
        paper_line(v, beside_paper.holdout(analysis, s.dataset, "entity_type", True))


def neurons_section(v: View) -> None:
    """The neurons most correlated with each target, at a chosen layer."""
    loaded = v.loaded
    ctx = v.ctx
    res = v.res
    s = v.s
    analysis = v.analysis
    analysed = v.analysed
    if analysis is not None and len(analysis.neurons):
        st.subheader("Space and time neurons")
        layers = sorted(int(n) for n in analysis.neurons["layer"].unique())
        default = s.layer if s.layer in layers else layers[-1]
        left, right = st.columns(2)
        n_layer = left.selectbox("Layer", layers, index=layers.index(default), key="r_nlayer")
        target = right.selectbox("Target", list(res.target_names), key="r_ntarget")
        rows = analysis.neurons[
            (analysis.neurons["layer"] == n_layer) & (analysis.neurons["target"] == target)
        ]
        st.dataframe(rows[["rank", "neuron", "spearman"]], hide_index=True, width="stretch")
        neuron = st.selectbox("Show neuron", rows["neuron"].tolist(), key="r_neuron")
        pos = int(rows.index[rows["neuron"] == neuron][0])
        label = f"L{n_layer} n{neuron}"
        fig = afigs.neuron_figure(
            analysed,
            np.asarray(analysis.neuron_acts[pos], dtype=np.float64),
            res.kind,
            label,
            scope=loaded.scope or "world",
            style=ctx.style,
            title=f"Neuron {neuron} of layer {n_layer} "
            f"(Spearman with {target}: {float(rows.loc[pos, 'spearman']):+.3f})",
        )
        show_figure(ctx, fig, "neuron")


def prompts_section(v: View) -> None:
    """Every prompt of the dataset, and cross-prompt transfer."""
    ctx = v.ctx
    s = v.s
    analysis = v.analysis
    prompts = ctx.options.prompts(s.model, s.dataset)
    if len(prompts) > 1 or (analysis is not None and len(analysis.transfer)):
        st.subheader("Prompt sensitivity")
    if len(prompts) > 1:
        runs = []
        for p in prompts:
            other, _ = try_load(ctx.catalog.find(s.model, s.dataset, p))
            if other is not None:
                runs.append((f"prompt {p}", other.results.metrics, other.results.n_model_layers))
        show_figure(
            ctx,
            figs.model_comparison_figure(
                runs, style=ctx.style, title="Every prompt of this dataset (test R²)"
            ),
            "prompts",
        )
    if analysis is not None and len(analysis.transfer):
        t_layer = int(analysis.transfer["layer"].iloc[0])
        show_figure(
            ctx,
            afigs.transfer_figure(
                analysis.transfer,
                t_layer,
                style=ctx.style,
                title=f"Cross-prompt transfer at layer {t_layer} (test R²)",
            ),
            "transfer",
        )
        paper_line(v, beside_paper.prompt_transfer(analysis, s.dataset))
    elif analysis is not None and len(prompts) > 1 and not s.presentation:
        st.caption("Cross-prompt transfer: add `--transfer-prompts all` to the analyze command.")


def steering_section(v: View) -> None:
    """Steering along the probe's direction, or the command that computes it."""
    ctx = v.ctx
    entry = v.entry
    s = v.s
    model_name = v.model_name
    is_random = v.is_random
    steering, steering_error = load_steering_of(entry)
    if steering_error:
        st.error(f"The steering results cannot be read: {steering_error}", icon="⚠️")
    if steering is not None:
        summary, examples, facts = steering
        st.subheader("Steering: does the model use the probe's direction?")
        what = facts.get("answer_column") or "year closer to the target"
        show_figure(
            ctx,
            sfigs.steering_success_figure(
                summary,
                what=str(what),
                style=ctx.style,
                title=f"{facts.get('n')} entities pushed toward another's target: "
                f"answers to {facts.get('question')!r}",
            ),
            "steering",
        )
        if not s.presentation:
            st.caption(steer_reading(steering))
            with st.expander("Counts and examples"):
                st.dataframe(summary, hide_index=True, width="stretch")
                st.dataframe(examples, hide_index=True, width="stretch")
                st.code(str(facts.get("command", "")), language="bash")
    elif not s.presentation and not is_random:
        st.caption(
            "Steering along the probe: `python -m core steer "
            f"--model {model_name} --dataset {s.dataset}"
            + (f" --limit {entry.limit}" if entry.limit else "")
            + "` (about ten minutes on a CPU), then reload."
        )


def animation_section(v: View) -> None:
    """Predictions across layers: an animation, and a GIF of it."""
    loaded = v.loaded
    ctx = v.ctx
    res = v.res
    s = v.s
    st.subheader("Across layers")
    keep = figs.sample_rows(len(res.entities), min(s.max_points or 2000, 2000))
    anim = afigs.layer_animation_figure(
        res.entities,
        res.predictions,
        [int(n) for n in res.layers],
        res.target_names,
        res.kind,
        scope=loaded.scope or "world",
        rows=keep,
        style=ctx.style,
        title=f"{cat.model_label(s.model)} on {s.dataset}",
    )
    st.plotly_chart(
        anim,
        theme=None,
        config=figs.plotly_config(ctx.topojson_url, filename="animation"),
        key="chart_animation",
    )
    if not s.presentation:
        gif_rows = keep[: min(len(keep), 800)]
        st.download_button(
            "GIF (slow: renders every layer)",
            data=lambda: afigs.animation_gif(
                afigs.layer_animation_figure(
                    res.entities,
                    res.predictions,
                    [int(n) for n in res.layers],
                    res.target_names,
                    res.kind,
                    scope=loaded.scope or "world",
                    rows=gif_rows,
                    title=f"{cat.model_label(s.model)} on {s.dataset}",
                )
            ),
            file_name=f"animation_{s.model.replace('@', '-')}_{s.dataset}_{s.prompt}.gif",
            mime="image/gif",
            key="gif_animation",
            on_click="ignore",
            icon=":material/download:",
        )


def main(ctx: Context) -> None:
    st.title("Research")
    selection_caption(ctx)
    if ctx.loaded is None or ctx.entry is None:
        empty_state(ctx)
        st.stop()
        return
    res = ctx.loaded.results
    model_name, is_random = cat.split_model_id(ctx.state.model)
    analysis, error = load_analysis(ctx.entry)
    view = View(
        ctx=ctx,
        loaded=ctx.loaded,
        res=res,
        entry=ctx.entry,
        s=ctx.state,
        model_name=model_name,
        is_random=is_random,
        analysis=analysis,
        error=error,
        analysed=res.entities if analysis is None else res.entities.iloc[: analysis.n_entities],
    )
    for section in (
        controls_section,
        holdout_section,
        neurons_section,
        prompts_section,
        steering_section,
        animation_section,
    ):
        section(view)


main(context(__file__))
