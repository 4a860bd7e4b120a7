"""No dead ends (not a page: the leading underscore keeps it out of page discovery): a
page opened on a selection it cannot draw switches to one it can; a selection picked on
the page gets the switch as a button (see ``core.ui.navigation``)."""

from __future__ import annotations

import streamlit as st

from core.results import catalog as cat
from core.ui import navigation as nav
from pages._state import Context, request_switch


def offer_switch(ctx: Context, kind: str) -> None:
    """For a page drawing `kind` whose selection is of the other kind."""
    assert ctx.loaded is not None
    have = ctx.loaded.results.kind
    target = nav.switch_to_kind(
        ctx.catalog, ctx.state.model, ctx.state.prompt, ctx.state.layer, kind
    )
    if target is None:
        st.info(
            f"{ctx.state.dataset} is a {have} dataset and this cache has no {kind} results: "
            f"open the {nav.PAGE_OF_KIND.get(have, 'other')} page, or build a {kind} dataset's."
        )
        return
    note = nav.switch_note(target, ctx.state.dataset, have)
    if ctx.opened:
        request_switch(target.fields(), note)
        st.rerun()
    st.info(
        f"{ctx.state.dataset} is a {have} dataset, which the "
        f"{nav.PAGE_OF_KIND.get(have, 'other')} page draws; this page draws {kind} datasets."
    )
    model = "" if target.model == ctx.state.model else f" ({cat.model_label(target.model)})"
    st.button(
        f"Show {target.dataset}{model}",
        on_click=request_switch,
        args=(target.fields(), note),
        key=f"switch_to_{kind}",
        type="primary",
    )
