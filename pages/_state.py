"""The session's view state, shared by dashboard.py and the pages (not a page: the
leading underscore keeps it out of page discovery).

The URL query string is read once when a session starts; after that the widgets drive
the state, every value is checked against what exists (``core.ui.view_state.resolve``)
and the URL is rewritten, so a copied link always reopens the same view.

Every widget that syncs with a URL parameter takes its key from :func:`widget_key`
of that parameter's name (``core.ui.view_state.QUERY_KEYS``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from core.results import catalog as cat
from core.results.probe_results import ProbeResults
from core.ui import view_state as vs
from core.viz import figures as figs
from core.viz import outlines as geo
from pages._loaders import Loaded, catalog_and_defaults, known_datasets, try_load

if TYPE_CHECKING:
    import pandas as pd

_URL_KEYS = frozenset(vs.QUERY_KEYS.values())


def widget_key(url_key: str) -> str:
    """The session-state key of the widget that syncs with URL parameter `url_key`."""
    if url_key not in _URL_KEYS:
        raise KeyError(f"no URL parameter {url_key!r} (see core.ui.view_state.QUERY_KEYS)")
    return f"w_{url_key}"


# view-state field -> widget key
WIDGETS: dict[str, str] = {fld: widget_key(key) for fld, key in vs.QUERY_KEYS.items()}
CTX_KEY = "_spacetime_ctx"
RAW_KEY = "_spacetime_view"
ENTRY_RAN = "_spacetime_entry_ran"
PENDING_PAGE = "_spacetime_pending_page"
PENDING_QUERY = "_spacetime_pending_query"
PENDING_SWITCH = "_spacetime_pending_switch"  # (fields, note) set by request_switch
LAST_PAGE = "_spacetime_last_page"
LINK_DATASET = "_spacetime_link_dataset"  # the session's first URL named its dataset


# ------------------------------------------------------------------ options
class DashboardOptions:
    """``core.ui.view_state.Options`` over the catalog and the dataset registry."""

    def __init__(self, catalog: cat.Catalog, registered: dict[str, str]):
        self.catalog = catalog
        self.registered = registered

    def models(self) -> list[str]:
        return list(dict.fromkeys([*self.catalog.models(), *cat.known_models()]))

    def datasets(self, model: str) -> list[str]:
        with_results = self.catalog.datasets(model)
        others = sorted(set(self.catalog.datasets()) | set(self.registered))
        return list(dict.fromkeys([*with_results, *others]))

    def prompts(self, model: str, dataset: str) -> list[str]:
        own = self.catalog.prompts(model, dataset)
        other = self.catalog.prompts(None, dataset)
        return list(dict.fromkeys([*own, "empty", *other]))

    def _loaded(self, model: str, dataset: str, prompt: str) -> Loaded | None:
        return try_load(self.catalog.find(model, dataset, prompt))[0]

    def layers(self, model: str, dataset: str, prompt: str) -> list[int]:
        entry = self.catalog.find(model, dataset, prompt)
        return list(entry.layers) if entry else []

    def metrics(self, model: str, dataset: str, prompt: str) -> pd.DataFrame | None:
        loaded = self._loaded(model, dataset, prompt)
        return loaded.results.metrics if loaded else None

    def groups(self, model: str, dataset: str, prompt: str) -> list[str]:
        loaded = self._loaded(model, dataset, prompt)
        return loaded.groups if loaded else []

    def compare_models(self, dataset: str, prompt: str) -> list[str]:
        return [e.model_id for e in self.catalog.compare(dataset, prompt)]


# ---------------------------------------------------------------- the state
@dataclass
class Context:
    """What every page needs for one run."""

    state: vs.ViewState
    notes: list[str]
    catalog: cat.Catalog
    entry: cat.ResultEntry | None
    loaded: Loaded | None
    options: DashboardOptions
    style: figs.Style
    topojson_url: str
    load_error: str | None = None
    page_notes: list[str] = field(default_factory=list)
    opened: bool = False  # this run opened the page (another page, or none, ran before)

    @property
    def results(self) -> ProbeResults | None:
        return self.loaded.results if self.loaded else None

    @property
    def color(self) -> str | None:
        if not self.loaded:
            return None
        return self.state.color or (self.loaded.groups[0] if self.loaded.groups else None)


def _widget_to_field(fld: str, value: Any) -> str:
    if fld in ("segments", "presentation"):
        return "1" if value else "0"
    if fld == "layer":
        return "" if value is None else str(int(value))
    if fld == "compare":
        return ",".join(str(v) for v in (value or []))
    return "" if value is None else str(value)


def _field_to_widget(fld: str, state: vs.ViewState, loaded: Loaded | None) -> Any:
    if fld == "color":
        if state.color:
            return state.color
        return loaded.groups[0] if loaded and loaded.groups else None
    if fld == "compare":
        return list(state.compare)
    if fld == "names":
        return "\n".join(state.names)
    return getattr(state, fld)


def sync_state() -> Context:
    """Read URL (first run) or widgets, resolve, push values to widgets and the URL."""
    ss = st.session_state
    if RAW_KEY not in ss and PENDING_QUERY in ss:
        raw = dict(ss.pop(PENDING_QUERY))
        ss[LINK_DATASET] = bool(raw.get("dataset"))
    elif RAW_KEY not in ss:
        raw = vs.read_query(st.query_params.to_dict())
        ss[LINK_DATASET] = bool(raw.get("dataset"))
    else:
        raw = dict(ss[RAW_KEY])
        for fld, key in WIDGETS.items():
            if key in ss:
                raw[fld] = _widget_to_field(fld, ss[key])
    switch_fields, switch_note = ss.pop(PENDING_SWITCH, ({}, None))
    raw.update(switch_fields)  # a page's switch (pages/_switch.py) wins over the widgets
    catalog, defaults = catalog_and_defaults()
    options = DashboardOptions(catalog, known_datasets())
    # The default colour column is stored as "" so links stay short.
    if raw.get("color"):
        groups = options.groups(raw.get("model", ""), raw.get("dataset", ""), raw.get("prompt", ""))
        if groups and raw["color"] == groups[0]:
            raw["color"] = ""
    resolution = vs.resolve(raw, options, defaults)
    if switch_note:
        resolution.notes.append(switch_note)
    state = resolution.state
    entry = catalog.find(state.model, state.dataset, state.prompt)
    loaded, load_error = try_load(entry)
    # Set every widget's value each run, even when unchanged: a widget drawn on
    # another page is a new widget and takes its value only from this assignment.
    for fld, key in WIDGETS.items():
        ss[key] = _field_to_widget(fld, state, loaded)
    ss[RAW_KEY] = vs.to_fields(state)
    query = vs.to_query(state)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)
    base = str(st.get_option("server.baseUrlPath") or "")
    ctx = Context(
        state=state,
        notes=resolution.notes,
        catalog=catalog,
        entry=entry,
        loaded=loaded,
        options=options,
        style=figs.Style(presentation=state.presentation),
        topojson_url=geo.topojson_url(base),
        load_error=load_error,
    )
    ss[CTX_KEY] = ctx
    return ctx


def request_switch(fields: dict[str, str], note: str | None = None) -> None:
    """Change the selection on the next run (before any widget is drawn): the way a
    page, or a button's callback, switches the shared controls."""
    st.session_state[PENDING_SWITCH] = (dict(fields), note)


