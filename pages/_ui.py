"""Streamlit glue shared by dashboard.py and the pages (not a page: the leading
underscore keeps it out of page discovery).

It owns the session's view state: the URL query string is read once when a
session starts; after that the widgets drive the state, every value is checked
against what exists (``core.ui.view_state.resolve``) and the URL is rewritten, so a
copied link always reopens the same view.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.analysis.run import AnalysisResults, analysis_dir
from core.common.cache import (
    CacheError,
    default_cache_root,
    folder_stamp,
    read_manifest,
    verify_files,
)
from core.results import catalog as cat
from core.results.probe_results import ProbeResults
from core.ui import view_state as vs
from core.viz import figures as figs
from core.viz import outlines as geo

log = logging.getLogger(__name__)

# view-state field -> widget key
SHARED_WIDGETS = {
    "model": "w_model",
    "dataset": "w_dataset",
    "prompt": "w_prompt",
    "layer": "w_layer",
    "split": "w_split",
    "presentation": "w_pres",
}
PAGE_WIDGETS = {
    "color": "w_color",
    "segments": "w_seg",
    "residuals_by": "w_by",
    "compare": "w_cmp",
    "compare_metric": "w_metric",
    "names": "w_names",
    "points": "w_pts",
}
WIDGETS = {**SHARED_WIDGETS, **PAGE_WIDGETS}
CTX_KEY = "_spacetime_ctx"
RAW_KEY = "_spacetime_view"
ENTRY_RAN = "_spacetime_entry_ran"
PENDING_PAGE = "_spacetime_pending_page"
PENDING_QUERY = "_spacetime_pending_query"


# ------------------------------------------------------------ cached loads
@st.cache_resource(show_spinner=False, max_entries=4)
def _catalog(root: str, signature: tuple[tuple[str, str], ...]) -> cat.Catalog:
    return cat.discover(Path(root))


def cache_root() -> Path:
    return default_cache_root()


@st.cache_resource(show_spinner=False, max_entries=4)
def _defaults(root: str, signature: tuple[tuple[str, str], ...]) -> vs.Defaults:
    # keyed like the catalog: reading every world result's metrics once per rerun was
    # a tenth of the server's time under 8 busy sessions (docs/reliability.md)
    return preferred_defaults(_catalog(root, signature))


def catalog_and_defaults() -> tuple[cat.Catalog, vs.Defaults]:
    """The results under the cache root and the view they open on, both cached until a
    results folder is added, removed or rewritten (its manifest's stamp changes)."""
    root = str(cache_root())
    signature = cat.signature(Path(root))
    return _catalog(root, signature), _defaults(root, signature)


@st.cache_data(show_spinner=False)
def known_datasets() -> dict[str, str]:
    return cat.known_datasets()


@dataclass
class Loaded:
    """A results folder read once per server process, with what the views derive from it."""

    entry: cat.ResultEntry
    results: ProbeResults
    groups: list[str]  # colour columns, the default first
    best_layer: int
    scope: str | None
    safe_names: np.ndarray  # HTML-escaped names, computed once


@st.cache_resource(show_spinner=False, max_entries=64)
def _verify(folder: str, stamp: str) -> str | None:
    """Checksums of a results folder against its manifest: None if they match, else why.

    Cached per (folder, every file's size and mtime), so each folder is hashed once
    per server process and again only after one of its files changes.
    """
    try:
        manifest = read_manifest(Path(folder))
        verify_files(Path(folder), manifest, str(manifest.get("command", "")))
    except CacheError as exc:
        return str(exc)
    return None


@st.cache_resource(show_spinner="Loading results…", max_entries=12)
def _load(folder: str, stamp: str, _entry: cat.ResultEntry) -> Loaded:
    results = ProbeResults.load(Path(folder))
    preferred = (results.manifest.get("dataset_info") or {}).get("group_column")
    groups = figs.group_columns(results.entities)
    default = figs.default_group_column(results.entities, preferred)
    if default:
        groups = [default] + [g for g in groups if g != default]
    try:
        best = results.best_layer("test", "r2")
    except (KeyError, ValueError):
        best = int(results.layers[-1])
    scope = None
    if results.kind == "space":
        ent = results.entities
        scope = geo.scope_for(_entry.dataset, ent["lat"].to_numpy(), ent["lon"].to_numpy())
    return Loaded(
        entry=_entry,
        results=results,
        groups=groups,
        best_layer=best,
        scope=scope,
        safe_names=figs.escape_names(results.entities["name"]),
    )


def load(entry: cat.ResultEntry) -> Loaded:
    """The results of `entry`, verified against their manifest's checksums on first use."""
    stamp = folder_stamp(entry.folder)
    problem = _verify(str(entry.folder), stamp)
    if problem:
        raise CacheError(problem)
    return _load(str(entry.folder), stamp, entry)


def try_load(entry: cat.ResultEntry | None) -> tuple[Loaded | None, str | None]:
    """(results, None), or (None, why) for a folder that cannot be read."""
    if entry is None:
        return None, None
    try:
        return load(entry), None
    except (CacheError, OSError, ValueError, KeyError) as exc:
        log.warning("cannot read %s: %s", entry.folder, exc)
        return None, str(exc)


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

    def default_layer(self, model: str, dataset: str, prompt: str) -> int | None:
        loaded = self._loaded(model, dataset, prompt)
        return loaded.best_layer if loaded else None

    def groups(self, model: str, dataset: str, prompt: str) -> list[str]:
        loaded = self._loaded(model, dataset, prompt)
        return loaded.groups if loaded else []

    def compare_models(self, dataset: str, prompt: str) -> list[str]:
        return [e.model_id for e in self.catalog.compare(dataset, prompt)]


def preferred_defaults(catalog: cat.Catalog) -> vs.Defaults:
    models = catalog.models()
    # Open on the model that places the world best (the live probe then starts with it).
    model = cat.best_model_on(catalog, "world_places") or (
        cat.DEFAULT_MODEL if (not models or cat.DEFAULT_MODEL in models) else models[0]
    )
    datasets = catalog.datasets(model)
    dataset = "world_places" if (not datasets or "world_places" in datasets) else datasets[0]
    return vs.Defaults(model=model, dataset=dataset, prompt="empty")


@st.cache_resource(show_spinner="Loading analyses…", max_entries=8)
def _load_analysis(folder: str, stamp: str) -> AnalysisResults:
    return AnalysisResults.load(Path(folder), verify=True)


def load_analysis(entry: cat.ResultEntry) -> tuple[AnalysisResults | None, str | None]:
    """The ``analysis`` artifact of a results entry (None if absent), or why it is unreadable."""
    folder = analysis_dir(entry.folder.parent.parent, entry.key)
    if not (folder / "manifest.json").is_file():
        return None, None
    try:
        analysis = _load_analysis(str(folder), folder_stamp(folder))
    except CacheError as exc:
        return None, str(exc)
    if int(analysis.manifest.get("n_entities", -1)) != entry.n_entities:
        return (
            None,
            f"{folder}: analysis of {analysis.manifest.get('n_entities')} entities, results have {entry.n_entities}",
        )
    return analysis, None


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
    elif RAW_KEY not in ss:
        raw = vs.read_query(st.query_params.to_dict())
    else:
        raw = dict(ss[RAW_KEY])
        for fld, key in WIDGETS.items():
            if key in ss:
                raw[fld] = _widget_to_field(fld, ss[key])
    catalog, defaults = catalog_and_defaults()
    options = DashboardOptions(catalog, known_datasets())
    # The default colour column is stored as "" so links stay short.
    if raw.get("color"):
        groups = options.groups(raw.get("model", ""), raw.get("dataset", ""), raw.get("prompt", ""))
        if groups and raw["color"] == groups[0]:
            raw["color"] = ""
    resolution = vs.resolve(raw, options, defaults)
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
    return ctx


# ---------------------------------------------------------------- rendering
def show_notes(notes: Sequence[str]) -> None:
    for note in notes:
        st.info(note, icon="ℹ️")


def empty_state(ctx: Context, what: str = "results") -> None:
    """Say which command builds the missing results."""
    s = ctx.state
    if ctx.load_error and ctx.entry is not None:
        st.error(f"The results in {ctx.entry.folder} cannot be read: {ctx.load_error}", icon="⚠️")
        st.caption("Rebuild them (the build replaces a broken folder) with:")
        st.code(
            ctx.entry.command or cat.build_command(s.model, s.dataset, s.prompt), language="bash"
        )
        return
    st.warning(
        f"No {what} for model **{cat.model_label(s.model)}** on dataset **{s.dataset}** "
        f"with prompt **{s.prompt}** in the cache ({ctx.catalog.root}). Build them with:",
        icon="🛠️",
    )
    st.code(cat.build_command(s.model, s.dataset, s.prompt), language="bash")
    if not len(ctx.catalog):
        st.caption(
            "The cache has no results at all. Set SPACETIME_CACHE to another cache root, "
            "or build the quick demo: "
            + cat.build_command(cat.DEFAULT_MODEL, "world_capitals", "empty")
        )


def require(ctx: Context, kind: str) -> Loaded | None:
    """The loaded results if they exist and are of `kind`; otherwise explain and return None."""
    if ctx.loaded is None:
        empty_state(ctx)
        return None
    if ctx.loaded.results.kind != kind:
        other = "Maps" if ctx.loaded.results.kind == "space" else "Timelines"
        st.info(
            f"{ctx.state.dataset} is a {ctx.loaded.results.kind} dataset: open the {other} page, "
            f"or choose a {kind} dataset in the sidebar."
        )
        return None
    return ctx.loaded


def selection_caption(ctx: Context) -> None:
    if ctx.state.presentation or ctx.entry is None:
        return
    e = ctx.entry
    synthetic = (
        " · synthetic demo data"
        if ctx.loaded and ctx.loaded.results.manifest.get("synthetic")
        else ""
    )
    st.caption(
        f"{cat.model_label(e.model_id)} · {e.dataset} · prompt {e.prompt} · {e.n_entities:,} entities · "
        f"{len(e.layers)} of {e.n_model_layers} layers · results `{e.key}`{synthetic}"
    )


def layer_slider(ctx: Context) -> None:
    """The shared layer selector (its value lives in the view state and the URL)."""
    if ctx.entry is None or ctx.state.layer is None:
        return
    st.select_slider(
        "Layer",
        options=list(ctx.entry.layers),
        key=SHARED_WIDGETS["layer"],
        help="Decoder block (0-based) whose probe is shown.",
    )


def layer_frame(ctx: Context) -> pd.DataFrame:
    """Entities of the chosen split with predictions at the chosen layer, capped to the point budget."""
    assert ctx.loaded is not None and ctx.state.layer is not None
    res = ctx.loaded.results
    pos = res.layer_position(ctx.state.layer)
    mask = figs.split_mask(res.entities, ctx.state.split)
    rows = np.flatnonzero(mask)
    keep = figs.sample_rows(len(rows), ctx.state.max_points)
    rows = rows[keep]
    frame = figs.prediction_frame(
        res.entities.iloc[rows], np.asarray(res.predictions[pos])[rows], res.target_names
    )
    frame["name_html"] = ctx.loaded.safe_names[rows]
    if len(keep) < int(mask.sum()):
        ctx.page_notes.append(
            f"Showing a fixed sample of {len(keep):,} of {int(mask.sum()):,} points "
            "(metrics use all of them); raise the point cap to see more."
        )
    return frame


def headline_metrics(ctx: Context) -> None:
    assert ctx.loaded is not None and ctx.state.layer is not None
    res = ctx.loaded.results
    h = figs.headline(res.metrics, ctx.state.layer, res.kind)

    def fmt(v: float | None, pattern: str) -> str:
        return "–" if v is None else pattern.format(v)

    cols = st.columns(4)
    cols[0].metric("Layer", f"{ctx.state.layer} / {res.n_model_layers - 1}")
    cols[1].metric(
        "Test R²",
        fmt(h.get("test_r2"), "{:.3f}"),
        help=f"train R² {fmt(h.get('train_r2'), '{:.3f}')}",
    )
    if res.kind == "space":
        cols[2].metric("Median error (test)", fmt(h.get("test_km_median"), "{:,.0f} km"))
    else:
        cols[2].metric("Mean abs. error (test)", fmt(h.get("test_mae_year"), "{:,.1f} years"))
    cols[3].metric(
        "Proximity error (test)",
        fmt(h.get("test_proximity_error"), "{:.3f}"),
        help="Fraction of entities whose prediction lies closer to an entity's true position than that entity's own prediction (lower is better).",
    )


def _file_stem(ctx: Context, name: str) -> str:
    s = ctx.state
    parts = [name, s.model.replace("@", "-"), s.dataset, s.prompt]
    if s.layer is not None and name in ("map", "timeline", "residuals", "live-map"):
        parts.append(f"layer{s.layer}")
    return "_".join(p for p in parts if p)


def show_figure(ctx: Context, fig: go.Figure, name: str) -> None:
    """The chart, with its modebar download and server-side PNG/SVG exports."""
    stem = _file_stem(ctx, name)
    st.plotly_chart(
        fig,
        theme=None,
        config=figs.plotly_config(ctx.topojson_url, filename=stem),
        key=f"chart_{name}",
    )
    if ctx.state.presentation:
        return
    left, right, _ = st.columns([1, 1, 6])
    left.download_button(
        "PNG",
        data=lambda: figs.figure_image(fig, "png"),
        file_name=f"{stem}.png",
        mime="image/png",
        key=f"png_{name}",
        on_click="ignore",
        icon=":material/download:",
    )
    right.download_button(
        "SVG",
        data=lambda: figs.figure_image(fig, "svg", scale=1),
        file_name=f"{stem}.svg",
        mime="image/svg+xml",
        key=f"svg_{name}",
        on_click="ignore",
        icon=":material/download:",
    )


def colour_control(ctx: Context, container: Any) -> None:
    if ctx.loaded and ctx.loaded.groups:
        container.selectbox("Colour by", ctx.loaded.groups, key=PAGE_WIDGETS["color"])


def points_control(ctx: Context, container: Any) -> None:
    container.selectbox(
        "Point cap",
        vs.POINT_CAPS,
        key=PAGE_WIDGETS["points"],
        help="Maps and timelines draw a fixed sample of at most this many points.",
    )


# ------------------------------------------------------ garbage collection
def freeze_long_lived_objects() -> None:
    """Move every object alive now out of the garbage collector's reach (``gc.freeze``).

    Streamlit runs a full collection after every script run (``runner.postScriptGC``),
    holding the GIL, so every session of the server waits for it. Once the live probe
    has imported torch and transformers and built its model, a full collection walks
    ~290,000 objects: 0.1 s per rerun on the 2-core machine, 40% of the server's CPU
    time under 8 busy sessions (docs/reliability.md). Those objects live as long as the
    process, so there is nothing in them to collect. Frozen objects are still freed by
    reference counting (a model the cache evicts goes with its weights:
    tests/app/test_rerun_costs.py); only cycles among them are no longer looked for.
    Collecting first keeps the garbage of the moment out of the frozen set.
    """
    gc.collect()
    gc.freeze()


@st.cache_resource(show_spinner=False)
def freeze_startup_objects() -> None:
    """Once per server process, after the first run has imported the app's modules."""
    freeze_long_lived_objects()


# --------------------------------------------------------------- live probe
@st.cache_resource(show_spinner=False, max_entries=2)
def _probe_model(model_id: str, n_layers: int, d_model: int, root: str, fake: bool) -> Any:
    from core.ui import live

    model = live.load_probe_model(model_id, n_layers, d_model, cache_root=Path(root))
    freeze_long_lived_objects()  # torch, transformers and the model itself
    return model


def probe_model(ctx: Context) -> Any:
    """The model of the selected results, loaded once per server process (spinner meanwhile)."""
    from core.ui import live

    assert ctx.entry is not None
    e = ctx.entry
    with st.spinner(
        f"Loading {cat.model_label(e.model_id)} (once per server; the first load of a GGUF model converts it, a minute or two)…"
    ):
        return _probe_model(
            e.model_id, e.n_model_layers, e.d_model, str(cache_root()), live.fake_model_enabled()
        )


@st.cache_data(show_spinner=False)
def _registry_prompt_text(dataset: str, prompt: str) -> str | None:
    try:
        from core.data.registry import load_dataset

        return load_dataset(dataset).prompt_text(prompt)
    except Exception as exc:  # unknown dataset/prompt, missing data package
        log.warning("no prompt text for %s/%s: %s", dataset, prompt, exc)
        return None


def prompt_text(ctx: Context) -> str:
    """The prefix the results were built with (manifest first, then the dataset registry)."""
    assert ctx.entry is not None
    if ctx.entry.prompt_text is not None:
        return ctx.entry.prompt_text
    if ctx.entry.prompt == "empty":
        return ""
    text = _registry_prompt_text(ctx.entry.dataset, ctx.entry.prompt)
    if text is None:
        ctx.page_notes.append(
            f"The results do not record the text of prompt {ctx.entry.prompt!r}; names are probed without a prefix."
        )
        return ""
    return text


@st.cache_data(show_spinner=False, max_entries=512)
def _name_prediction(
    model_key: str,
    folder: str,
    stamp: str,
    prefix: str,
    name: str,
    _model: Any,
    _results: ProbeResults,
) -> np.ndarray:
    from core.ui import live

    return live.predict_names(_model, _results, prefix, [name])[name]


def probe_names(
    ctx: Context, model: Any, prefix: str, names: Sequence[str]
) -> dict[str, np.ndarray]:
    """name -> [n_layers, n_targets], each name computed once per (model, results, prompt)."""
    assert ctx.entry is not None and ctx.loaded is not None
    key = f"{model.name}:{model.weights_hash}"
    return {
        name: _name_prediction(
            key, str(ctx.entry.folder), ctx.entry.stamp, prefix, name, model, ctx.loaded.results
        )
        for name in names
    }
