"""Figures and captions of placement inside groups (issue 29).

* :func:`with_within_curve` draws the within-group probe's per-layer test R² and its 95%
  band on the R² panel of :func:`core.viz.figures.layer_curves_figure`, beside the
  overall curve.
* :func:`within_offsets_figure` is the Maps page's "within group" view: each test
  entity's predicted offset from its group's predicted centre against its true offset
  from its group's true centre (:func:`core.results.within.group_offsets`), one panel per
  target. A scatter rather than small-multiple maps: the question is one number per entity
  and axis (does the prediction move with the truth inside the group?), and the y = x
  line answers it for every group at once; maps of 200 countries would be 200 tiny panels.
* :func:`between_caption` and :func:`within_curve_caption` say in words what the numbers
  are, with their intervals.

Plain data in, plotly figures or strings out; nothing here knows about Streamlit.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.probe.bootstrap import Interval
from core.viz.figures import (
    OTHER_COLOUR,
    PALETTE,
    Style,
    _layout,
    add_band,
    colour_map,
    escape_names,
    group_labels,
)

WITHIN_COLOUR = PALETTE[9]  # cyan: apart from train, test and the baselines' colours
# grouping -> (one, many)
GROUP_NOUNS: dict[str, tuple[str, str]] = {
    "country": ("country", "countries"),
    "state": ("state", "states"),
    "borough": ("borough", "boroughs"),
    "era": ("era", "eras"),
    "century": ("century", "centuries"),
    "decade": ("decade", "decades"),
}
AXIS_LABELS: dict[str, str] = {"lat": "latitude (°)", "lon": "longitude (°)", "year": "year"}


def nouns(grouping: str) -> tuple[str, str]:
    """(singular, plural) of a grouping column for captions."""
    return GROUP_NOUNS.get(grouping, (grouping, f"{grouping} groups"))


def _finite(iv: Interval | None) -> bool:
    return iv is not None and bool(np.isfinite(iv.point))


def pct(iv: Interval) -> str:
    """``134% [128%, 136%]``."""
    return f"{iv.point:.0%} [{iv.lo:.0%}, {iv.hi:.0%}]"


# ------------------------------------------------------------------ layer curves
def with_within_curve(
    fig: go.Figure,
    curve: pd.DataFrame,
    grouping: str,
    chosen_layer: int | None = None,
    name_only: Interval | None = None,
    style: Style | None = None,
) -> go.Figure:
    """`fig` (a :func:`~core.viz.figures.layer_curves_figure`) with the within-group
    probe's test R² per layer (`curve`: ``layer``, ``r2``, ``lo``, ``hi``) and its 95%
    band on the R² panel, a star at the layer its training rows chose and its name-only
    control (same target and rows) as a dotted line."""
    style = style or Style()
    curve = curve.sort_values("layer")
    if curve.empty:
        return fig
    one = nouns(grouping)[0]
    label = f"within {one} (test)"
    group = "within"
    band = curve[np.isfinite(curve["lo"]) & np.isfinite(curve["hi"])]
    if len(band):
        add_band(fig, band, WITHIN_COLOUR, f"within {one} 95% interval", row=1, col=1)
    fig.add_trace(
        go.Scatter(
            x=curve["layer"],
            y=curve["r2"],
            mode="lines+markers",
            name=label,
            legendgroup=group,
            line={"color": WITHIN_COLOUR, "width": style.line_width},
            marker={"size": style.marker_size + 1, "symbol": "diamond"},
            hovertemplate=f"within-{html.escape(one)} probe, layer %{{x}}: "
            "test R² %{y:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    at = curve[curve["layer"] == chosen_layer]
    if chosen_layer is not None and not at.empty:
        fig.add_trace(
            go.Scatter(
                x=[chosen_layer],
                y=[float(at["r2"].iloc[0])],
                mode="markers",
                name=f"within {one}: layer chosen on training rows",
                legendgroup=group,
                marker={"symbol": "star", "size": style.marker_size + 9, "color": WITHIN_COLOUR},
                hovertemplate="within-group probe chosen on training leave-one-out R²: "
                "layer %{x}, test R² %{y:.3f}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    if _finite(name_only):
        assert name_only is not None
        span = [float(curve["layer"].min()), float(curve["layer"].max())]
        text = name_only.compact() if np.isfinite(name_only.lo) else f"{name_only.point:.2f}"
        fig.add_trace(
            go.Scatter(
                x=span,
                y=[name_only.point] * 2,
                mode="lines",
                name=f"within {one}: names only ({text})",
                legendgroup=group,
                line={"color": WITHIN_COLOUR, "dash": "dot", "width": style.line_width - 0.5},
                hovertemplate=f"within-{html.escape(one)} names only: "
                f"{name_only.point:.3f}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    return fig


def within_curve_caption(
    grouping: str,
    kind: str,
    n_groups: int,
    n_test: int,
    min_train: int,
    layer: int,
    r2: Interval,
    name_only: Interval | None,
) -> str:
    """What the within-group curve is, in words, with the chosen layer's numbers."""
    one, many = nouns(grouping)
    value = "position (lat, lon)" if kind == "space" else "year"
    names = ""
    if name_only is not None and _finite(name_only):
        names = f", names only {name_only.compact()}"
    return (
        f"Within {one} (cyan): a second probe whose target is each entity's {value} minus "
        f"its {one}'s training mean, so it cannot score by telling {many} apart. It keeps "
        f"the {n_groups:,} {many} with at least {min_train} training rows ({n_test:,} test "
        f"rows, from those {many} only) and follows the same protocol: a ridge per layer, "
        f"alpha by leave-one-out and the layer chosen on training rows. R² 0 is no better "
        f"than the {one}'s own centre. Its band is the 95% interval of each layer's test R²; "
        f"the dotted cyan line is the name-only ridge on the same target and rows. At layer "
        f"{layer}, chosen on training rows: test R² {r2.compact()}{names}."
    )


