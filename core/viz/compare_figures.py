"""Two models side by side at one normalised depth (the dashboard's Compare page).

Depth is ``core.common.depth``'s normalised depth ``(l + 1) / n`` (the Layers page's
model comparison uses the same); each panel shows its probed layer nearest the shared
depth (:func:`core.common.depth.layer_at_depth`): at ``d = 0.5`` an 18-layer model
shows layer 8 and a 30-layer model layer 14.

The rest picks the models (the two largest trained models by default, see
:func:`model_size`), builds each panel's test-split frame at its layer, and draws the
panels as one figure (:func:`compare_figure`, from ``map_figure`` / ``timeline_figure``)
so a slide gets both maps in a single export. Nothing here knows about Streamlit.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.common.depth import depth_of, layer_at_depth
from core.results.catalog import ResultEntry
from core.results.probe_results import ProbeResults
from core.results.scale import name_size as name_size  # re-exported
from core.viz import figures as figs


# ------------------------------------------------------------------ models
def model_size(entry: ResultEntry) -> float:
    """A model's size for ordering: the parameter count in its name, else an estimate of
    its blocks' weights (12 · layers · d_model²)."""
    return name_size(entry.model) or 12.0 * entry.n_model_layers * float(entry.d_model) ** 2


def rank_models(entries: Sequence[ResultEntry]) -> list[ResultEntry]:
    """Trained models largest first, then random-init controls largest first."""
    return sorted(entries, key=lambda e: (e.random_init, -model_size(e), e.model_id))


def choose_models(
    entries: Sequence[ResultEntry], left: str = "", right: str = ""
) -> tuple[ResultEntry | None, ResultEntry | None]:
    """The two results to show: the model ids asked for ("" = default) where they have
    results, the rest filled from the trained models, largest first, not shown already
    (from the random-init controls only when no trained model has results)."""
    by_id = {e.model_id: e for e in entries}
    picked = [by_id.get(left) if left else None, by_id.get(right) if right else None]
    ranked = rank_models(entries)
    pool = [e for e in ranked if not e.random_init] or ranked
    taken = {e.model_id for e in picked if e is not None}
    spare = iter([e for e in pool if e.model_id not in taken])
    out = [p if p is not None else next(spare, None) for p in picked]
    return out[0], out[1]


# ------------------------------------------------------------------ panels
@dataclass(frozen=True)
class Panel:
    """One model's predictions at the layer nearest the shared depth."""

    label: str  # the model as shown (random-init controls say so)
    layer: int
    n_model_layers: int
    test_r2: float | None
    frame: pd.DataFrame  # entities of the split with pred_<target> columns
    n_total: int  # entities of the split before the point cap

    @property
    def depth(self) -> float:
        return depth_of(self.layer, self.n_model_layers)

    @property
    def title(self) -> str:
        r2 = "–" if self.test_r2 is None else f"{self.test_r2:.3f}"
        return f"{self.label}: layer {self.layer} of {self.n_model_layers} · test R² {r2}"


def panel(
    results: ProbeResults,
    depth: float,
    label: str,
    max_points: int | None = None,
    safe_names: np.ndarray | None = None,
    split: str = "test",
) -> Panel:
    """`results` at their probed layer nearest `depth`: the split's entities (a fixed
    sample of at most `max_points`) with predictions, and that layer's test R²."""
    layer = layer_at_depth(results.layers.tolist(), results.n_model_layers, depth)
    pos = results.layer_position(layer)
    rows = np.flatnonzero(figs.split_mask(results.entities, split))
    n_total = len(rows)
    rows = rows[figs.sample_rows(n_total, max_points)]
    preds = np.asarray(results.predictions[pos])[rows]
    frame = figs.prediction_frame(results.entities.iloc[rows], preds, results.target_names)
    if safe_names is not None:
        frame["name_html"] = np.asarray(safe_names)[rows]
    r2 = results.metric_at(layer, "r2", "test")
    return Panel(
        label=label,
        layer=layer,
        n_model_layers=int(results.n_model_layers),
        test_r2=None if math.isnan(r2) else r2,
        frame=frame,
        n_total=n_total,
    )


def file_stem(model_ids: Sequence[str], dataset: str, prompt: str, depth: float) -> str:
    """Download name of a comparison: ``compare_<a>-vs-<b>_<dataset>_<prompt>_depth<d>``."""
    models = "-vs-".join(m.replace("@", "-") for m in model_ids)
    return "_".join(["compare", models, dataset, prompt, f"depth{depth:.2f}"])


# ------------------------------------------------------------------ figure
def compare_figure(
    panels: Sequence[Panel],
    kind: str,
    scope: str = "world",
    color: str | None = None,
    segments: bool = False,
    style: figs.Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """The panels side by side in one figure: maps (``kind`` "space") or true-vs-predicted
    timelines ("time"), one legend for both, subplot titles from :attr:`Panel.title`.

    Each panel is drawn by ``figures.map_figure`` / ``figures.timeline_figure`` and its
    traces moved into its subplot, so hover and colours are the Maps and Timelines pages'.
    """
    if kind not in ("space", "time"):
        raise ValueError(f"unknown kind {kind!r}; expected space or time")
    if not panels:
        raise ValueError("nothing to compare")
    style = style or figs.Style()
    singles = [
        figs.map_figure(p.frame, scope=scope, color=color, segments=segments, style=style)
        if kind == "space"
        else figs.timeline_figure(p.frame, color=color, style=style)
        for p in panels
    ]
    n = len(panels)
    fig = make_subplots(
        rows=1,
        cols=n,
        specs=[[{"type": "geo" if kind == "space" else "xy"}] * n],
        subplot_titles=[_title_markup(p) for p in panels],
        horizontal_spacing=0.02 if kind == "space" else 0.06,
    )
    in_legend: set[str] = set()
    for col, single in enumerate(singles, start=1):
        for trace in single.data:
            copy = type(trace)(trace.to_plotly_json())
            name = str(copy.name or "")
            copy.legendgroup = name
            if copy.showlegend is not False:
                copy.showlegend = name not in in_legend
                in_legend.add(name)
            fig.add_trace(copy, row=1, col=col)
        if kind == "space":
            geo = single.layout.geo.to_plotly_json()
            geo.pop("domain", None)
            fig.update_geos(geo, row=1, col=col)
        else:
            fig.update_xaxes(title_text=single.layout.xaxis.title.text, row=1, col=col)
            if col == 1:  # the panels share the y scale (below)
                fig.update_yaxes(title_text=single.layout.yaxis.title.text, row=1, col=col)
    if kind == "time" and n > 1:
        # one scale for both: the sharper model is the one hugging y = x more tightly
        fig.update_xaxes(matches="x")
        fig.update_yaxes(matches="y")
    first = singles[0].layout
    lines = 2 + (2 if title else 0)
    fig.update_layout(
        template=first.template,
        font=first.font,
        hoverlabel=first.hoverlabel,
        legend=first.legend,
        title={"text": html.escape(title) if title else None, "x": 0.01, "xanchor": "left"},
        height=int(style.height * (0.85 if kind == "space" else 1.0)),
        margin={"l": 10, "r": 10, "t": int(lines * style.font_size * 1.5) + 16, "b": 10},
    )
    fig.update_annotations(font={"size": style.font_size + 1})
    return fig


def _title_markup(p: Panel) -> str:
    """A panel title in plotly markup: the model on one line, layer and R² on the next."""
    r2 = "–" if p.test_r2 is None else f"{p.test_r2:.3f}"
    return f"<b>{html.escape(p.label)}</b><br>layer {p.layer} of {p.n_model_layers} · test R² {r2}"