def mark_entry_ran() -> None:
    """Called by dashboard.py just before it runs the page."""
    st.session_state[ENTRY_RAN] = True


def pending_page() -> str | None:
    """The page file a redirect through dashboard.py should end on (see :func:`context`)."""
    return st.session_state.pop(PENDING_PAGE, None)


def context(page_file: str) -> Context:
    """The context dashboard.py computed for this run.

    A fresh ``streamlit run`` treats ``pages/`` as a v1 multipage folder until the
    first ``st.navigation`` call, so the very first request of a server process for
    a page URL (a shared link, say) runs that page without dashboard.py. The page
    then stashes its query and name and goes through dashboard.py, which returns
    to it with the shared controls in place.
    """
    ss = st.session_state
    if not ss.pop(ENTRY_RAN, False):
        ss[PENDING_PAGE] = Path(page_file).name
        if RAW_KEY not in ss:
            ss[PENDING_QUERY] = vs.read_query(st.query_params.to_dict())
        st.switch_page("dashboard.py")
    ctx = ss[CTX_KEY]
    assert isinstance(ctx, Context)
    name = Path(page_file).name
    last = ss.get(LAST_PAGE)
    # opened by navigation, or by a first link that did not name its dataset
    ctx.opened = last != name and not (last is None and ss.get(LINK_DATASET))
    ss[LAST_PAGE] = name
    return ctx
