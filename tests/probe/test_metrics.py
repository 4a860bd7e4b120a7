"""Metrics on hand-checked cases and against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import r2_score

import core.probe.metrics as metrics
from core.probe.metrics import (
    EARTH_RADIUS_KM,
    haversine_km,
    proximity_error,
    proximity_errors,
    regression_metrics,
)

PARIS = (48.8566, 2.3522)  # (lat, lon)
LONDON = (51.5074, -0.1278)


def test_paris_london():
    km = haversine_km(lat1=PARIS[0], lon1=PARIS[1], lat2=LONDON[0], lon2=LONDON[1])
    assert abs(float(km) - 344.0) < 1.0
    assert float(haversine_km(*LONDON, *PARIS)) == pytest.approx(float(km))


def test_lat_lon_order_matters():
    right = float(haversine_km(PARIS[0], PARIS[1], LONDON[0], LONDON[1]))
    swapped = float(haversine_km(PARIS[1], PARIS[0], LONDON[1], LONDON[0]))  # (lon, lat): wrong
    assert abs(swapped - right) > 50.0


def test_haversine_special_cases_and_broadcasting():
    assert float(haversine_km(10.0, 20.0, 10.0, 20.0)) == 0.0
    assert float(haversine_km(0.0, 0.0, 0.0, 180.0)) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert float(haversine_km(90.0, 0.0, -90.0, 0.0)) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    # one degree of latitude: 2 pi R / 360 ~ 111.2 km
    assert float(haversine_km(0.0, 0.0, 1.0, 0.0)) == pytest.approx(111.195, abs=0.01)
    lats = np.array([[0.0], [30.0], [60.0]])
    out = haversine_km(lats, np.zeros((1, 4)), 0.0, np.arange(4.0)[None, :])
    assert out.shape == (3, 4)


def test_proximity_error_hand_example_time():
    true = np.array([0.0, 10.0, 20.0])
    pred = np.array([0.0, 14.0, 11.0])
    # i=0: own |0-0| = 0, nobody strictly closer            -> 0/2
    # i=1: own |14-10| = 4; |0-10| = 10 no, |11-10| = 1 yes  -> 1/2
    # i=2: own |11-20| = 9; |0-20| = 20 no, |14-20| = 6 yes  -> 1/2
    # mean = (0 + 1/2 + 1/2) / 3 = 1/3
    assert proximity_error(true, pred, "time") == pytest.approx(1 / 3)
    assert proximity_error(true[:, None], pred[:, None], "time") == pytest.approx(1 / 3)


def test_proximity_error_hand_example_space():
    # Same numbers along the equator (lat 0), where great-circle distance is
    # proportional to |delta lon|: expected 1/3 as above.
    true = np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 20.0]])
    pred = np.array([[0.0, 0.0], [0.0, 14.0], [0.0, 11.0]])
    assert proximity_error(true, pred, "space") == pytest.approx(1 / 3)
    # Four points: true at lat 0, lon 0/10/20/30; predictions lon 3, 9, 40, 30.
    # i=0 (true 0, own 3): others 9, 40, 30 all farther          -> 0/3
    # i=1 (true 10, own |9-10| = 1): 3 -> 7, 40 -> 30, 30 -> 20  -> 0/3
    # i=2 (true 20, own |40-20| = 20): 3 -> 17 yes, 9 -> 11 yes, 30 -> 10 yes -> 3/3
    # i=3 (true 30, own 0): nobody                              -> 0/3
    # mean = (0 + 0 + 1 + 0) / 4 = 1/4
    true4 = np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 20.0], [0.0, 30.0]])
    pred4 = np.array([[0.0, 3.0], [0.0, 9.0], [0.0, 40.0], [0.0, 30.0]])
    assert proximity_error(true4, pred4, "space") == pytest.approx(1 / 4)


def test_proximity_error_perfect_and_random():
    rng = np.random.default_rng(0)
    latlon = np.c_[rng.uniform(-60, 70, 500), rng.uniform(-180, 180, 500)]
    latlon[10] = latlon[11]  # a tie in true positions is still perfect
    assert proximity_error(latlon, latlon, "space") == 0.0
    years = rng.uniform(1000, 2000, 500).round()
    assert proximity_error(years, years, "time") == 0.0
    # predictions unrelated to the truth: about one half
    shuffled = latlon[rng.permutation(500)]
    assert proximity_error(latlon, shuffled, "space") == pytest.approx(0.5, abs=0.05)
    assert proximity_error(years, rng.permutation(years), "time") == pytest.approx(0.5, abs=0.05)


def brute_force(true: np.ndarray, pred: np.ndarray, kind: str) -> float:
    n = len(true)
    fractions = []
    for i in range(n):
        if kind == "space":
            dist = haversine_km(true[i, 0], true[i, 1], pred[:, 0], pred[:, 1])
        else:
            dist = np.abs(pred - true[i])
        fractions.append(np.count_nonzero(dist < dist[i]) / (n - 1))
    return float(np.mean(fractions))


def test_proximity_error_matches_brute_force(monkeypatch):
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 5000)  # force many row blocks
    rng = np.random.default_rng(3)
    n = 700
    true = np.c_[rng.uniform(-80, 80, n), rng.uniform(-180, 180, n)]
    pred = true + rng.normal(0, 15, (n, 2))
    assert proximity_error(true, pred, "space") == pytest.approx(
        brute_force(true, pred, "space"), abs=1e-12
    )
    years = rng.uniform(1500, 2000, n)
    guess = years + rng.normal(0, 40, n)
    assert proximity_error(years, guess, "time") == pytest.approx(
        brute_force(years, guess, "time"), abs=1e-12
    )
    # many exact ties (integer years)
    years, guess = years.round(-1), guess.round(-1)
    assert proximity_error(years, guess, "time") == pytest.approx(
        brute_force(years, guess, "time"), abs=1e-12
    )


def test_proximity_errors_per_entity_rows_and_own_prediction(monkeypatch):
    """The one definition, per entity: its mean is the metric; `rows` picks entities
    ranked against all n; `own_pred` swaps in i's own prediction only (brute force)."""
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 5000)  # force many row blocks
    rng = np.random.default_rng(5)
    n = 300
    true = np.c_[rng.uniform(-80, 80, n), rng.uniform(-180, 180, n)]
    pred = true + rng.normal(0, 15, (n, 2))
    own = np.where(rng.random((n, 1)) < 0.5, true.mean(0), pred)  # a constant for half
    years, guess = true[:, 0] * 10 + 1500, pred[:, 0] * 10 + 1500
    own_years = own[:, 0] * 10 + 1500
    rows = np.sort(rng.choice(n, 120, replace=False))
    for kind, t, p, o in (("space", true, pred, own), ("time", years, guess, own_years)):
        every = proximity_errors(t, p, kind)
        assert every.mean() == pytest.approx(proximity_error(t, p, kind), abs=1e-12)
        np.testing.assert_array_equal(proximity_errors(t, p, kind, rows=rows), every[rows])
        got = proximity_errors(t, p, kind, rows=rows, own_pred=o, tolerance=1e-12)
        expected = []
        for i in rows:
            if kind == "space":
                dist = haversine_km(t[i, 0], t[i, 1], p[:, 0], p[:, 1])
                mine = haversine_km(t[i, 0], t[i, 1], o[i, 0], o[i, 1])
            else:
                dist, mine = np.abs(p - t[i]), abs(o[i] - t[i])
            closer = dist < mine - (1e-6 if kind == "space" else 0.0)
            closer[i] = False
            expected.append(closer.sum() / (n - 1))
        np.testing.assert_allclose(got, expected, atol=1.5 / (n - 1))
    assert np.isnan(proximity_errors(true[:1], pred[:1], "space")).all()


