"""Plotly figures of probe results: maps, timelines, layer curves, live probes.

Every function takes plain data (DataFrames, arrays) and returns a
``plotly.graph_objects.Figure``; nothing here knows about Streamlit. Entity names
are HTML-escaped before they reach plotly (plotly renders a subset of HTML in
text and hover labels), so a name is always shown as text.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.common.depth import depth_of
from core.probe.bootstrap import Interval
from core.probe.metrics import haversine_km
from core.viz.outlines import get_scope, outline_lines, topojson_file_uri

log = logging.getLogger(__name__)

MAX_GROUPS = 20  # further groups are drawn together as "other"
OTHER = "other"
PALETTE: tuple[str, ...] = (
    tuple(qualitative.D3) + tuple(qualitative.Dark2) + tuple(qualitative.Set1)
)
OTHER_COLOUR = "#b0b0b0"
GROUP_COLUMNS: tuple[str, ...] = (
    "group",
    "continent",
    "country",
    "state",
    "borough",
    "decade",
    "century",
    "entity_type",
    "creator",
)
_NOT_GROUPS = {"name", "text", "is_test", "lat", "lon", "year", "popularity"}


@dataclass(frozen=True)
class Style:
    """Sizes for the screen or for a talk (``presentation``: large fonts and markers)."""

    presentation: bool = False

    @property
    def font_size(self) -> int:
        return 22 if self.presentation else 13

    @property
    def marker_size(self) -> float:
        return 6.0 if self.presentation else 4.0

    @property
    def height(self) -> int:
        return 680 if self.presentation else 540

    @property
    def line_width(self) -> float:
        return 3.0 if self.presentation else 1.8


def _mark_layer(fig: go.Figure, layer: int) -> None:
    """The dashed line at the layer the dashboard's slider selects (every layer chart)."""
    fig.add_vline(x=layer, line={"color": "#888888", "dash": "dash", "width": 1})


def _finish_layer_panels(
    fig: go.Figure, style: Style, title: str | None, selected_layer: int | None
) -> go.Figure:
    """Layer marker, layout and the shared x title of a two-panel layer chart."""
    if selected_layer is not None:
        _mark_layer(fig, selected_layer)
    _layout(fig, style, title)
    fig.update_xaxes(title_text="layer (decoder block)", row=2, col=1)
    return fig


def _layout(
    fig: go.Figure, style: Style, title: str | None, height: int | None = None
) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        font={"size": style.font_size, "family": "Arial, Helvetica, sans-serif"},
        title={"text": html.escape(title) if title else None, "x": 0.01, "xanchor": "left"},
        height=height or style.height,
        margin={"l": 10, "r": 10, "t": 60 if title else 20, "b": 10},
        legend={"itemsizing": "constant"},
        hoverlabel={"font_size": max(12, style.font_size - 1)},
    )
    return fig


# ------------------------------------------------------------------ helpers
def escape_names(names: Sequence[Any] | pd.Series) -> np.ndarray:
    """Entity names made safe for plotly text (shown literally, never as markup).

    Returns a fixed-width unicode array: plotly copies those far faster than
    object arrays, which matters at tens of thousands of points.
    """
    return np.array([html.escape(str(n), quote=False) for n in names], dtype=str)


def _safe_names(frame: pd.DataFrame) -> np.ndarray:
    """``name_html`` (escaped once per results by the caller) if present, else escape now."""
    if "name_html" in frame:
        return frame["name_html"].to_numpy(dtype=str)
    return escape_names(frame["name"])