def within_missing_note(grouping: str, folder: str) -> str:
    """The note for a result whose within-group probe is not built yet."""
    one = nouns(grouping)[0]
    return (
        f"Within-{one} probe: not built yet for these results. It reads each entity's "
        f"offset from its {one}'s training mean and needs the activations the results were "
        f"fitted on; add it with `python -m core.results.within {folder}`."
    )


# ------------------------------------------------------------------ maps
def between_caption(split: Mapping[str, Interval], grouping: str, layer: int) -> str:
    """How much of one layer's test R² is between groups, and what is left inside them
    (`split`: :func:`core.results.within.decomposition_of`)."""
    one, many = nouns(grouping)
    r2, within, corr = split["r2"], split["r2_within"], split["within_corr"]
    share = split["group_share"]
    if _finite(share):
        lead = (
            f"Between {many}: putting every test entity at its {one}'s predicted centre "
            f"gives {pct(share)} of layer {layer}'s test R² ({r2.compact()})"
        )
    else:
        lead = (
            f"Between {many}: layer {layer}'s test R² is {r2.compact()}, so the share of it "
            f"that {many} explain is undefined"
        )
    if within.hi < 0:
        verdict = (
            f"inside a {one} the probe places entities worse than the {one}'s own centre "
            f"would: the map's shape comes from telling {many} apart"
        )
    elif within.lo > 0:
        verdict = f"inside a {one} it places entities better than the {one}'s centre"
    else:
        verdict = f"inside a {one} it cannot be told from the {one}'s centre"
    return (
        f"{lead}; R²_between {split['r2_between'].compact()}. Within a {one}, R²_within is "
        f"{within.compact()} and the correlation of predicted with true offsets "
        f"{corr.compact()}: {verdict}. Test rows; 95% intervals from 1,000 bootstrap "
        f"resamples of the test entities."
    )


def within_offsets_figure(
    frame: pd.DataFrame,
    target_names: Sequence[str],
    grouping: str,
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """One panel per target: each entity's true offset from its group's true centre (x)
    against its predicted offset from its group's predicted centre (y), coloured by
    group, with y = x; x and y share one range per panel so a flat cloud reads as flat.
    `frame`: :func:`core.results.within.group_offsets`."""
    style = style or Style()
    one = nouns(grouping)[0]
    targets = list(target_names)
    fig = make_subplots(
        rows=1,
        cols=len(targets),
        subplot_titles=[AXIS_LABELS.get(t, t) for t in targets],
        horizontal_spacing=0.08,
    )
    labels, kept = group_labels(frame["group"].astype(str))
    colours = colour_map(kept)
    names = escape_names(frame["name"]) if len(frame) else np.array([], dtype=str)
    groups = escape_names(frame["group"]) if len(frame) else np.array([], dtype=str)
    for c, target in enumerate(targets, start=1):
        true = frame[f"true_{target}"].to_numpy(np.float64)
        pred = frame[f"pred_{target}"].to_numpy(np.float64)
        both = np.concatenate([true, pred])
        both = both[np.isfinite(both)]
        reach = float(np.abs(both).max()) * 1.05 if both.size else 1.0
        for i, g in enumerate(kept):
            rows = np.flatnonzero(labels == i)
            if not rows.size:
                continue
            fig.add_trace(
                go.Scatter(
                    x=true[rows],
                    y=pred[rows],
                    mode="markers",
                    name=html.escape(g),
                    legendgroup=g,
                    showlegend=c == 1,
                    marker={
                        "size": style.marker_size + 1,
                        "color": colours.get(g, OTHER_COLOUR),
                        "opacity": 0.75,
                    },
                    text=names[rows],
                    hovertext=groups[rows],
                    hovertemplate="%{text} (%{hovertext})<br>true offset %{x:.2f}"
                    "<br>predicted offset %{y:.2f}<extra></extra>",
                ),
                row=1,
                col=c,
            )
        fig.add_trace(
            go.Scatter(
                x=[-reach, reach],
                y=[-reach, reach],
                mode="lines",
                name="y = x (placed exactly)",
                legendgroup="diagonal",
                showlegend=c == 1,
                line={"color": "#444444", "dash": "dash", "width": 1},
                hoverinfo="skip",
            ),
            row=1,
            col=c,
        )
        fig.update_xaxes(
            range=[-reach, reach], title_text=f"true offset from its {one}'s centre", row=1, col=c
        )
        fig.update_yaxes(range=[-reach, reach], row=1, col=c)
    fig.update_yaxes(title_text=f"predicted offset from its {one}'s predicted centre", row=1, col=1)
    _layout(fig, style, title)
    return fig