def test_proximity_error_cap_scores_a_seeded_subsample():
    rng = np.random.default_rng(6)
    years = rng.uniform(1000, 2000, 500)
    guess = years + rng.normal(0, 100, 500)
    keep = np.sort(np.random.default_rng(0).choice(500, 200, replace=False))
    capped = proximity_error(years, guess, "time", max_rows=200)
    assert capped == proximity_error(years[keep], guess[keep], "time")
    assert proximity_error(years, guess, "time", max_rows=500) == proximity_error(
        years, guess, "time"
    )


def test_proximity_error_large_n_is_bounded():
    rng = np.random.default_rng(4)
    n = 20000
    years = rng.uniform(1000, 2000, n)
    value = proximity_error(years, years + rng.normal(0, 20, n), "time")
    assert 0.0 < value < 0.1
    true = np.c_[rng.uniform(-60, 70, n), rng.uniform(-180, 180, n)]
    value = proximity_error(true, true + rng.normal(0, 5, (n, 2)), "space")
    assert 0.0 < value < 0.05


def test_proximity_error_rejects_bad_input():
    with pytest.raises(ValueError, match="kind"):
        proximity_error(np.zeros(3), np.zeros(3), "depth")
    with pytest.raises(ValueError, match="lat, lon"):
        proximity_error(np.zeros((3, 3)), np.zeros((3, 3)), "space")
    with pytest.raises(ValueError, match="lengths"):
        proximity_error(np.zeros(3), np.zeros(4), "time")


