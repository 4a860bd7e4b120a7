"""What every rerun of a busy server must not pay again: reading each result's metrics to
pick the opening view, and a full garbage collection over torch, transformers and the
live model (Streamlit collects after every script run)."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st

from core.results import catalog as cat
from pages._loaders import freeze_long_lived_objects
from tests.app.conftest import make_app
from tests.app.test_pages import charts, no_exceptions


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    st.cache_resource.clear()
    gc.unfreeze()
    yield
    gc.unfreeze()  # frozen objects of this test go back to the collector
    st.cache_resource.clear()


def test_opening_view_is_chosen_once_per_catalog(
    demo_env: Path, fresh_caches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = cat.best_model_on

    def counted(
        catalog: cat.Catalog, dataset: str, prompt: str = "empty", among: Any = None
    ) -> str | None:
        calls.append(dataset)
        return original(catalog, dataset, prompt, among=among)

    best = original(cat.discover(demo_env), "world_places", among=cat.OPENING_MODELS)
    monkeypatch.setattr(cat, "best_model_on", counted)
    at = make_app().run()
    no_exceptions(at)
    assert best and at.query_params["model"] == best
    at.run()
    at.run()
    assert calls == ["world_places"]

    # a rewritten results folder (new manifest stamp) is looked at again
    manifest = next((demo_env / "results").glob("*/manifest.json"))
    before = manifest.stat()
    try:
        os.utime(manifest, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        make_app().run()
        assert calls == ["world_places", "world_places"]
    finally:
        os.utime(manifest, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_live_model_and_imports_are_out_of_the_collectors_reach(
    demo_env: Path, fresh_caches: None
) -> None:
    import torch

    at = make_app({"names": "Kyoto"}).run()  # the maps page: no model yet
    no_exceptions(at)
    assert gc.get_freeze_count() > 0  # the app's modules, once the first run imported them

    at.switch_page("pages/live_probe.py").run()
    no_exceptions(at)
    assert charts(at)  # the model ran
    tracked: list[Any] = [o for o in gc.get_objects() if isinstance(o, torch.nn.Module)]
    assert tracked == []  # frozen right after loading, so no full collection walks it


def test_a_frozen_model_is_still_freed_when_dropped(fresh_caches: None) -> None:
    """Freezing relies on the model holding no reference cycles: were it to, a model the
    cache evicts would keep its weights for the life of the server."""
    from tests.support.tiny import tiny_model

    model = tiny_model(n_layers=2, d_model=32)
    freeze_long_lived_objects()
    weight = weakref.ref(next(model.model.parameters()))
    network = weakref.ref(model.model)
    del model
    assert weight() is None and network() is None
