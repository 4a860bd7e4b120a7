"""Plotly figures of the research analyses (plain data in, ``go.Figure`` out; no streamlit)."""

from __future__ import annotations

import html
import io
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz.figures import (
    PALETTE,
    Style,
    _finish_layer_panels,
    _layout,
    _outline_traces,
    _safe_names,
    add_band,
    figure_image,
    map_figure,
    timeline_figure,
)
from core.viz.outlines import get_scope

log = logging.getLogger(__name__)

CONTROL_STYLE: dict[str, tuple[str, str, str]] = {
    # control: (label, colour, dash)
    "probe": ("linear probe", PALETTE[0], "solid"),
    "mlp": ("MLP probe", PALETTE[2], "solid"),
    "random_init": ("random-init model", PALETTE[3], "dash"),
    "shuffled": ("shuffled targets", PALETTE[7], "dot"),
    "name_only": ("name only (char n-grams)", PALETTE[4], "dashdot"),
    "mean": ("train mean", "#555555", "dash"),
}


def controls_figure(
    controls: pd.DataFrame,
    random_init: pd.DataFrame | None = None,
    split: str = "test",
    selected_layer: int | None = None,
    style: Style | None = None,
    title: str | None = None,
    bands: Mapping[str, pd.DataFrame] | None = None,
) -> go.Figure:
    """R² (top) and proximity error (bottom) by layer for the probe and every control.

    Layer-independent controls (layer -1: train mean, name-only) are flat lines;
    `random_init`: a random-initialised model's results metrics (same columns).
    `bands`: control ("probe", "random_init") -> ``layer``, ``lo``, ``hi``: the 95%
    interval of its test R², shaded on the R² panel.
    """
    style = style or Style()
    table = controls[controls["split"] == split]
    if random_init is not None and len(random_init):
        table = pd.concat(
            [table, random_init[random_init["split"] == split].assign(control="random_init")],
            ignore_index=True,
        )
    layered = table[table["layer"] >= 0]
    x_range = (
        (float(layered["layer"].min()), float(layered["layer"].max()))
        if len(layered)
        else (0.0, 1.0)
    )
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("R²", "proximity error (lower is better)"),
    )
    for control, (label, colour, dash) in CONTROL_STYLE.items():
        rows = table[table["control"] == control].sort_values("layer")
        if rows.empty:
            continue
        band = (bands or {}).get(control)
        if band is not None and len(band) and split == "test":
            add_band(fig, band, colour, f"{label} 95%", legendgroup=control, row=1, col=1)
        for r, col in ((1, "r2"), (2, "proximity_error")):
            if col not in rows:
                continue
            if (rows["layer"] < 0).all():
                x, y = list(x_range), [float(rows[col].iloc[0])] * 2
                mode = "lines"
            else:
                x, y = rows["layer"].tolist(), rows[col].tolist()
                mode = "lines+markers"
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode=mode,
                    name=label,
                    legendgroup=control,
                    showlegend=r == 1,
                    line={"color": colour, "dash": dash, "width": style.line_width},
                    marker={"size": style.marker_size + 1},
                    hovertemplate=f"{label}: %{{y:.3f}}<extra></extra>",
                ),
                row=r,
                col=1,
            )
    return _finish_layer_panels(fig, style, title, selected_layer)


def holdout_bars_figure(
    holdout: pd.DataFrame, layer: int, style: Style | None = None, title: str | None = None
) -> go.Figure:
    """Per block: proximity error when the block is held out vs nominal (random split)."""
    style = style or Style()
    rows = holdout[holdout["layer"] == layer].sort_values("n", ascending=False)
    blocks = [html.escape(str(b)) for b in rows["block"]]
    fig = go.Figure(
        [
            go.Bar(
                x=blocks,
                y=rows["nominal_proximity"],
                name="nominal (random split)",
                marker_color=PALETTE[0],
            ),
            go.Bar(
                x=blocks,
                y=rows["heldout_proximity"],
                name="block held out",
                marker_color=PALETTE[1],
                customdata=rows["n"],
                hovertemplate="%{x}: %{y:.3f} (n=%{customdata})<extra></extra>",
            ),
        ]
    )
    _layout(fig, style, title, height=int(style.height * 0.7))
    fig.update_layout(barmode="group", yaxis_title="proximity error (lower is better)")
    return fig