def test_regression_metrics_space():
    rng = np.random.default_rng(5)
    true = np.c_[rng.uniform(-50, 50, 300), rng.uniform(-150, 150, 300)]
    pred = true + np.array([1.0, 0.0])  # everything one degree of latitude too far north
    out = regression_metrics(true, pred, ("lat", "lon"), "space")
    assert out["km_mean"] == pytest.approx(111.195, abs=0.01)
    assert out["km_median"] == pytest.approx(111.195, abs=0.01)
    assert out["mae_lat"] == pytest.approx(1.0) and out["mae_lon"] == pytest.approx(0.0)
    assert out["spearman_lat"] == pytest.approx(1.0) and out["spearman"] == pytest.approx(1.0)
    assert out["r2_lat"] == pytest.approx(r2_score(true[:, 0], pred[:, 0]))
    assert out["r2"] == pytest.approx((out["r2_lat"] + out["r2_lon"]) / 2)
    assert 0.0 <= out["proximity_error"] < 0.1
    expected = {"r2", "spearman", "km_mean", "km_median", "proximity_error"}
    expected |= {f"{m}_{t}" for m in ("r2", "spearman", "mae") for t in ("lat", "lon")}
    assert set(out) == expected


def test_regression_metrics_uses_target_names_not_column_order():
    rng = np.random.default_rng(6)
    true = np.c_[rng.uniform(50, 70, 200), rng.uniform(-150, 150, 200)]
    pred = true + rng.normal(0, 3, (200, 2))
    as_latlon = regression_metrics(true, pred, ("lat", "lon"), "space")
    as_lonlat = regression_metrics(true[:, ::-1], pred[:, ::-1], ("lon", "lat"), "space")
    assert as_lonlat["km_mean"] == pytest.approx(as_latlon["km_mean"])
    assert as_lonlat["proximity_error"] == pytest.approx(as_latlon["proximity_error"])
    mislabeled = regression_metrics(true, pred, ("lon", "lat"), "space")
    assert abs(mislabeled["km_mean"] - as_latlon["km_mean"]) > 10.0


def test_regression_metrics_time():
    true = np.array([1800.0, 1850.0, 1900.0, 1950.0, 2000.0])
    pred = np.array([1810.0, 1840.0, 1930.0, 1950.0, 1990.0])
    out = regression_metrics(true[:, None], pred[:, None], ("year",), "time")
    assert out["mae_year"] == pytest.approx(12.0)
    assert out["r2_year"] == pytest.approx(r2_score(true, pred)) and out["r2"] == out["r2_year"]
    assert out["spearman_year"] == pytest.approx(1.0)
    assert out["proximity_error"] == pytest.approx(proximity_error(true, pred, "time"))
    assert "km_mean" not in out
    # constant predictions: Spearman undefined -> NaN, not an exception
    flat = regression_metrics(true, np.full(5, 1900.0), ("year",), "time")
    assert math.isnan(flat["spearman_year"])


def test_regression_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="lat"):
        regression_metrics(np.zeros((4, 2)), np.zeros((4, 2)), ("x", "y"), "space")
    with pytest.raises(ValueError, match="shapes"):
        regression_metrics(np.zeros((4, 2)), np.zeros((4, 2)), ("year",), "time")
    with pytest.raises(ValueError, match="kind"):
        regression_metrics(np.zeros((4, 1)), np.zeros((4, 1)), ("year",), "era")