def group_columns(entities: pd.DataFrame) -> list[str]:
    """Columns that can colour points: the known grouping columns, then other labels."""
    out = [c for c in GROUP_COLUMNS if c in entities.columns]
    for col in entities.columns:
        if col in out or col in _NOT_GROUPS or col.startswith("pred_"):
            continue
        series = entities[col]
        labelled = (
            series.dtype == object
            or isinstance(series.dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(series)
        )
        if labelled and 2 <= series.nunique(dropna=True) <= 60:
            out.append(col)
    return out


def default_group_column(entities: pd.DataFrame, preferred: str | None = None) -> str | None:
    cols = group_columns(entities)
    if preferred and preferred in cols:
        return preferred
    return cols[0] if cols else None


def split_mask(entities: pd.DataFrame, split: str) -> np.ndarray:
    """Rows of a split: "test", "train" or "all"."""
    is_test = entities["is_test"].to_numpy(dtype=bool)
    if split == "test":
        return is_test
    if split == "train":
        return ~is_test
    if split == "all":
        return np.ones(len(entities), dtype=bool)
    raise ValueError(f"unknown split {split!r}; expected test, train or all")


def sample_rows(n: int, max_points: int | None, seed: int = 0) -> np.ndarray:
    """A fixed subsample of row indices (the same for every layer), sorted."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(n)[:max_points])


def group_labels(values: pd.Series, max_groups: int = MAX_GROUPS) -> tuple[np.ndarray, list[str]]:
    """Group index per row and group names, largest first; rare groups merged into "other"."""
    codes, uniques = pd.factorize(values.astype("string").fillna("(none)"), sort=False)
    counts = np.bincount(codes, minlength=len(uniques)) if len(uniques) else np.zeros(0, int)
    order = np.argsort(-counts, kind="stable")
    keep = order[:max_groups]
    groups = [str(uniques[k]) for k in keep]
    remap = np.full(len(uniques), len(groups), dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    if len(uniques) > max_groups:
        groups.append(OTHER)
    return remap[codes], groups


def colour_map(groups: Sequence[str]) -> dict[str, str]:
    ordered = sorted(g for g in groups if g != OTHER)
    out = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(ordered)}
    out[OTHER] = OTHER_COLOUR
    return out


def headline(metrics: pd.DataFrame, layer: int, kind: str) -> dict[str, float | None]:
    """Headline numbers of one layer: test R², median error (km or years), proximity error."""
    rows = metrics[metrics["layer"] == layer]

    def value(split: str, col: str) -> float | None:
        hit = rows[rows["split"] == split]
        if hit.empty or col not in hit.columns:
            return None
        v = float(hit[col].iloc[0])
        return None if np.isnan(v) else v

    out: dict[str, float | None] = {
        "test_r2": value("test", "r2"),
        "train_r2": value("train", "r2"),
        "test_proximity_error": value("test", "proximity_error"),
    }
    if kind == "space":
        out["test_km_median"] = value("test", "km_median")
        out["test_km_mean"] = value("test", "km_mean")
    else:
        out["test_mae_year"] = value("test", "mae_year")
    return out


# --------------------------------------------------------------------- maps
def prediction_frame(
    entities: pd.DataFrame, predictions: np.ndarray, target_names: Sequence[str]
) -> pd.DataFrame:
    """Entities with ``pred_<t>`` columns (and ``err_km`` for lat/lon) from one layer."""
    frame = entities.copy()
    preds = np.asarray(predictions, dtype=np.float64)
    for j, target in enumerate(target_names):
        frame[f"pred_{target}"] = preds[:, j]
    if {"lat", "lon"} <= set(target_names):
        frame["err_km"] = haversine_km(
            frame["lat"].to_numpy(float),
            frame["lon"].to_numpy(float),
            frame["pred_lat"].to_numpy(float),
            frame["pred_lon"].to_numpy(float),
        )
    if "year" in target_names:
        frame["residual"] = frame["pred_year"] - frame["year"]
    return frame


def _outline_traces(scope_name: str) -> list[go.Scattergeo]:
    scope = get_scope(scope_name)
    if not scope.outlines:
        return []
    lon, lat = outline_lines(scope.outlines)
    if lon.size == 0:
        return []
    return [
        go.Scattergeo(
            lon=lon,
            lat=lat,
            mode="lines",
            line={"color": "#8c96a0", "width": 0.8},
            hoverinfo="skip",
            showlegend=False,
            name="outlines",
        )
    ]


def map_figure(
    frame: pd.DataFrame,
    scope: str,
    color: str | None = None,
    segments: bool = False,
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """Predicted positions coloured by group, optionally with true→predicted segments.

    `frame` needs name, lat, lon, pred_lat, pred_lon (and err_km, added if missing); a
    ``lands_in`` column (the container each prediction falls in, `core.viz.containers`)
    adds "lands in: …" to the hover.
    """
    style = style or Style()
    if "err_km" not in frame:
        frame = frame.assign(
            err_km=haversine_km(frame["lat"], frame["lon"], frame["pred_lat"], frame["pred_lon"])
        )
    fig = go.Figure(data=_outline_traces(scope))
    names = _safe_names(frame)
    lat = frame["lat"].to_numpy(np.float64)
    lon = frame["lon"].to_numpy(np.float64)
    plat = frame["pred_lat"].to_numpy(np.float64)
    plon = frame["pred_lon"].to_numpy(np.float64)
    err = frame["err_km"].to_numpy(np.float64)
    if segments and len(frame):
        nan = np.full(len(frame), np.nan)
        fig.add_trace(
            go.Scattergeo(
                lat=np.column_stack([lat, plat, nan]).ravel(),
                lon=np.column_stack([lon, plon, nan]).ravel(),
                mode="lines",
                line={"color": "rgba(80,80,80,0.35)", "width": 0.6},
                hoverinfo="skip",
                name="true → predicted",
                showlegend=True,
            )
        )
        fig.add_trace(
            go.Scattergeo(
                lat=lat,
                lon=lon,
                mode="markers",
                marker={"size": max(2.0, style.marker_size - 2), "color": "#333333"},
                name="true position",
                text=names,
                hovertemplate="<b>%{text}</b><br>true %{lat:.2f}°, %{lon:.2f}°<extra></extra>",
            )
        )
    if color and color in frame:
        labels, groups = group_labels(frame[color])
    else:
        labels, groups = np.zeros(len(frame), dtype=np.int64), ["all"]
    colours = colour_map(groups)
    custom = np.column_stack([lat, lon, err])
    # per-point strings go in hovertext: customdata stays a float array (packed as binary)
    lands = (
        escape_names(frame["lands_in"].astype(object).where(frame["lands_in"].notna(), "–"))
        if "lands_in" in frame
        else None
    )
    hover = (
        "<b>%{text}</b><br>%{meta}<br>true %{customdata[0]:.2f}°, %{customdata[1]:.2f}°"
        "<br>predicted %{lat:.2f}°, %{lon:.2f}°<br>error %{customdata[2]:,.0f} km"
        + ("<br>lands in: %{hovertext}" if lands is not None else "")
        + "<extra></extra>"
    )
    for index, group in enumerate(groups):
        rows = labels == index
        if not rows.any():
            continue
        fig.add_trace(
            go.Scattergeo(
                lat=plat[rows],
                lon=plon[rows],
                mode="markers",
                marker={
                    "size": style.marker_size,
                    "color": colours.get(group, OTHER_COLOUR),
                    "opacity": 0.8,
                },
                name=html.escape(group),
                text=names[rows],
                customdata=custom[rows],
                hovertext=lands[rows] if lands is not None else None,
                meta=html.escape(f"{color}: {group}") if color else "",
                hovertemplate=hover,
            )
        )
    fig.update_geos(**get_scope(scope).geo)
    _layout(fig, style, title)
    fig.update_layout(legend={"title": {"text": html.escape(color) if color else ""}})
    return fig


# ---------------------------------------------------------------- timelines
def timeline_figure(
    frame: pd.DataFrame,
    color: str | None = None,
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """True vs predicted year with the y = x line, coloured by group, names on hover."""
    style = style or Style()
    fig = go.Figure()
    names = _safe_names(frame)
    true = frame["year"].to_numpy(np.float64)
    pred = frame["pred_year"].to_numpy(np.float64)
    if color and color in frame:
        labels, groups = group_labels(frame[color])
    else:
        labels, groups = np.zeros(len(frame), dtype=np.int64), ["all"]
    colours = colour_map(groups)
    for index, group in enumerate(groups):
        rows = labels == index
        if not rows.any():
            continue
        fig.add_trace(
            go.Scatter(
                x=true[rows],
                y=pred[rows],
                mode="markers",
                marker={
                    "size": style.marker_size + 1,
                    "color": colours.get(group, OTHER_COLOUR),
                    "opacity": 0.7,
                },
                name=html.escape(group),
                text=names[rows],
                customdata=(pred - true)[rows],
                hovertemplate=(
                    "<b>%{text}</b><br>true %{x:.0f}<br>predicted %{y:.0f}"
                    "<br>residual %{customdata:+.0f} years<extra></extra>"
                ),
            )
        )
    finite = np.concatenate([true[np.isfinite(true)], pred[np.isfinite(pred)]])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    fig.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[lo, hi],
            mode="lines",
            line={"color": "#444444", "dash": "dash", "width": 1.2},
            name="y = x",
            hoverinfo="skip",
        )
    )
    _layout(fig, style, title)
    fig.update_layout(
        xaxis_title="true year",
        yaxis_title="predicted year",
        legend={"title": {"text": html.escape(color) if color else ""}},
    )
    return fig


def residual_figure(
    frame: pd.DataFrame,
    by: str = "decade",
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """Residuals (predicted − true years) by decade or century of the true year.

    Box statistics are computed here, so the browser gets a few numbers per bin.
    """
    style = style or Style()
    width = {"decade": 10, "century": 100}.get(by)
    if width is None:
        raise ValueError(f"unknown bin {by!r}; expected decade or century")
    true = frame["year"].to_numpy(np.float64)
    resid = frame["pred_year"].to_numpy(np.float64) - true
    ok = np.isfinite(true) & np.isfinite(resid)
    bins = (np.floor(true[ok] / width) * width).astype(int)
    stats = (
        pd.DataFrame({"bin": bins, "resid": resid[ok]})
        .groupby("bin")["resid"]
        .describe(percentiles=[0.1, 0.25, 0.5, 0.75, 0.9])
        .reset_index()
    )
    suffix = "s" if by == "decade" else "s (century)"
    labels = [f"{b}{suffix}" if by == "decade" else f"{b}–{b + 99}" for b in stats["bin"]]
    fig = go.Figure(
        go.Box(
            x=labels,
            q1=stats["25%"],
            median=stats["50%"],
            q3=stats["75%"],
            lowerfence=stats["10%"],
            upperfence=stats["90%"],
            mean=stats["mean"],
            name="residual",
            marker_color=PALETTE[0],
            hovertemplate=None,
        )
    )
    fig.add_hline(y=0, line={"color": "#444444", "dash": "dash", "width": 1})
    _layout(fig, style, title, height=int(style.height * 0.7))
    fig.update_layout(
        xaxis_title=f"true {by}",
        yaxis_title="predicted − true (years; box 25–75%, whiskers 10–90%)",
        showlegend=False,
    )
    return fig


# ------------------------------------------------------------------- layers
def layer_curves_figure(
    metrics: pd.DataFrame,
    kind: str,
    selected_layer: int | None = None,
    style: Style | None = None,
    title: str | None = None,
    baselines: Mapping[str, float | Interval] | None = None,
    chosen_layer: int | None = None,
    test_band: pd.DataFrame | None = None,
) -> go.Figure:
    """Train and test R² (top) and proximity error (bottom) against layer.

    `baselines` (label -> test R², or its :class:`Interval`: name-only, group mean,
    random init) are drawn as horizontal lines on the R² panel, so a reader sees which
    numbers the probe clears; `chosen_layer` (picked on training rows) is marked with a
    star on the test curve; `test_band` (``layer``, ``lo``, ``hi``: the 95% interval of
    each layer's test R², :func:`core.results.intervals.layer_band`) shades the test curve.
    """
    style = style or Style()
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("R²", "proximity error (lower is better)"),
    )
    dash = {"train": "dot", "test": "solid"}
    colour = {"train": PALETTE[1], "test": PALETTE[0]}
    if test_band is not None and len(test_band):
        add_band(fig, test_band, PALETTE[0], "test 95% interval", row=1, col=1)
    for split in ("train", "test"):
        rows = metrics[metrics["split"] == split].sort_values("layer")
        if rows.empty:
            continue
        for r, col in ((1, "r2"), (2, "proximity_error")):
            if col not in rows:
                continue
            fig.add_trace(
                go.Scatter(
                    x=rows["layer"],
                    y=rows[col],
                    mode="lines+markers",
                    name=split,
                    legendgroup=split,
                    showlegend=r == 1,
                    line={"dash": dash[split], "color": colour[split], "width": style.line_width},
                    marker={"size": style.marker_size + 1},
                    hovertemplate=f"{split} layer %{{x}}: %{{y:.3f}}<extra></extra>",
                ),
                row=r,
                col=1,
            )
    _add_baselines(fig, metrics, baselines or {}, chosen_layer, style)
    return _finish_layer_panels(fig, style, title, selected_layer)


BASELINE_DASH = ("dash", "dashdot", "longdash", "dot")
BAND_OPACITY = 0.2


def _rgba(colour: str, alpha: float) -> str:
    """A ``#rrggbb`` or ``rgb(r, g, b)`` colour with transparency."""
    if colour.startswith("#") and len(colour) == 7:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = (int(float(v)) for v in colour[colour.index("(") + 1 : -1].split(",")[:3])
    return f"rgba({r}, {g}, {b}, {alpha})"


def add_band(
    fig: go.Figure,
    band: pd.DataFrame,
    colour: str,
    name: str,
    x: Sequence[float] | np.ndarray | None = None,
    legendgroup: str | None = None,
    row: int | None = None,
    col: int | None = None,
) -> None:
    """A shaded 95% interval: ``band`` has ``lo`` and ``hi`` (and ``layer``, the x unless
    `x` is given). Two traces: the upper edge (no line) and the lower one filled up to it."""
    band = band.sort_values("layer") if "layer" in band else band
    xs = list(np.asarray(x if x is not None else band["layer"], dtype=float))
    where = {"row": row, "col": col} if row is not None else {}
    common = {
        "mode": "lines",
        "line": {"width": 0, "color": colour},
        "legendgroup": legendgroup or name,
        "hoverinfo": "skip",
    }
    fig.add_trace(
        go.Scatter(x=xs, y=band["hi"].to_numpy(float), showlegend=False, name=name, **common),
        **where,
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=band["lo"].to_numpy(float),
            fill="tonexty",
            fillcolor=_rgba(colour, BAND_OPACITY),
            name=name,
            showlegend=legendgroup is None,
            **common,
        ),
        **where,
    )


def _add_baselines(
    fig: go.Figure,
    metrics: pd.DataFrame,
    baselines: Mapping[str, float | Interval],
    chosen_layer: int | None,
    style: Style,
) -> None:
    """Baseline lines across the R² panel and a star on the chosen layer's test R²."""
    layers = metrics["layer"].to_numpy() if "layer" in metrics else np.array([])
    if layers.size:
        span = [float(layers.min()), float(layers.max())]
        points = {
            label: float(v.point if isinstance(v, Interval) else v)
            for label, v in baselines.items()
        }
        shown = [
            (label, points[label], v)
            for label, v in baselines.items()
            if np.isfinite(points[label])
        ]
        for i, (label, value, given) in enumerate(shown):
            text = (
                given.pm()
                if isinstance(given, Interval) and np.isfinite(given.lo)
                else f"{value:.2f}"
            )
            fig.add_trace(
                go.Scatter(
                    x=span,
                    y=[value, value],
                    mode="lines",
                    name=f"{html.escape(label)} ({text})",
                    line={
                        "color": PALETTE[(i + 2) % len(PALETTE)],
                        "dash": BASELINE_DASH[i % len(BASELINE_DASH)],
                        "width": max(1.0, style.line_width - 0.5),
                    },
                    hovertemplate=f"{html.escape(label)}: {value:.3f}<extra></extra>",
                ),
                row=1,
                col=1,
            )
    test = metrics[(metrics["split"] == "test") & (metrics["layer"] == chosen_layer)]
    if chosen_layer is not None and not test.empty:
        fig.add_trace(
            go.Scatter(
                x=[chosen_layer],
                y=[float(test["r2"].iloc[0])],
                mode="markers",
                name="layer chosen on training rows",
                marker={"symbol": "star", "size": style.marker_size + 9, "color": PALETTE[0]},
                hovertemplate="chosen on training leave-one-out R²: layer %{x}, "
                "test R² %{y:.3f}<extra></extra>",
            ),
            row=1,
            col=1,
        )


def model_comparison_figure(
    runs: Sequence[tuple[str, pd.DataFrame, int]],
    metric: str = "r2",
    split: str = "test",
    style: Style | None = None,
    title: str | None = None,
    bands: Mapping[str, pd.DataFrame] | None = None,
    families: Mapping[str, str] | None = None,
    references: Mapping[str, float] | None = None,
) -> go.Figure:
    """One line per model over normalised depth (``core.common.depth.depth_of``).

    `references`: label -> a published figure, drawn as a dotted horizontal mark.

    `runs`: (label, metrics, n_model_layers); labels containing "random init" are dashed.
    `bands`: label -> ``layer``, ``lo``, ``hi`` (95% interval of the test R²), shaded
    around that run's line when the metric is test R².
    `families`: label -> model family: one colour per family, and within a family one
    marker shape per model (in the order of `runs`), so sizes of one family read together.
    """
    style = style or Style()
    fig = go.Figure()
    family_order = list(dict.fromkeys((families or {}).values()))
    symbols = ("circle", "diamond", "square", "triangle-up")
    seen: dict[str, list[str]] = {}
    titled: set[str] = set()
    for i, (label, metrics, n_layers) in enumerate(runs):
        colour_index, symbol = i, "circle"
        family = (families or {}).get(label)
        if family is not None:
            colour_index = family_order.index(family)
            base = label.replace(" (random init)", "")
            members = seen.setdefault(family, [])
            if base not in members:
                members.append(base)
            symbol = symbols[members.index(base) % len(symbols)]
        group = html.escape(family or label)
        first_of_family = family is not None and family not in titled
        if family is not None:
            titled.add(family)
        rows = metrics[metrics["split"] == split].sort_values("layer")
        if rows.empty or metric not in rows or n_layers <= 0:
            continue
        depth = depth_of(rows["layer"].to_numpy(), n_layers)
        band = (bands or {}).get(label)
        if band is not None and len(band) and metric == "r2" and split == "test":
            band = band.sort_values("layer")
            add_band(
                fig,
                band,
                PALETTE[colour_index % len(PALETTE)],
                f"{label} 95%",
                x=depth_of(band["layer"].to_numpy(), n_layers),
                legendgroup=group,
            )
        fig.add_trace(
            go.Scatter(
                x=depth,
                y=rows[metric],
                mode="lines+markers",
                name=html.escape(label),
                legendgroup=group,
                customdata=rows["layer"],
                line={
                    "color": PALETTE[colour_index % len(PALETTE)],
                    "dash": "dash" if "random init" in label else "solid",
                    "width": style.line_width,
                },
                marker={"size": style.marker_size, "symbol": symbol},
                legendgrouptitle_text=group if first_of_family else None,
                hovertemplate=(
                    f"{html.escape(label)}"
                    + (f" ({html.escape(family)})" if family else "")
                    + f"<br>layer %{{customdata}} of {n_layers}"
                    f"<br>depth %{{x:.2f}}<br>{metric} %{{y:.3f}}<extra></extra>"
                ),
            )
        )
    for label, value in (references or {}).items():
        fig.add_hline(
            y=value,
            line={"dash": "dot", "color": "#888", "width": 1},
            annotation_text=html.escape(f"{label} {value:.2f}"),
            annotation_position="right",
            annotation_font_size=max(style.font_size - 4, 9),
        )
    _layout(fig, style, title, height=int(style.height * 0.8))
    fig.update_layout(
        xaxis={"title": "normalised depth (layer / number of layers)", "range": [0, 1.02]},
        yaxis_title=f"{split} {metric.replace('_', ' ')}",
    )
    return fig


def alpha_figure(
    metrics: pd.DataFrame,
    alphas: np.ndarray | None = None,
    layers: Sequence[int] | np.ndarray | None = None,
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """The ridge penalty chosen per layer (log scale); grid-edge choices flagged in red."""
    style = style or Style()
    rows = metrics[metrics["split"] == "test"].sort_values("layer")
    if rows.empty:
        rows = metrics.drop_duplicates("layer").sort_values("layer")
    x = rows["layer"].to_numpy()
    y = rows["alpha"].to_numpy(float)
    if alphas is not None and layers is not None and len(alphas) == len(layers):
        lookup = dict(zip([int(v) for v in layers], np.asarray(alphas, float), strict=True))
        y = np.array([lookup.get(int(v), a) for v, a in zip(x, y, strict=True)])
    edge = (
        rows["alpha_at_edge"].to_numpy(bool) if "alpha_at_edge" in rows else np.zeros(len(x), bool)
    )
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="lines+markers",
            name="chosen alpha",
            line={"color": PALETTE[2], "width": style.line_width},
            marker={"size": style.marker_size + 2},
            hovertemplate="layer %{x}: alpha %{y:.3g}<extra></extra>",
        )
    )
    if edge.any():
        fig.add_trace(
            go.Scatter(
                x=x[edge],
                y=y[edge],
                mode="markers",
                name="at the grid edge (widen the grid)",
                marker={"symbol": "x", "size": style.marker_size + 8, "color": "#d62728"},
                hovertemplate=(
                    "layer %{x}: alpha %{y:.3g} is at the edge of the grid<extra></extra>"
                ),
            )
        )
    _layout(fig, style, title, height=int(style.height * 0.6))
    fig.update_layout(
        xaxis_title="layer (decoder block)", yaxis={"title": "ridge alpha", "type": "log"}
    )
    return fig


