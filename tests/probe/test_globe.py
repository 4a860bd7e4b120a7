"""The globe target: (x, y, z) on the unit sphere, fitted by the same ridge, read as lat/lon."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.common.config import BuildConfig, ProbeSpec
from core.extract.activations import last_token_activations
from core.probe.globe import from_globe, to_globe
from core.results.build import build
from core.results.catalog import discover
from core.results.shipped import globe_table


def test_round_trip_has_no_seam() -> None:
    latlon = np.array([[0.0, 179.9], [0.0, -179.9], [89.0, 10.0], [-45.0, -120.0]])
    np.testing.assert_allclose(from_globe(to_globe(latlon)), latlon, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(to_globe(latlon), axis=1), 1.0)
    # longer or shorter vectors point the same way
    np.testing.assert_allclose(from_globe(3 * to_globe(latlon)), latlon, atol=1e-9)
    # the two sides of the date line are neighbours on the sphere
    assert np.linalg.norm(to_globe(latlon[0]) - to_globe(latlon[1])) < 0.01
    assert from_globe(np.zeros(3)).tolist() == [0.0, 0.0]


def test_default_spec_keeps_earlier_keys() -> None:
    assert "target" not in ProbeSpec().to_dict()
    assert ProbeSpec(target="globe").key("a__b") != ProbeSpec().key("a__b")
    with pytest.raises(ValueError, match="probe target"):
        ProbeSpec(target="mercator")


def test_globe_build_beside_latlon(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    config = BuildConfig("tiny-llama", places, cache_root=cache_root)
    latlon = build(config, loaded=tiny)
    globe = build(dataclasses.replace(config, probe=ProbeSpec(target="globe")), loaded=tiny)
    assert globe.manifest["activation_key"] == latlon.manifest["activation_key"]  # reused
    assert globe.path != latlon.path and globe.probe_target == "globe"
    assert globe.coef.shape[1] == 3 and globe.target_names == ("lat", "lon")
    assert "--target globe" in globe.manifest["command"]
    pred = globe.predictions.astype(np.float64)
    assert np.abs(pred[..., 0]).max() <= 90 and np.abs(pred[..., 1]).max() <= 180
    # predict() on activations reads x, y, z and returns the stored lat/lon
    acts = last_token_activations(tiny, list(places.frame["text"][:5]), layers=list(globe.layers))
    np.testing.assert_allclose(globe.predict(acts), pred[:, :5], atol=0.05)
    test = globe.metrics[globe.metrics["split"] == "test"]
    assert {"r2_x", "r2_y", "r2_z", "r2_lat", "km_median"} <= set(test.columns)
    # the dashboard's default view stays on the lat/lon probe; the globe one on request
    catalog = discover(cache_root)
    assert catalog.find("tiny-llama", places.name, "empty").key == latlon.path.name
    assert catalog.find("tiny-llama", places.name, "empty", target="globe").key == globe.path.name
    table = globe_table([latlon, globe])
    assert list(table.index.get_level_values("probe")) == ["lat/lon", "globe (x, y, z)"]


def test_globe_needs_a_space_dataset(tiny, cache_root) -> None:  # type: ignore[no-untyped-def]
    from core.data.schema import EntityDataset
    from tests.support.synthetic import time_entities

    frame = time_entities(60)
    data = EntityDataset(name="t", kind="time", frame=frame, prompts={"empty": ""})
    config = BuildConfig("tiny-llama", data, probe=ProbeSpec(target="globe"), cache_root=cache_root)
    with pytest.raises(ValueError, match="space dataset"):
        build(config, loaded=tiny)
