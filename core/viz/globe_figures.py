"""The globe target beside lat/lon: error and R² by layer on the same entities."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz.figures import PALETTE, Style, _layout


def globe_comparison_figure(
    metrics: Mapping[str, pd.DataFrame],
    split: str = "test",
    style: Style | None = None,
    title: str | None = None,
) -> go.Figure:
    """`metrics`: label ("lat/lon", "globe") -> a results' metrics table; left the median
    great-circle error by layer, right the mean R² of lat and lon."""
    style = style or Style()
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("median error (km)", "R² of lat and lon (mean)")
    )
    for i, (label, table) in enumerate(metrics.items()):
        rows = table[table["split"] == split].sort_values("layer")
        colour = PALETTE[i % len(PALETTE)]
        for col, column in ((1, "km_median"), (2, "r2")):
            fig.add_trace(
                go.Scatter(
                    x=rows["layer"],
                    y=rows[column],
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    line={"color": colour, "width": style.line_width},
                    hovertemplate=f"{label}, layer %{{x}}: %{{y:.3g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    _layout(fig, style, title, height=int(style.height * 0.7))
    fig.update_xaxes(title_text="layer (decoder block)")
    return fig
