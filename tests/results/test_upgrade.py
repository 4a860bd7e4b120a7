"""Stored baseline predictions: written by the build, added to older results without the
model, read back as the numbers the baseline table reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.common.cache import read_manifest
from core.probe.metrics import regression_metrics
from core.results.probe_results import BASELINE_PREDICTIONS, ProbeResults
from core.results.upgrade import add_baseline_predictions, needs_upgrade, upgrade_results
from tests.support.synthetic import save_synthetic, space_entities, synthetic_results


def _old_results(root: Path, n: int = 200) -> ProbeResults:
    """Synthetic results saved as a build before stored baseline predictions would."""
    res = synthetic_results(space_entities(n, "nyc", seed=3), "space", 4, 8, dataset="nyc_places")
    save_synthetic(root, res)
    return res


def test_results_without_baseline_predictions_still_load(cache_root: Path) -> None:
    res = _old_results(cache_root)
    assert res.path is not None
    loaded = ProbeResults.load(res.path, verify=True)
    assert loaded.baseline_prediction("name_only") is None and loaded.baseline_names == ()
    assert needs_upgrade(res.path)


def test_saved_baseline_predictions_round_trip(cache_root: Path) -> None:
    res = synthetic_results(space_entities(120, "nyc", seed=4), "space", 3, 8)
    n = len(res.entities)
    res.baseline_preds = {"name_only": np.full((n, 2), 1.5), "train_mean": np.zeros((n, 2))}
    save_synthetic(cache_root, res)
    assert res.path is not None
    again = ProbeResults.load(res.path, verify=True)
    assert again.manifest["baseline_predictions"] == ["name_only", "train_mean"]
    stored = np.load(res.path / BASELINE_PREDICTIONS)
    assert stored.dtype == np.float32 and stored.shape == (2, n, 2)
    name_only = again.baseline_prediction("name_only")
    assert name_only is not None and np.all(name_only == 1.5)
    assert again.baseline_prediction("group_mean") is None
    assert not needs_upgrade(res.path)


def test_upgrade_adds_predictions_that_reproduce_the_baseline_metrics(cache_root: Path) -> None:
    res = _old_results(cache_root)
    assert res.path is not None
    before = {p.name: p.read_bytes() for p in res.path.iterdir() if p.is_file()}
    assert add_baseline_predictions(res.path)
    up = ProbeResults.load(res.path, verify=True)  # checksums cover the new files
    assert up.baseline_names == ("name_only", "group_mean", "train_mean")
    assert read_manifest(res.path)["dataset_info"]["reference_column"] == "borough"
    for name in ("predictions.npy", "coef.npy", "intercept.npy", "alphas.npy", "metrics.parquet"):
        assert (res.path / name).read_bytes() == before[name]  # untouched, byte for byte
    y = up.entities[["lat", "lon"]].to_numpy()
    test = up.entities["is_test"].to_numpy(dtype=bool)
    for name in up.baseline_names:
        pred = up.baseline_prediction(name)
        assert pred is not None and pred.shape == (len(y), 2)
        m = regression_metrics(y[test], pred[test].astype(np.float64), ("lat", "lon"), "space")
        assert up.baseline(name) == pytest.approx(m["r2"], abs=1e-5)
    assert not add_baseline_predictions(res.path)  # nothing left to add
    assert upgrade_results([res.path]) == []


def test_a_build_on_existing_results_adds_what_is_missing(cache_root: Path) -> None:
    from core.results.build import _verified_results

    res = _old_results(cache_root)
    assert res.path is not None
    found = _verified_results(res.path)
    assert found is not None and found.baseline_prediction("name_only") is not None


def _without_rows_key(folder: Path) -> None:
    """Rewrite a manifest as results built before rows keys were (checksums still valid)."""
    from core.common.cache import write_manifest
    from core.results.meta import ROWS_KEY

    manifest = read_manifest(folder)
    manifest.pop(ROWS_KEY)
    write_manifest(folder, {k: v for k, v in manifest.items() if k != "files"})


def test_upgrade_writes_the_rows_key_and_keeps_every_file(cache_root: Path) -> None:
    from core.results.catalog import discover
    from core.results.meta import ROWS_KEY, rows_key_of
    from core.results.upgrade import add_rows_key, needs_rows_key

    res = synthetic_results(space_entities(150, "nyc", seed=5), "space", 3, 8)
    res.baseline_preds = {"name_only": np.zeros((150, 2))}
    folder = save_synthetic(cache_root, res)
    key = read_manifest(folder)[ROWS_KEY]
    assert key == rows_key_of(res.entities)  # written at build (save) time
    _without_rows_key(folder)
    assert needs_rows_key(folder) and needs_upgrade(folder)
    # without one in the manifest, both views compute the same key from the entities
    (entry,) = discover(cache_root).entries
    assert entry.meta.rows_key == ProbeResults.load(folder).meta.rows_key == key
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "manifest.json"}
    assert upgrade_results([folder]) == [folder]
    assert read_manifest(folder)[ROWS_KEY] == key
    ProbeResults.load(folder, verify=True)  # the checksums still hold
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "manifest.json"} == (
        before
    )
    assert not add_rows_key(folder) and not needs_upgrade(folder)
