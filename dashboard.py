"""Spacetime Lens dashboard: ``streamlit run dashboard.py``.

Page setup, the shared selectors (model, dataset, prompt, split, layer,
presentation) whose values live in the URL query string, and navigation over
the pages in ``pages/``. Results come from the cache root (``cache/`` or
``$SPACETIME_CACHE``).
"""

from __future__ import annotations

import logging

import streamlit as st

from core.results import catalog as cat
from pages._loaders import freeze_startup_objects
from pages._state import mark_entry_ran, pending_page, sync_state, widget_key
from pages._widgets import show_notes

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

# url_path = file stem: on a fresh server the first request is routed by file name
# (see pages/_state.context), so the names must agree or the browser shows "Page not found".
PAGES = {
    "maps.py": st.Page("pages/maps.py", title="Maps", url_path="maps", default=True),
    "timelines.py": st.Page("pages/timelines.py", title="Timelines", url_path="timelines"),
    "layers.py": st.Page("pages/layers.py", title="Layers", url_path="layers"),
    "compare.py": st.Page("pages/compare.py", title="Compare", url_path="compare"),
    "live_probe.py": st.Page("pages/live_probe.py", title="Live probe", url_path="live_probe"),
    "research.py": st.Page("pages/research.py", title="Research", url_path="research"),
}

PRESENTATION_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stHeader"], [data-testid="stToolbar"] { display: none !important; }
.block-container { padding-top: 1.2rem !important; max-width: 100% !important; }
[data-testid="stMetricValue"] { font-size: 2.6rem !important; }
[data-testid="stMetricLabel"] p { font-size: 1.3rem !important; }
</style>
"""

# No Material icons on pages: the current page's icon becomes the favicon, and a
# Material one is fetched from fonts.gstatic.com; the app must request nothing
# beyond itself (an emoji favicon is an inline data: URI).
st.set_page_config(page_title="Spacetime Lens", page_icon="🧭", layout="wide")

ctx = sync_state()
state = ctx.state
page = st.navigation(list(PAGES.values()), position="hidden" if state.presentation else "sidebar")
target = pending_page()
if target in PAGES and PAGES[target] is not page:
    # back to the page a first request asked for (see pages/_state.context)
    st.switch_page(PAGES[target])

with st.sidebar:
    st.markdown("### Spacetime Lens")
    st.selectbox(
        "Model", ctx.options.models(), key=widget_key("model"), format_func=cat.model_label
    )
    st.selectbox("Dataset", ctx.options.datasets(state.model), key=widget_key("dataset"))
    st.selectbox(
        "Prompt", ctx.options.prompts(state.model, state.dataset), key=widget_key("prompt")
    )
    st.segmented_control(
        "Split",
        ["test", "train", "all"],
        key=widget_key("split"),
        help="Which entities the maps and timelines show.",
    )
    st.toggle(
        "Presentation mode",
        key=widget_key("pres"),
        help="Large fonts, controls hidden; the URL keeps it.",
    )
    if ctx.entry is None:
        st.caption("No results for this selection yet.")


def _exit_presentation() -> None:
    st.session_state[widget_key("pres")] = False


if state.presentation:
    st.markdown(PRESENTATION_CSS, unsafe_allow_html=True)
    st.button("Exit presentation", on_click=_exit_presentation, key="exit_pres", type="tertiary")

show_notes(ctx.notes)

mark_entry_ran()
freeze_startup_objects()  # before page.run(): a page may end the run with st.stop()
page.run()
