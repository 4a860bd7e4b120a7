"""Cached loads shared by dashboard.py and the pages (not a page: the leading underscore
keeps it out of page discovery).

Everything read from the cache root goes through ``st.cache_data`` or
``st.cache_resource`` here: the catalog and the view it opens on, verified results,
analyses and steering runs (the live probe's model and name predictions, which take the
page's ``Context``, are in ``pages._live``). The garbage-collector freeze that keeps
long-lived objects out of every rerun's collection lives here too. Nothing here imports
``pages._state``: the state is built on these loads, not the other way round.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis.run import AnalysisResults, analysis_dir
from core.common.cache import (
    CacheError,
    default_cache_root,
    folder_stamp,
    read_manifest,
    verify_files,
)
from core.probe.bootstrap import Interval
from core.results import catalog as cat
from core.results import intervals
from core.results.probe_results import ProbeResults, best_layer_of
from core.ui import view_state as vs
from core.viz import figures as figs
from core.viz import outlines as geo

log = logging.getLogger(__name__)


# ------------------------------------------------------------ the catalog
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


def preferred_defaults(catalog: cat.Catalog) -> vs.Defaults:
    models = catalog.models()
    # Open on the model that places the world best (the live probe then starts with it).
    model = cat.best_model_on(catalog, "world_places", among=cat.OPENING_MODELS) or (
        cat.DEFAULT_MODEL if (not models or cat.DEFAULT_MODEL in models) else models[0]
    )
    datasets = catalog.datasets(model)
    dataset = "world_places" if (not datasets or "world_places" in datasets) else datasets[0]
    return vs.Defaults(model=model, dataset=dataset, prompt="empty")


# ------------------------------------------------------------- results
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
    best = best_layer_of(results.metrics, [int(v) for v in results.layers])
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


def load_control(catalog: cat.Catalog, loaded: Loaded) -> tuple[Loaded | None, str]:
    """The random-init control of `loaded` on its own rows (the catalog's index), or
    (None, why there is none): a control on other rows is never shown in its place."""
    entry = catalog.control_of(loaded.entry)
    control, error = try_load(entry)
    if control is not None:
        return control, ""
    return None, error or catalog.missing_control(loaded.entry)


# ------------------------------------------------------------ intervals
@st.cache_data(show_spinner=False, max_entries=32)
def _layer_band(folder: str, stamp: str, _results: ProbeResults) -> pd.DataFrame:
    return intervals.layer_band(_results)


def layer_band(loaded: Loaded) -> pd.DataFrame:
    """Per layer the 95% interval of the test R² (``layer``, ``lo``, ``hi``): a bootstrap
    of the stored predictions, once per results folder (a second or so for 23,000)."""
    e = loaded.entry
    return _layer_band(str(e.folder), e.stamp, loaded.results)


@st.cache_data(show_spinner=False, max_entries=32)
def _baseline_intervals(
    folder: str,
    stamp: str,
    control_folder: str,
    control_stamp: str,
    _results: ProbeResults,
    _control: ProbeResults | None,
) -> dict[str, Interval | float]:
    return intervals.baseline_intervals(_results, _control)


def baseline_intervals(loaded: Loaded, control: Loaded | None) -> dict[str, Interval | float]:
    """Label -> test R² (with its 95% interval where predictions are stored) of what the
    selected results are read against (:func:`core.results.intervals.baseline_intervals`)."""
    e, c = loaded.entry, control.entry if control is not None else None
    return _baseline_intervals(
        str(e.folder),
        e.stamp,
        str(c.folder) if c else "",
        c.stamp if c else "",
        loaded.results,
        control.results if control is not None else None,
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _era_table(folder: str, stamp: str, _results: ProbeResults) -> pd.DataFrame:
    from core.results.shipped import era_table

    table = era_table([_results])
    return table.reset_index(level=["dataset", "model"], drop=True).reset_index()


def era_table_of(loaded: Loaded) -> pd.DataFrame:
    """A time result's test R² and Spearman within eras, each ± its 95% interval
    (:func:`core.results.shipped.era_table`); empty for results without years."""
    if loaded.results.kind != "time":
        return pd.DataFrame()
    e = loaded.entry
    return _era_table(str(e.folder), e.stamp, loaded.results)


# ------------------------------------------------------------ analyses
@st.cache_resource(show_spinner="Loading analyses…", max_entries=8)
def _load_analysis(folder: str, stamp: str) -> AnalysisResults:
    return AnalysisResults.load(Path(folder), verify=True)


def load_analysis(entry: cat.ResultEntry) -> tuple[AnalysisResults | None, str | None]:
    """The ``analysis`` artifact of a results entry (None if absent), or why it is
    unreadable."""
    folder = analysis_dir(entry.folder.parent.parent, entry.key)
    if not (folder / "manifest.json").is_file():
        return None, None
    try:
        analysis = _load_analysis(str(folder), folder_stamp(folder))
    except CacheError as exc:
        return None, str(exc)
    n = int(analysis.manifest.get("n_entities", -1))
    # an analysis may run on the results' first rows (a seeded sample), and then says so
    sample_of = int(analysis.manifest.get("sample_of", n))
    if sample_of != entry.n_entities or n > entry.n_entities:
        return (
            None,
            f"{folder}: analysis of {n} entities (of {sample_of}), results have {entry.n_entities}",
        )
    return analysis, None


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


# ---------------------------------------------------------------- steering
@st.cache_data(show_spinner=False, max_entries=32)
def _steering(folder: str, stamp: str) -> Any:
    from core.steer.evaluate import load_steering

    return load_steering(Path(folder))


def load_steering_of(entry: cat.ResultEntry) -> tuple[Any, str | None]:
    """(summary, examples, manifest) of a results entry's steering run (None if absent),
    or why it is unreadable."""
    from core.steer.evaluate import steering_dir

    folder = steering_dir(entry.folder.parent.parent, entry.key)
    if not (folder / "manifest.json").is_file():
        return None, None
    try:
        return _steering(str(folder), folder_stamp(folder)), None
    except CacheError as exc:
        return None, str(exc)