def holdout_prediction_figure(
    entities: pd.DataFrame,
    heldout_pred: np.ndarray,
    column: str,
    block: str,
    target_names: Sequence[str],
    kind: str,
    scope: str = "world",
    train_mean: Sequence[float] | None = None,
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """Held-out predictions of one block (true → predicted), with the train mean marked."""
    style = style or Style()
    inside = entities[column].astype(str).to_numpy() == str(block)
    frame = entities[inside].copy()
    pred = np.asarray(heldout_pred, dtype=np.float64)[inside]
    for j, t in enumerate(target_names):
        frame[f"pred_{t}"] = pred[:, j]
    if kind == "space":
        fig = map_figure(frame, scope=scope, color=None, segments=True, style=style, title=title)
        if train_mean is not None:
            fig.add_trace(
                go.Scattergeo(
                    lat=[train_mean[0]],
                    lon=[train_mean[1]],
                    mode="markers",
                    marker={
                        "symbol": "star",
                        "size": style.marker_size * 4,
                        "color": "#d62728",
                        "line": {"color": "black", "width": 1},
                    },
                    name="train mean",
                    hovertemplate="train mean %{lat:.1f}°, %{lon:.1f}°<extra></extra>",
                )
            )
        return fig
    fig = timeline_figure(frame, color=None, style=style, title=title)
    if train_mean is not None:
        fig.add_hline(
            y=float(train_mean[0]),
            line={"color": "#d62728", "dash": "dot"},
            annotation_text="train mean",
        )
    return fig


def neuron_figure(
    entities: pd.DataFrame,
    activation: np.ndarray,
    kind: str,
    label: str,
    scope: str = "world",
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """One neuron's activation: coloured at each entity's true position (space) or against
    year (time)."""
    style = style or Style()
    act = np.asarray(activation, dtype=np.float64)
    names = _safe_names(entities)
    if kind == "space":
        fig = go.Figure(data=_outline_traces(scope))
        fig.add_trace(
            go.Scattergeo(
                lat=entities["lat"],
                lon=entities["lon"],
                mode="markers",
                marker={
                    "size": style.marker_size + 1,
                    "color": act,
                    "colorscale": "RdBu_r",
                    "cmid": float(np.median(act)),
                    "colorbar": {"title": {"text": html.escape(label)}},
                },
                text=names,
                customdata=act,
                hovertemplate="<b>%{text}</b><br>activation %{customdata:.3g}<extra></extra>",
                name=html.escape(label),
            )
        )
        fig.update_geos(**get_scope(scope).geo)
    else:
        fig = go.Figure(
            go.Scatter(
                x=entities["year"],
                y=act,
                mode="markers",
                text=names,
                marker={"size": style.marker_size + 1, "color": PALETTE[0], "opacity": 0.7},
                hovertemplate="<b>%{text}</b><br>%{x:.0f}: %{y:.3g}<extra></extra>",
                name=html.escape(label),
            )
        )
        fig.update_layout(
            xaxis_title="true year", yaxis_title=f"activation of {html.escape(label)}"
        )
    return _layout(fig, style, title)


def transfer_figure(
    transfer: pd.DataFrame,
    layer: int,
    metric: str = "r2",
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """Heatmap: rows = prompt the probe was trained on, columns = prompt it is applied to."""
    style = style or Style()
    rows = transfer[transfer["layer"] == layer]
    mat = rows.pivot_table(index="train_prompt", columns="apply_prompt", values=metric)
    labels_y = [html.escape(str(v)) for v in mat.index]
    labels_x = [html.escape(str(v)) for v in mat.columns]
    fig = go.Figure(
        go.Heatmap(
            z=mat.to_numpy(),
            x=labels_x,
            y=labels_y,
            colorscale="Viridis" if metric == "r2" else "Viridis_r",
            text=np.round(mat.to_numpy(), 3),
            texttemplate="%{text}",
            hovertemplate="trained on %{y}<br>applied to %{x}<br>"
            + metric
            + " %{z:.3f}<extra></extra>",
        )
    )
    _layout(fig, style, title, height=int(style.height * 0.7))
    fig.update_layout(xaxis_title="applied to prompt", yaxis_title="trained on prompt")
    return fig


# --------------------------------------------------------------- animation
def layer_animation_figure(
    entities: pd.DataFrame,
    predictions: np.ndarray,
    layers: Sequence[int],
    target_names: Sequence[str],
    kind: str,
    scope: str = "world",
    rows: np.ndarray | None = None,
    style: Style | None = None,
    title: str | None = None,
    frame_ms: int = 600,
) -> go.Figure:
    """Predictions over layers as plotly frames, with a play button and a layer slider.

    `predictions`: [n_layers, n_entities, n_targets]; `rows`: which entities to draw.
    """
    style = style or Style()
    idx = np.arange(len(entities)) if rows is None else np.asarray(rows)
    names = _safe_names(entities.iloc[idx])
    preds = np.asarray(predictions, dtype=np.float64)[:, idx]

    def trace(pos: int) -> go.BaseTraceType:
        if kind == "space":
            la, lo = (
                preds[pos, :, list(target_names).index("lat")],
                preds[pos, :, list(target_names).index("lon")],
            )
            return go.Scattergeo(
                lat=la,
                lon=lo,
                mode="markers",
                text=names,
                marker={"size": style.marker_size, "color": PALETTE[0], "opacity": 0.7},
                hovertemplate="<b>%{text}</b><br>%{lat:.1f}°, %{lon:.1f}°<extra></extra>",
                name="predicted",
            )
        return go.Scatter(
            x=entities["year"].to_numpy()[idx],
            y=preds[pos, :, 0],
            mode="markers",
            text=names,
            marker={"size": style.marker_size + 1, "color": PALETTE[0], "opacity": 0.7},
            hovertemplate="<b>%{text}</b><br>true %{x:.0f}, predicted %{y:.0f}<extra></extra>",
            name="predicted",
        )

    static = _outline_traces(scope) if kind == "space" else []
    n_static = len(static)
    fig = go.Figure(data=[*static, trace(0)])
    fig.frames = [
        go.Frame(data=[trace(pos)], traces=[n_static], name=str(layer))
        for pos, layer in enumerate(layers)
    ]
    play = {
        "frame": {"duration": frame_ms, "redraw": True},
        "fromcurrent": True,
        "transition": {"duration": 0},
    }
    fig.update_layout(
        updatemenus=[
            {
                "type": "buttons",
                "showactive": False,
                "x": 0.0,
                "y": 0.0,
                "xanchor": "left",
                "yanchor": "top",
                "buttons": [
                    {"label": "▶ Play", "method": "animate", "args": [None, play]},
                    {
                        "label": "❚❚ Pause",
                        "method": "animate",
                        "args": [
                            [None],
                            {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"},
                        ],
                    },
                ],
            }
        ],
        sliders=[
            {
                "active": 0,
                "x": 0.15,
                "len": 0.85,
                "y": 0.0,
                "currentvalue": {"prefix": "layer "},
                "steps": [
                    {
                        "label": str(layer),
                        "method": "animate",
                        "args": [
                            [str(layer)],
                            {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"},
                        ],
                    }
                    for layer in layers
                ],
            }
        ],
    )
    if kind == "space":
        fig.update_geos(**get_scope(scope).geo)
    else:
        finite = entities["year"].to_numpy(np.float64)[idx]
        lo, hi = float(np.nanmin(finite)), float(np.nanmax(finite))
        pad = 0.1 * (hi - lo or 1.0)
        fig.update_layout(
            xaxis={"title": "true year", "range": [lo - pad, hi + pad]},
            yaxis={"title": "predicted year", "range": [lo - 3 * pad, hi + 3 * pad]},
        )
    return _layout(fig, style, title)


def animation_gif(
    fig: go.Figure, frame_ms: int = 600, width: int = 900, height: int = 540, scale: float = 1.0
) -> bytes:
    """Render every frame of an animated figure with kaleido (offline) into an animated GIF."""
    from PIL import Image

    images = []
    base = go.Figure(fig)
    n_frames = len(fig.frames)
    for i, frame in enumerate(fig.frames):
        still = go.Figure(base)
        still.frames = []
        still.layout.updatemenus = []
        still.layout.sliders = []
        for trace_index, data in zip(
            frame.traces or range(len(frame.data)), frame.data, strict=False
        ):
            still.data[trace_index].update(data)
        layer_title = f"{(fig.layout.title.text or '').strip()} · layer {frame.name}".strip(" ·")
        still.update_layout(title={"text": layer_title})
        png = figure_image(still, "png", width=width, height=height, scale=scale)
        images.append(Image.open(io.BytesIO(png)).convert("P", palette=Image.Palette.ADAPTIVE))
        log.info("GIF frame %d/%d", i + 1, n_frames)
    if not images:
        raise ValueError("the figure has no frames")
    out = io.BytesIO()
    images[0].save(
        out, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0
    )
    return out.getvalue()
