"""Compact results storage: float16 predictions around an offset, shared entity tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.common.cache import SHARED, read_manifest
from core.results.probe_results import ProbeResults, decode_predictions, encode_predictions
from tests.support.synthetic import space_entities, synthetic_results


def round_trip(
    preds: np.ndarray, entities: pd.DataFrame, targets: tuple[str, ...]
) -> tuple[np.ndarray, list[float] | None, np.ndarray]:
    stored, offsets = encode_predictions(preds, entities, targets)
    return stored, offsets, decode_predictions(stored, offsets)


def test_nyc_coordinates_keep_metre_precision() -> None:
    rng = np.random.default_rng(0)
    entities = pd.DataFrame(
        {
            "lat": 40.7 + 0.08 * rng.standard_normal(500),
            "lon": -73.9 + 0.1 * rng.standard_normal(500),
        }
    )
    preds = np.stack(
        [
            entities[["lat", "lon"]].to_numpy() + 0.05 * rng.standard_normal((500, 2))
            for _ in range(3)
        ]
    )
    stored, offsets, back = round_trip(preds, entities, ("lat", "lon"))
    assert stored.dtype == np.float16 and offsets is not None
    error = np.abs(back - preds).max(axis=(0, 1))
    raw_float16_error = np.abs(preds.astype(np.float16).astype(np.float64) - preds).max(axis=(0, 1))
    assert np.all(
        error < 0.005 * entities[["lat", "lon"]].std().to_numpy()
    )  # half a step of 1% of the spread
    assert np.all(error < raw_float16_error / 20)  # plain float16 would round NYC to a km grid


def test_years_in_float16_only_when_the_steps_are_fine_enough() -> None:
    rng = np.random.default_rng(1)
    entities = pd.DataFrame({"year": rng.uniform(1900, 2020, 400)})
    preds = (entities["year"].to_numpy() + 5 * rng.standard_normal(400))[None, :, None]
    stored, offsets, back = round_trip(preds, entities, ("year",))
    assert (
        stored.dtype == np.float16
        and offsets is not None
        and abs(offsets[0] - np.median(preds)) < 1e-3
    )
    assert np.abs(back - preds).max() <= 0.005 * entities["year"].std()
    wild = preds.copy()
    wild[0, 0, 0] = 30000.0  # one far-off prediction: float16's step there is 16 years
    stored, offsets, back = round_trip(wild, entities, ("year",))
    assert stored.dtype == np.float32 and offsets is None
    np.testing.assert_array_equal(back, wild.astype(np.float32))


def test_values_float16_cannot_hold_fall_back_to_float32() -> None:
    entities = pd.DataFrame({"year": np.linspace(1000, 2000, 50)})
    preds = np.linspace(1000, 2000, 50)[None, :, None].copy()
    preds[0, 3, 0] = 1e6
    stored, offsets, _ = round_trip(preds, entities, ("year",))
    assert offsets is None and stored.dtype == np.float32


def test_non_finite_predictions_survive() -> None:
    entities = pd.DataFrame({"year": np.linspace(1000, 2000, 50)})
    preds = np.linspace(1000, 2000, 50)[None, :, None].copy()
    preds[0, 3, 0], preds[0, 4, 0] = np.inf, np.nan
    _, offsets, back = round_trip(preds, entities, ("year",))
    assert offsets is not None and np.isposinf(back[0, 3, 0]) and np.isnan(back[0, 4, 0])
    np.testing.assert_allclose(back[0, 5:, 0], preds[0, 5:, 0], atol=5.0)


def test_models_on_one_dataset_share_one_entity_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = space_entities(300, "world", seed=2)
    folders = []
    for model in ("model-a", "model-b"):
        res = synthetic_results(world, "space", 4, 8, model, "world_places")
        folders.append(res.save(tmp_path / "results" / f"{model}__world"))
    shared = list((tmp_path / "results" / SHARED).iterdir())
    assert len(shared) == 1 and not any((f / "entities.parquet").exists() for f in folders)
    names = {read_manifest(f)["shared_files"]["entities.parquet"]["name"] for f in folders}
    assert names == {shared[0].name}
    for folder in folders:
        loaded = ProbeResults.load(folder, verify=True)
        pd.testing.assert_frame_equal(loaded.entities, world.reset_index(drop=True))


def test_list_prune_removes_only_tables_no_artifact_lists(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from core.cli import main
    from core.common.cache import prune_shared, shared_files

    world = space_entities(200, "world", seed=3)
    other = space_entities(150, "usa", seed=4)
    a = synthetic_results(world, "space", 3, 8, "model-a", "world_places").save(
        tmp_path / "results" / "a"
    )
    synthetic_results(world, "space", 3, 8, "model-b", "world_places").save(
        tmp_path / "results" / "b"
    )
    c = synthetic_results(other, "space", 3, 8, "model-a", "us_places").save(
        tmp_path / "results" / "c"
    )
    shutil.rmtree(a)  # b still lists the world table
    shutil.rmtree(c)  # nothing lists the us table any more
    assert sorted(referenced for _, referenced in shared_files(tmp_path, "results")) == [
        False,
        True,
    ]
    assert prune_shared(tmp_path, "results") == []  # too recent: could be a build in progress
    assert main(["--cache-root", str(tmp_path), "list", "--kind", "results"]) == 0
    assert "2 shared entity tables, 1 listed by no artifact" in capsys.readouterr().out
    (orphan,) = prune_shared(tmp_path, "results", min_age_s=0.0)
    assert [referenced for _, referenced in shared_files(tmp_path, "results")] == [True]
    assert not orphan.exists()
    ProbeResults.load(tmp_path / "results" / "b", verify=True)


def test_best_layer_of_uses_training_rows_and_falls_back_only_without_them() -> None:
    from core.results.probe_results import best_layer_of

    metrics = pd.DataFrame(
        {
            "layer": [0, 1, 2, 0, 1, 2],
            "split": ["train"] * 3 + ["test"] * 3,
            "loo_r2": [0.2, 0.7, 0.5, np.nan, np.nan, np.nan],
            "r2": [0.3, 0.8, 0.6, 0.1, 0.2, 0.9],  # test R² peaks at 2: never consulted
        }
    )
    assert best_layer_of(metrics) == 1
    assert best_layer_of(metrics, [0, 1, 2]) == 1
    assert best_layer_of(metrics, [0, 2]) == 2  # only the layers asked about
    test_only = metrics[metrics["split"] == "test"]
    assert best_layer_of(test_only, [0, 1, 2]) == 2  # no training rows: the last layer
    assert best_layer_of(None, [3, 7]) == 7
    with pytest.raises(ValueError, match="no training-split metrics"):
        best_layer_of(test_only)
