"""Steering figures: one name's readings before and after a push; success against strength."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.steer.report import wilson_interval
from core.viz.figures import PALETTE, Style, _layout, live_map_figure, live_time_figure

LABELS = {
    "before": "untouched",
    "steered": "pushed along the probe",
    "random": "random direction (control)",
}


def steer_readings_figure(
    readings: Mapping[str, np.ndarray],
    layers: Sequence[int] | np.ndarray,
    kind: str,
    target: Sequence[float],
    target_label: str,
    scope: str = "world",
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """Every layer's probe reading of one name, untouched / steered / random (a path on
    the map, or a line over layers), with the target marked; large points at the last
    layer, where the push has run through the whole model."""
    style = style or Style()
    paths = {LABELS.get(k, k): np.asarray(v, dtype=np.float64) for k, v in readings.items()}
    last = int(list(layers)[-1])
    safe = html.escape(target_label, quote=False)
    if kind == "space":
        fig = live_map_figure(paths, layers, last, scope, style=style, title=title)
        fig.add_trace(
            go.Scattergeo(
                lat=[float(target[0])],
                lon=[float(target[1])],
                mode="markers+text",
                marker={"size": style.marker_size * 5, "symbol": "star", "color": "black"},
                text=[f"target: {safe}"],
                textposition="bottom center",
                name=f"target: {safe}",
                hovertemplate=(
                    f"<b>target {safe}</b><br>%{{lat:.2f}}°, %{{lon:.2f}}°<extra></extra>"
                ),
            )
        )
        return fig
    fig = live_time_figure(paths, layers, last, style=style, title=title)
    fig.add_hline(
        y=float(target[0]),
        line={"color": "black", "dash": "dot"},
        annotation_text=f"target: {safe}",
    )
    return fig


METRIC_LABELS = {"moved_continent": "continent"}


def steering_success_figure(
    summary: pd.DataFrame,
    what: str = "country",
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """Share of answers that moved toward the target against strength: one solid line per
    layer along the probe, dashed along a random direction of the same norm, and the
    untouched model's share as a grey line; bars are 95% Wilson intervals. For a run under
    the pre-registered protocol the share is the headline's metric (`success`: the
    continent for world places, whatever `what` says), the pre-registered cell is ringed
    and shuffled-target chance is drawn beside it; every other cell is exploratory."""
    style = style or Style()
    fig = go.Figure()
    count = "success" if "success" in summary else "moved"
    if "metric" in summary and len(summary):
        metric = str(summary["metric"].iloc[0])
        what = METRIC_LABELS.get(metric, what)
    rate = summary[count] / summary["n"]
    summary = summary.assign(rate=rate)
    pushed = summary[~summary["direction"].isin(["none", "shuffled"])]
    for i, layer in enumerate(sorted(pushed["layer"].unique())):
        colour = PALETTE[i % len(PALETTE)]
        for direction, dash in (("probe", "solid"), ("random", "dash")):
            rows = pushed[(pushed["layer"] == layer) & (pushed["direction"] == direction)]
            rows = rows.sort_values("strength")
            low, high = wilson_interval(rows[count], rows["n"])
            fig.add_trace(
                go.Scatter(
                    x=rows["strength"],
                    y=rows["rate"],
                    mode="lines+markers",
                    name=f"layer {int(layer)}: {'probe' if direction == 'probe' else 'random'}",
                    line={"color": colour, "dash": dash, "width": style.line_width},
                    marker={"size": style.marker_size + 2},
                    error_y={
                        "type": "data",
                        "array": high - rows["rate"].to_numpy(),
                        "arrayminus": rows["rate"].to_numpy() - low,
                        "thickness": 1,
                    },
                    customdata=np.stack([rows[count], rows["n"], low, high], axis=1),
                    hovertemplate=(
                        "strength %{x}: %{customdata[0]} of %{customdata[1]} moved "
                        "(95% interval %{customdata[2]:.2f}–%{customdata[3]:.2f})"
                        "<extra>%{fullData.name}</extra>"
                    ),
                )
            )
    marked = (
        summary[summary["preregistered"] & (summary["direction"] != "none")]
        if "preregistered" in summary
        else summary.iloc[0:0]
    )
    for direction, label, symbol in (
        ("probe", "pre-registered cell", "circle-open"),
        ("shuffled", "chance (shuffled targets)", "x"),
    ):
        rows = marked[marked["direction"] == direction]
        if rows.empty:
            continue
        low, high = wilson_interval(rows[count], rows["n"])
        fig.add_trace(
            go.Scatter(
                x=rows["strength"],
                y=rows["rate"],
                mode="markers",
                name=f"{label} (layer {int(rows['layer'].iloc[0])})",
                marker={
                    "size": style.marker_size * 3,
                    "symbol": symbol,
                    "color": "black",
                    "line": {"width": 2},
                },
                error_y={
                    "type": "data",
                    "array": high - rows["rate"].to_numpy(),
                    "arrayminus": rows["rate"].to_numpy() - low,
                    "thickness": 2,
                    "color": "black",
                },
                customdata=np.stack([rows[count], rows["n"], low, high], axis=1),
                hovertemplate=(
                    "%{customdata[0]} of %{customdata[1]} "
                    "(95% interval %{customdata[2]:.2f}–%{customdata[3]:.2f})"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
        )
    none = summary[summary["direction"] == "none"]
    if len(none):
        row = none.iloc[0]
        fig.add_hline(
            y=float(row["rate"]),
            line={"color": "grey", "dash": "dot"},
            annotation_text=f"untouched: {int(row[count])} of {int(row['n'])}",
        )
    _layout(fig, style, title, height=int(style.height * 0.8))
    fig.update_layout(
        xaxis_title="strength (1 = the layer's probe reads the target)",
        yaxis_title=f"share of answers moved ({what})",
        yaxis_range=[0, min(1.0, max(0.05, float(summary["rate"].max()) * 1.4))],
    )
    fig.update_xaxes(type="log")
    return fig