# -------------------------------------------------------------- live probe
def _off_by(errors: np.ndarray | None, pos: int, unit: str) -> str:
    return "" if errors is None else f"<br>off by {float(errors[pos]):,.0f} {unit}"


def live_map_figure(
    paths: Mapping[str, np.ndarray],
    layers: Sequence[int] | np.ndarray,
    selected_layer: int,
    scope: str,
    style: Style | None = None,
    title: str | None = None,
    truths: Mapping[str, Sequence[float]] | None = None,
    errors: Mapping[str, np.ndarray] | None = None,
    truth_labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """Where the model puts each name: a large point at the selected layer and the
    path its prediction takes across layers (small points, first layer hollow).

    `paths`: name → [n_layers, 2] predicted (lat, lon) per layer in `layers` order.
    `truths`: name → its true (lat, lon), drawn as a labelled star joined to the
    selected layer's point by a dotted line; `errors`: name → [n_layers] km from the
    truth, shown in the hover and the legend; `truth_labels`: name → a note for the
    star (e.g. "training row"). Names without a truth are drawn as before.
    """
    style = style or Style()
    truths, errors, truth_labels = truths or {}, errors or {}, truth_labels or {}
    fig = go.Figure(data=_outline_traces(scope))
    layer_list = [int(v) for v in layers]
    pos = layer_list.index(selected_layer) if selected_layer in layer_list else len(layer_list) - 1
    for i, (name, path) in enumerate(paths.items()):
        path = np.asarray(path, dtype=np.float64)
        colour = PALETTE[i % len(PALETTE)]
        safe = html.escape(name, quote=False)
        err = errors.get(name)
        if err is not None:
            err = np.asarray(err, dtype=np.float64)
            custom: Any = np.column_stack([np.asarray(layer_list, dtype=np.float64), err])
            path_hover = (
                "<b>%{text}</b><br>layer %{customdata[0]}<br>%{lat:.2f}°, %{lon:.2f}°"
                "<br>off by %{customdata[1]:,.0f} km<extra></extra>"
            )
        else:
            custom = layer_list
            path_hover = (
                "<b>%{text}</b><br>layer %{customdata}<br>%{lat:.2f}°, %{lon:.2f}°<extra></extra>"
            )
        fig.add_trace(
            go.Scattergeo(
                lat=path[:, 0],
                lon=path[:, 1],
                mode="lines+markers",
                line={"color": colour, "width": style.line_width * 0.7},
                marker={
                    "size": style.marker_size + 1,
                    "color": colour,
                    "symbol": ["circle-open"] + ["circle"] * (len(path) - 1),
                },
                name=f"{safe}: path over layers",
                legendgroup=safe,
                customdata=custom,
                text=[safe] * len(path),
                hovertemplate=path_hover,
            )
        )
        off = _off_by(err, pos, "km")
        fig.add_trace(
            go.Scattergeo(
                lat=[path[pos, 0]],
                lon=[path[pos, 1]],
                mode="markers+text",
                marker={
                    "size": style.marker_size * 4,
                    "color": colour,
                    "line": {"color": "white", "width": 1.5},
                },
                text=[safe],
                textposition="top center",
                textfont={"size": style.font_size + 1, "color": colour},
                name=f"{safe}: layer {layer_list[pos]}"
                + (f", off by {float(err[pos]):,.0f} km" if err is not None else ""),
                legendgroup=safe,
                hovertemplate=(
                    f"<b>{safe}</b><br>layer {layer_list[pos]}<br>"
                    "%{lat:.2f}°, %{lon:.2f}°" + off + "<extra></extra>"
                ),
            )
        )
        truth = truths.get(name)
        if truth is None:
            continue
        note = html.escape(truth_labels.get(name, ""), quote=False)
        fig.add_trace(
            go.Scattergeo(
                lat=[path[pos, 0], float(truth[0])],
                lon=[path[pos, 1], float(truth[1])],
                mode="lines",
                line={"color": colour, "width": style.line_width * 0.6, "dash": "dot"},
                name=f"{safe}: error at layer {layer_list[pos]}",
                legendgroup=safe,
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scattergeo(
                lat=[float(truth[0])],
                lon=[float(truth[1])],
                mode="markers+text",
                marker={
                    "size": style.marker_size * 4,
                    "color": colour,
                    "symbol": "star",
                    "line": {"color": "#222222", "width": 1.5},
                },
                text=[f"{safe} (true)"],
                textposition="bottom center",
                textfont={"size": style.font_size, "color": "#222222"},
                name=f"{safe}: true position" + (f" ({note})" if note else ""),
                legendgroup=safe,
                hovertemplate=(
                    f"<b>{safe}</b>: true position<br>%{{lat:.2f}}°, %{{lon:.2f}}°"
                    + (f"<br>{note}" if note else "")
                    + (off and f"{off} at layer {layer_list[pos]}")
                    + "<extra></extra>"
                ),
            )
        )
    fig.update_geos(**get_scope(scope).geo)
    _layout(fig, style, title)
    return fig


def live_time_figure(
    paths: Mapping[str, np.ndarray],
    layers: Sequence[int] | np.ndarray,
    selected_layer: int,
    style: Style | None = None,
    title: str | None = None,
    truths: Mapping[str, Sequence[float]] | None = None,
    errors: Mapping[str, np.ndarray] | None = None,
    truth_labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """Predicted year against layer, one line per name, the selected layer marked.

    `truths`: name → (true year,), drawn as a dotted, labelled level line in the name's
    colour; `errors`: name → [n_layers] years from the truth, shown in the hover;
    `truth_labels`: name → a note for the true year (e.g. "training row").
    """
    style = style or Style()
    truths, errors, truth_labels = truths or {}, errors or {}, truth_labels or {}
    fig = go.Figure()
    layer_list = [int(v) for v in layers]
    for i, (name, path) in enumerate(paths.items()):
        years = np.asarray(path, dtype=np.float64).reshape(len(layer_list), -1)[:, 0]
        safe = html.escape(name, quote=False)
        colour = PALETTE[i % len(PALETTE)]
        err = errors.get(name)
        fig.add_trace(
            go.Scatter(
                x=layer_list,
                y=years,
                mode="lines+markers",
                name=safe,
                line={"color": colour, "width": style.line_width},
                marker={"size": style.marker_size + 2},
                text=[safe] * len(layer_list),
                customdata=None if err is None else np.asarray(err, dtype=np.float64),
                hovertemplate="<b>%{text}</b><br>layer %{x}: %{y:.0f}"
                + ("" if err is None else "<br>off by %{customdata:,.0f} years")
                + "<extra></extra>",
            )
        )
        truth = truths.get(name)
        if truth is None:
            continue
        year = float(truth[0])
        note = html.escape(truth_labels.get(name, ""), quote=False)
        fig.add_trace(
            go.Scatter(
                x=[layer_list[0], layer_list[-1]],
                y=[year, year],
                mode="lines+markers+text",
                line={"color": colour, "width": style.line_width * 0.8, "dash": "dot"},
                marker={"symbol": "star", "size": style.marker_size + 6, "color": colour},
                text=["", f"{safe}: true {year:.0f}"],
                textposition="top left",
                textfont={"color": colour},
                name=f"{safe}: true year" + (f" ({note})" if note else ""),
                hovertemplate=f"<b>{safe}</b>: true year {year:.0f}"
                + (f"<br>{note}" if note else "")
                + "<extra></extra>",
            )
        )
    _mark_layer(fig, selected_layer)
    _layout(fig, style, title, height=int(style.height * 0.8))
    fig.update_layout(xaxis_title="layer (decoder block)", yaxis_title="predicted year")
    return fig


# ------------------------------------------------------------------ export
def plotly_config(
    topojson_url: str, filename: str = "spacetime-lens", fmt: str = "png"
) -> dict[str, Any]:
    """Config for the browser: local base maps, no logo, modebar download as `fmt`."""
    return {
        "topojsonURL": topojson_url,
        "displaylogo": False,
        "showLink": False,
        "toImageButtonOptions": {"format": fmt, "filename": filename, "scale": 2},
    }


def figure_image(
    fig: go.Figure,
    fmt: str = "png",
    width: int | None = None,
    height: int | None = None,
    scale: float = 2.0,
) -> bytes:
    """Render a figure to PNG or SVG with kaleido, fully offline.

    Base maps come from ``static/topojson`` through a ``file://`` URI and MathJax
    is off, so the headless browser that kaleido drives fetches nothing remote.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"unsupported format {fmt!r}; use png or svg")
    import kaleido

    layout = fig.layout
    opts = {
        "format": fmt,
        "width": int(width or layout.width or 1100),
        "height": int(height or layout.height or 600),
        "scale": scale,
    }
    log.info("exporting a figure as %s (%dx%d)", fmt, opts["width"], opts["height"])
    data: bytes = kaleido.calc_fig_sync(
        fig.to_dict(), opts=opts, topojson=topojson_file_uri(), kopts={"mathjax": False}
    )
    return data
