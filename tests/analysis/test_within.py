"""Between / within groups and the within-group probe: recomputed by hand, planted on the
tiny model, added to finished results from their activation cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.common.cache import read_manifest
from core.common.config import ActivationSpec, BuildConfig
from core.data.schema import EntityDataset
from core.extract.store import build_activations
from core.probe.bootstrap import resample_counts
from core.probe.within import STATS, decomposition_samples, group_codes, within_target
from core.results.build import build
from core.results.probe_results import ProbeResults
from core.results.within import (
    BETWEEN_WITHIN,
    WITHIN,
    WITHIN_PREDICTIONS,
    add_between_within,
    add_within_probe,
    decomposition_at,
    load_between_within,
    load_within,
    main,
)
from tests.support.synthetic import save_synthetic, space_entities, synthetic_results


def _by_hand(y: np.ndarray, p: np.ndarray, g: np.ndarray) -> dict[str, float]:
    """The decomposition written out plainly, one target at a time."""
    out: dict[str, list[float]] = {s: [] for s in STATS}
    centred_r2, r2s = [], []
    for t in range(y.shape[1]):
        frame = pd.DataFrame({"y": y[:, t], "p": p[:, t], "g": g})
        ym = frame.groupby("g")["y"].transform("mean").to_numpy()
        pm = frame.groupby("g")["p"].transform("mean").to_numpy()
        dy, dp = y[:, t] - ym, p[:, t] - pm
        sst = ((y[:, t] - y[:, t].mean()) ** 2).sum()
        r2 = 1 - ((y[:, t] - p[:, t]) ** 2).sum() / sst
        out["r2"].append(r2)
        out["r2_between"].append(1 - ((ym - pm) ** 2).sum() / ((ym - y[:, t].mean()) ** 2).sum())
        out["r2_within"].append(1 - ((dy - dp) ** 2).sum() / (dy**2).sum())
        out["within_corr"].append(float(np.corrcoef(dy, dp)[0, 1]))
        centred_r2.append(1 - ((y[:, t] - pm) ** 2).sum() / sst)
        r2s.append(r2)
    res = {s: float(np.mean(v)) for s, v in out.items() if v}
    res["group_share"] = float(np.mean(centred_r2) / np.mean(r2s))
    return res


def _clustered(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = rng.choice(list("ABCDEFG"), n)
    centre = {k: rng.normal(0, 20, 2) for k in "ABCDEFG"}
    y = np.array([centre[k] for k in g]) + rng.normal(0, 2, (n, 2))
    return y, g, np.array([centre[k] for k in g])


def test_decomposition_matches_the_definition_and_its_resamples() -> None:
    y, g, _ = _clustered()
    rng = np.random.default_rng(1)
    pred = y + rng.normal(0, 3, y.shape)
    codes, _ = group_codes(g)
    full = decomposition_samples(y, pred, codes, np.ones((1, len(y))))[0, 0]
    want = _by_hand(y, pred, g)
    for i, stat in enumerate(STATS):
        assert full[i] == pytest.approx(want[stat], rel=1e-9), stat
    # a resample is the statistic of the rows it draws (weights = repeats)
    counts = resample_counts(len(y), 3, seed=5)
    samples = decomposition_samples(y, pred, codes, counts)
    for b in range(3):
        rows = np.repeat(np.arange(len(y)), counts[b].astype(int))
        again = _by_hand(y[rows], pred[rows], g[rows])
        for i, stat in enumerate(STATS):
            assert samples[b, 0, i] == pytest.approx(again[stat], rel=1e-9), stat


def test_a_predictor_at_its_groups_true_centre_places_nothing_within() -> None:
    y, g, centres = _clustered()
    codes, _ = group_codes(g)
    found = decomposition_samples(y, centres, codes, np.ones((1, len(y))))[0, 0]
    stats = dict(zip(STATS, found, strict=True))
    assert stats["r2"] > 0.9  # most of the variance is between groups
    assert stats["r2_within"] <= 0.0
    assert stats["group_share"] >= 1.0  # every bit of R² is the groups'


def test_within_target_uses_only_groups_seen_in_training() -> None:
    y = np.array([[1.0], [3.0], [10.0], [12.0], [50.0], [2.0], [11.0], [60.0]])
    groups = np.array(["a", "a", "b", "b", "c", "a", "b", "c"])
    is_test = np.array([False, False, False, False, False, True, True, True])
    target = within_target(y, groups, is_test, min_train=2)
    assert target.kept_groups == ["a", "b"]  # c has one training row
    assert target.rows.tolist() == [True, True, True, True, False, True, True, False]
    assert target.offset[5, 0] == pytest.approx(0.0)  # 2 - mean(1, 3)
    assert target.offset[6, 0] == pytest.approx(0.0)  # 11 - mean(10, 12)
    assert np.isnan(target.offset[7, 0])


def test_stored_decomposition_is_recomputed_from_the_predictions(cache_root: Path) -> None:
    ent = space_entities(300, "usa", seed=3)
    res = synthetic_results(ent, "space", 4, 8, dataset="us_places")
    save_synthetic(cache_root, res)
    assert res.path is not None
    before = {p.name: p.read_bytes() for p in res.path.iterdir() if p.is_file()}
    assert add_between_within(res.path)
    assert not add_between_within(res.path)  # nothing left to add
    loaded = ProbeResults.load(res.path, verify=True)  # the checksums cover the new file
    assert BETWEEN_WITHIN in read_manifest(res.path)["files"]
    for name in ("predictions.npy", "metrics.parquet"):
        assert (res.path / name).read_bytes() == before[name]
    table = load_between_within(loaded)
    assert table is not None and set(table["grouping"]) == {"state"}
    test = loaded.entities["is_test"].to_numpy(dtype=bool)
    y = loaded.entities[["lat", "lon"]].to_numpy(dtype=np.float64)[test]
    for pos, layer in enumerate(loaded.layers):
        row = decomposition_at(table, "state", "probe", int(layer))
        assert row is not None
        pred = np.asarray(loaded.predictions[pos], dtype=np.float64)[test]
        want = _by_hand(y, pred, loaded.entities["state"].to_numpy()[test])
        for stat in STATS:
            assert row[stat].point == pytest.approx(want[stat], rel=1e-6, abs=1e-9)
            assert row[stat].lo <= row[stat].point + 1e-9 or not np.isfinite(row[stat].lo)


def _planted(tiny, cache_root: Path, informative: bool) -> EntityDataset:  # type: ignore[no-untyped-def]
    """Places in four far-apart countries; inside each, an offset that is (or is not) a
    linear function of the tiny model's last-layer activations of the name."""
    from tests.conftest import synthetic_places

    base = synthetic_places(360, seed=4)
    store = build_activations(
        ActivationSpec(model="tiny-llama", dataset=base.name), base, tiny, cache_root / "scratch"
    )
    x = np.asarray(store.layer(2), dtype=np.float64)
    rng = np.random.default_rng(0)
    z = (x - x.mean(0)) @ rng.normal(size=(x.shape[1], 2))
    if not informative:
        z = rng.normal(size=z.shape)
    z /= z.std(axis=0)
    countries = np.array(["P", "Q", "R", "S"])[np.arange(len(x)) % 4]
    centres = {"P": (50.0, 0.0), "Q": (-20.0, 120.0), "R": (10.0, -70.0), "S": (-40.0, 30.0)}
    frame = base.frame.copy()
    frame["country"] = countries
    frame["lat"] = [centres[c][0] for c in countries] + 3.0 * z[:, 0]
    frame["lon"] = [centres[c][1] for c in countries] + 3.0 * z[:, 1]
    return EntityDataset(name="planted_countries", kind="space", frame=frame)


