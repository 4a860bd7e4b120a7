"""The scale view: two sizes of one family on identical rows, and their difference."""

from __future__ import annotations

import streamlit as st

from core.probe.bootstrap import Interval
from core.results import catalog as cat
from core.results import scale
from core.viz import figures as figs
from pages._loaders import layer_band, load_control, try_load
from pages._state import Context, widget_key
from pages._widgets import show_figure


@st.cache_resource(show_spinner=False, max_entries=16)
def _gain(stamps: tuple[str, ...], _pair: scale.ScalePair) -> scale.ScaleGain:
    return scale.scale_gain(_pair)


def _fmt(value: Interval | None) -> str:
    return "–" if value is None else value.fmt(signed=True)


def show_scale_pair(ctx: Context, small: cat.ResultEntry, large: cat.ResultEntry) -> None:
    """Curves of both sizes over depth with their 95% bands, the gain at each one's
    train-chosen layer beside the random-init controls' gain, and a way to Compare."""
    loaded = [try_load(e)[0] for e in (small, large)]
    if loaded[0] is None or loaded[1] is None:
        return
    # each size's random-init control on the pair's own rows
    controls = [load_control(ctx.catalog, item)[0] for item in (loaded[0], loaded[1])]
    small_control, large_control = (c.results if c is not None else None for c in controls)
    pair = scale.ScalePair(loaded[0].results, loaded[1].results, small_control, large_control)
    stamps = tuple(e.stamp for e in (small, large)) + tuple(
        c.entry.stamp for c in controls if c is not None
    )
    gain = _gain(stamps, pair)
    st.subheader(f"Scale within a family: {scale.family_label(large.model)}")
    runs, bands = [], {}
    for entry, item in zip((small, large), loaded, strict=True):
        assert item is not None
        label = cat.model_label(entry.model_id)
        runs.append((label, item.results.metrics, entry.n_model_layers))
        bands[label] = layer_band(item)
    fig = figs.model_comparison_figure(
        runs,
        style=ctx.style,
        bands=bands,
        title=f"{small.dataset}: {small.model} and {large.model} on the same "
        f"{small.n_entities:,} entities",
    )
    show_figure(ctx, fig, "scale")
    left, middle, right = st.columns(3)
    left.metric(f"{large.model} − {small.model}, test R²", _fmt(gain.gain))
    middle.metric("the same, random-init controls", _fmt(gain.control_gain))
    right.metric("gain beyond random init", _fmt(gain.beyond_control))
    if not ctx.state.presentation:
        st.caption(
            f"Verdict: **{gain.verdict}**. Each model at the layer its own training rows "
            f"choose; differences paired over the same {gain.n_test:,} test entities (95% "
            "bootstrap intervals in brackets). The claim holds when the gain and the gain "
            "beyond random init both lie above 0, does not hold when either lies below 0. "
            + (scale.CODER_NOTE + "." if scale.is_coder(large.model) else "")
        )
        if st.button("Open this pair on Compare", key=f"scale_{small.model}_{large.model}"):
            st.session_state[widget_key("left")] = small.model_id
            st.session_state[widget_key("right")] = large.model_id
            st.switch_page("pages/compare.py")