def test_the_build_stores_a_within_probe_that_finds_a_planted_signal(tiny, cache_root) -> None:  # type: ignore[no-untyped-def]
    data = _planted(tiny, cache_root, informative=True)
    res = build(BuildConfig("tiny-llama", data, cache_root=cache_root), loaded=tiny)
    assert res.path is not None
    files = read_manifest(res.path)["files"]
    assert {WITHIN, WITHIN_PREDICTIONS, BETWEEN_WITHIN} <= set(files)
    within = load_within(ProbeResults.load(res.path, verify=True))
    assert within is not None and within.grouping == "country" and within.n_groups == 4
    assert within.layer == 2  # chosen on training rows: the layer the signal was planted in
    probe, names = within.test_r2(), within.test_r2("name_only")
    assert probe.point > 0.9 and probe.lo > 0.8
    assert probe.lo > names.hi  # the names do not carry the planted offset
    curve = within.curve()
    assert list(curve["layer"]) == [0, 1, 2] and (curve["lo"] <= curve["r2"]).all()
    # the stored predictions are the offsets the table scores
    rows = within.rows & res.entities["is_test"].to_numpy(dtype=bool)
    z, p = within.offset[rows], within.predictions[0][rows]
    r2 = np.mean(1 - ((z - p) ** 2).sum(0) / ((z - z.mean(0)) ** 2).sum(0))
    assert r2 == pytest.approx(probe.point, abs=1e-5)


def test_no_within_signal_reads_no_within_skill(tiny, cache_root) -> None:  # type: ignore[no-untyped-def]
    data = _planted(tiny, cache_root, informative=False)
    res = build(BuildConfig("tiny-llama", data, cache_root=cache_root), loaded=tiny)
    within = load_within(res)
    assert within is not None
    assert within.test_r2().hi < 0.3
    # the overall probe still reads the countries: its R² is between groups
    table = load_between_within(res)
    assert table is not None
    row = decomposition_at(table, "country", "probe", res.best_layer())
    assert row is not None and row["r2"].point > 0.5 and row["r2_within"].point < 0.3


def test_within_probe_is_added_to_a_finished_result_from_its_activations(  # type: ignore[no-untyped-def]
    tiny, cache_root, capsys
) -> None:
    data = _planted(tiny, cache_root, informative=True)
    built = build(BuildConfig("tiny-llama", data, cache_root=cache_root), loaded=tiny)
    assert built.path is not None
    # the same result as a build before the within-group probe saved it
    old = ProbeResults.load(built.path)
    old.manifest = {k: v for k, v in old.manifest.items() if k not in ("within", "between_within")}
    folder = cache_root / "results" / "old__planted"
    old.save(folder)
    assert load_within(ProbeResults.load(folder)) is None
    assert main([str(folder), "--cache-root", str(cache_root)]) == 0
    assert "within probe added" in capsys.readouterr().out
    again = load_within(ProbeResults.load(folder, verify=True))
    first = load_within(built)
    assert again is not None and first is not None
    pd.testing.assert_frame_equal(again.table, first.table)
    assert np.array_equal(again.predictions, first.predictions, equal_nan=True)
    assert not add_within_probe(folder)  # already there
