"""Analyses on small synthetic activations with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.analysis.controls import (
    constant_controls,
    layer_controls,
    shuffled_probe_predictions,
)
from core.analysis.holdout import hold_out_blocks
from core.analysis.mlp import MAX_EXTENSIONS, WEIGHT_DECAYS, fit_mlp_probe, mlp_predictions
from core.analysis.neurons import spearman_columns, top_neurons
from core.analysis.run import AnalysisResults, analysis_dir, run_analysis
from core.analysis.transfer import transfer_matrix
from core.common.config import AnalysisConfig
from core.data.schema import EntityDataset
from core.probe.baselines import mean_predictions as mean_baseline
from core.probe.baselines import name_only_predictions
from core.probe.metrics import proximity_errors, regression_metrics
from core.probe.ridge import RidgeProbe

SPACE = ("lat", "lon")


def planted(
    n: int = 400, d: int = 24, noise: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Activations with lat/lon written linearly along two random directions."""
    rng = np.random.default_rng(seed)
    y = np.column_stack([rng.uniform(-50, 60, n), rng.uniform(-170, 170, n)])
    dirs = rng.normal(size=(2, d))
    x = ((y - y.mean(0)) / y.std(0)) @ dirs + noise * rng.normal(size=(n, d))
    is_test = rng.random(n) < 0.25
    return x, y, is_test


def test_planted_direction_is_found_and_controls_are_near_zero() -> None:
    x, y, is_test = planted()
    rows, pred = layer_controls(x, y, is_test, SPACE, "space", layer=3)
    table = pd.DataFrame(rows).set_index(["control", "split"])
    assert table.loc[("probe", "test"), "r2"] > 0.99
    assert table.loc[("probe", "test"), "proximity_error"] < 0.02
    assert abs(table.loc[("shuffled", "test"), "r2"]) < 0.1
    assert table.loc[("shuffled", "test"), "proximity_error"] > 0.3
    assert (table["layer"] == 3).all()
    assert pred.shape == y.shape


def test_shuffled_probe_is_seeded() -> None:
    x, y, is_test = planted()
    a = shuffled_probe_predictions(x, y, is_test, seed=1)
    b = shuffled_probe_predictions(x, y, is_test, seed=1)
    c = shuffled_probe_predictions(x, y, is_test, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_mean_baseline_has_zero_train_r2() -> None:
    _, y, is_test = planted()
    pred = mean_baseline(y, is_test)
    m = regression_metrics(y[~is_test], pred[~is_test], SPACE, "space")
    assert m["r2"] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(pred, y[~is_test].mean(0))


def test_name_only_baseline_reads_spelling_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    n = 300
    year = rng.uniform(1000, 2000, n)
    # the century is spelled out in the name: TF-IDF character n-grams can read it
    words = [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "golf",
        "hotel",
        "india",
        "juliet",
    ]
    texts = [f"{words[int((v - 1000) // 100)]} {i}" for i, v in enumerate(year)]
    is_test = rng.random(n) < 0.3
    pred = name_only_predictions(texts, year, is_test)
    assert regression_metrics(year[is_test], pred[is_test], ("year",), "time")["r2"] > 0.8
    noise_texts = ["".join(rng.choice(list("abcdefghij"), 6)) for _ in range(n)]
    pred = name_only_predictions(noise_texts, year, is_test)
    assert regression_metrics(year[is_test], pred[is_test], ("year",), "time")["r2"] < 0.2
    rows = pd.DataFrame(constant_controls(texts, year, is_test, ("year",), "time"))
    assert set(rows["control"]) == {"mean", "name_only"} and (rows["layer"] == -1).all()


def test_block_holdout_linear_generalises_and_memorised_block_does_not() -> None:
    rng = np.random.default_rng(0)
    n, d = 600, 20
    blocks = np.array(["A", "B", "C", "D"])[rng.integers(0, 4, n)]
    centres = {"A": (50, 10), "B": (30, 100), "C": (40, -100), "D": (-25, 135)}
    y = np.array([centres[b] for b in blocks], dtype=float) + rng.normal(scale=5, size=(n, 2))
    is_test = rng.random(n) < 0.2
    # a truly linear code: generalises to unseen blocks
    x = (y - y.mean(0)) / y.std(0) @ rng.normal(size=(2, d)) + 0.01 * rng.normal(size=(n, d))
    out = hold_out_blocks(x, y, blocks, is_test, SPACE, "space")
    table, heldout = out.table, out.heldout
    assert sorted(table["block"]) == ["A", "B", "C", "D"]
    assert (table["heldout_proximity"] < 0.05).all()
    assert np.isfinite(heldout).all()
    # block identity one-hot: the nominal probe is fine, held-out blocks collapse
    onehot = (blocks[:, None] == np.array(["A", "B", "C", "D"])[None, :]).astype(float)
    x2 = np.hstack([onehot, 0.01 * rng.normal(size=(n, d))])
    table2 = hold_out_blocks(x2, y, blocks, is_test, SPACE, "space").table
    assert (table2["heldout_proximity"] > table2["nominal_proximity"]).all()
    assert (table2["heldout_proximity"] - table2["nominal_proximity"]).mean() > 0.3
    assert {"train_mean_lat", "train_mean_lon", "heldout_km_median"} <= set(table2.columns)


def test_block_holdout_nominal_scores_only_the_blocks_test_rows() -> None:
    """The nominal probe trained on the block's training rows: scoring them would flatter it."""
    rng = np.random.default_rng(3)
    n = 400
    blocks = np.array(["A", "B"])[rng.integers(0, 2, n)]
    y = rng.uniform([-60, -170], [60, 170], size=(n, 2))
    is_test = rng.random(n) < 0.25
    x = rng.normal(size=(n, 4))
    # a "nominal" probe that memorised its training rows and guesses on test rows
    nominal = np.where(is_test[:, None], rng.uniform([-60, -170], [60, 170], (n, 2)), y)
    table = hold_out_blocks(x, y, blocks, is_test, SPACE, "space", nominal_pred=nominal).table
    for block in ("A", "B"):
        row = table.set_index("block").loc[block]
        rows = np.flatnonzero((blocks == block) & is_test)
        expected = proximity_errors(y, nominal, "space", rows=rows, tolerance=1e-12).mean()
        assert row["n_test"] == len(rows)
        assert row["nominal_proximity"] == pytest.approx(expected)
        assert row["nominal_proximity"] > 0.2  # guessing, not the memorised training rows


def test_cross_prompt_transfer() -> None:
    x, y, is_test = planted()
    rng = np.random.default_rng(5)
    rotated = x @ np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))[0]
    table, pred = transfer_matrix(
        {"a": x, "a2": x * 1.0, "rot": rotated}, y, is_test, SPACE, "space", layer=2
    )
    assert pred.shape == (3, 3, int(is_test.sum()), 2)
    m = table.set_index(["train_prompt", "apply_prompt"])["r2"]
    assert len(table) == 9
    assert m[("a", "a")] > 0.99 and m[("a", "a2")] > 0.99 and m[("rot", "rot")] > 0.99
    assert m[("a", "rot")] < 0.5


def test_mlp_probe_learns_nonlinear_target() -> None:
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=(n, 6))
    y = 10 * np.abs(x[:, 0]) + 1990  # no linear read-out exists
    is_test = rng.random(n) < 0.25
    pred = mlp_predictions(x, y, is_test, hidden=64, seed=0)
    assert pred.shape == (n, 1)
    assert regression_metrics(y[is_test], pred[is_test], ("year",), "time")["r2"] > 0.9
    rows, _ = layer_controls(x, y, is_test, ("year",), "time", layer=0)
    assert pd.DataFrame(rows).query("control == 'probe' and split == 'test'")["r2"].iloc[0] < 0.1
    np.testing.assert_array_equal(pred, mlp_predictions(x, y, is_test, hidden=64, seed=0))


def test_mlp_weight_decay_is_chosen_on_training_rows_only() -> None:
    rng = np.random.default_rng(1)
    n = 240
    x = rng.normal(size=(n, 5)) * np.array([1.0, 30.0, 1.0, 1.0, 1.0])  # raw, unequal scales
    y = np.column_stack([np.abs(x[:, 0]), np.tanh(x[:, 2]) * 40]) + rng.normal(size=(n, 2))
    is_test = rng.random(n) < 0.25
    fit = fit_mlp_probe(x, y, is_test, hidden=16, seed=0)
    assert set(WEIGHT_DECAYS) <= set(fit.alphas) and fit.alpha in fit.alphas
    assert fit.cv_mse.shape == (len(fit.alphas),) and np.isfinite(fit.cv_mse).all()
    assert fit.alpha == fit.alphas[int(np.flatnonzero(fit.cv_mse == fit.cv_mse.min())[-1])]
    # an edge choice grew the grid past it until the choice was inside, or flags the edge
    assert fit.alpha_edge == "" or len(fit.alphas) == len(WEIGHT_DECAYS) + MAX_EXTENSIONS
    # test rows (targets and features) changed: the choice and the training fit are not
    y2, x2 = y.copy(), x.copy()
    y2[is_test] = rng.uniform(-1e3, 1e3, size=(int(is_test.sum()), 2))
    x2[is_test] *= -7.0
    other = fit_mlp_probe(x2, y2, is_test, hidden=16, seed=0)
    assert other.alpha == fit.alpha
    np.testing.assert_array_equal(other.cv_mse, fit.cv_mse)
    np.testing.assert_array_equal(other.predictions[~is_test], fit.predictions[~is_test])


def test_mlp_weight_decay_follows_the_data() -> None:
    """A clean target needs little decay; a few noisy rows need much more."""

    def chosen(n: int, noise: float) -> float:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(n, 6))
        y = np.abs(x[:, 0]) + noise * rng.normal(size=n)
        return fit_mlp_probe(x, y, np.zeros(n, dtype=bool), hidden=32, seed=0).alpha

    clean, noisy = chosen(600, 0.0), chosen(80, 3.0)
    assert clean < noisy and noisy >= WEIGHT_DECAYS[-1]


def test_planted_neuron_ranks_first() -> None:
    rng = np.random.default_rng(0)
    n, d = 300, 50
    x = rng.normal(size=(n, d))
    year = rng.uniform(1500, 2000, n)
    x[:, 17] = np.exp((year - 1500) / 100) + 0.1 * rng.normal(size=n)  # monotone, not linear
    x[:, 3] = -year + 30 * rng.normal(size=n)
    table = top_neurons(x, year, ("year",), layer=4, k=5)
    assert table.iloc[0]["neuron"] == 17 and table.iloc[0]["spearman"] > 0.99
    assert (table["basis"] == "residual").all()
    assert (top_neurons(x, year, ("year",), layer=4, k=5, basis="mlp")["basis"] == "mlp").all()
    with pytest.raises(ValueError, match="basis"):
        top_neurons(x, year, ("year",), layer=4, basis="attention")
    assert table.iloc[1]["neuron"] == 3 and table.iloc[1]["spearman"] < -0.9
    assert list(table["rank"]) == [0, 1, 2, 3, 4]
    from scipy.stats import spearmanr

    rho = spearman_columns(x[:, :5], year)
    assert rho[2] == pytest.approx(spearmanr(x[:, 2], year).statistic)


def _dataset(
    x_by_layer: dict[int, np.ndarray], y: np.ndarray, is_test: np.ndarray, groups: np.ndarray
) -> EntityDataset:
    names = [f"place {i}" for i in range(len(y))]
    frame = pd.DataFrame(
        {
            "name": names,
            "text": names,
            "lat": y[:, 0],
            "lon": y[:, 1],
            "is_test": is_test,
            "continent": groups,
        }
    )
    return EntityDataset(name="planted", kind="space", frame=frame, group_column="continent")


def test_run_analysis_saves_and_loads(tmp_path: Path) -> None:
    x, y, is_test = planted(n=240, d=16)
    rng = np.random.default_rng(3)
    groups = np.array(["EU", "AS", "NA"])[rng.integers(0, 3, len(y))]
    layers = {0: rng.normal(size=x.shape), 1: x}
    ds = _dataset(layers, y, is_test, groups)
    seen: list[tuple[str, int, int]] = []
    res = run_analysis(
        layers.__getitem__,
        [0, 1],
        ds,
        AnalysisConfig(mlp=True, mlp_hidden=16, k_neurons=3),
        other_prompts={"other": lambda layer: layers[layer] * 2.0},
        prompt="empty",
        progress=lambda *a: seen.append(a),
    )
    assert res.holdout_layers == [1]  # the planted layer is the best one
    assert set(res.controls["control"]) == {"mean", "name_only", "probe", "shuffled", "mlp"}
    mlp_rows = res.controls[res.controls["control"] == "mlp"]
    # one weight decay, chosen by inner CV at the best training layer, on every mlp row
    decays = res.manifest["mlp_weight_decays"]
    assert res.manifest["mlp_cv_layer"] == 1 and len(res.manifest["mlp_cv_mse"]) == len(decays)
    assert (mlp_rows["alpha"] == res.manifest["mlp_weight_decay"]).all()
    assert (mlp_rows["hidden"] == res.manifest["mlp_hidden"]).all()
    assert res.manifest["mlp_weight_decay"] in decays and set(WEIGHT_DECAYS) <= set(decays)
    assert res.manifest["mlp_hidden"] in res.manifest["mlp_widths"]
    assert (res.neurons["basis"] == "residual").all() and res.manifest["neuron_basis"] == "residual"
    assert res.heldout_pred.shape == (1, 240, 2)
    assert res.neuron_acts.shape == (len(res.neurons), 240) and len(res.neurons) == 2 * 2 * 3
    assert set(res.transfer["apply_prompt"]) == {"empty", "other"}
    assert seen[-1] == ("hold-out", 1, 1)
    folder = analysis_dir(tmp_path, "some-results-key")
    assert folder == tmp_path / "analysis" / "some-results-key"
    res.save(folder, {"command": "python -m core analyze ..."})
    # the per-entity arrays the verdicts' paired bootstrap reads
    n_test = int(is_test.sum())
    assert res.holdout_columns == ["continent"] and res.mlp_layers == [0, 1]
    assert res.holdout_errors is not None and res.holdout_errors.shape == (1, 1, 4, 240)
    assert res.heldout_ref_pred is not None and res.heldout_ref_pred.shape == (1, 2, 240, 2)
    assert res.mlp_pred is not None and res.mlp_pred.shape == (2, 240, 2)
    assert res.ridge_pred is not None and res.ridge_pred.shape == (2, 240, 2)
    assert res.transfer_pred is not None and res.transfer_pred.shape == (1, 2, 2, n_test, 2)
    assert res.prompts == ["empty", "other"]
    back = AnalysisResults.load(folder, verify=True)
    # the options, recorded JSON-safe
    assert back.manifest["config"] == {
        **AnalysisConfig().to_dict(),
        "mlp_hidden": 16,
        "k_neurons": 3,
    }
    pd.testing.assert_frame_equal(back.controls, res.controls)
    np.testing.assert_allclose(back.heldout_pred, res.heldout_pred, rtol=1e-6)
    for name in ("holdout_errors", "heldout_ref_pred", "mlp_pred", "ridge_pred", "transfer_pred"):
        np.testing.assert_allclose(getattr(back, name), getattr(res, name), rtol=1e-6)
    np.testing.assert_array_equal(back.is_test, is_test)
    assert back.group_column == "continent" and back.manifest["files"]


def test_holdout_layer_is_chosen_on_training_rows_only() -> None:
    from core.analysis.run import best_train_layer

    controls = pd.DataFrame(
        [
            {"control": "probe", "split": "train", "layer": 3, "r2": 0.9, "loo_r2": 0.60},
            {"control": "probe", "split": "test", "layer": 3, "r2": 0.4, "loo_r2": np.nan},
            {"control": "probe", "split": "train", "layer": 7, "r2": 0.8, "loo_r2": 0.55},
            {"control": "probe", "split": "test", "layer": 7, "r2": 0.7, "loo_r2": np.nan},
        ]
    )
    assert best_train_layer(controls) == [3]  # layer 7 wins on test rows, which are not used


def test_loo_r2_matches_brute_force_leave_one_out() -> None:
    from core.analysis.controls import ridge
    from core.probe.ridge import loo_r2

    x, y, is_test = planted(n=120, noise=1.0)
    train = ~is_test
    probe = ridge(x[train], y[train])
    z = (y[train] - y[train].mean(0)) / y[train].std(0)
    errors = []
    for i in range(int(train.sum())):
        keep = np.arange(int(train.sum())) != i
        refit = RidgeProbe(alphas=[probe.alpha_]).fit(x[train][keep], y[train][keep])
        pred = (refit.predict(x[train][i : i + 1]) - y[train].mean(0)) / y[train].std(0)
        errors.append(((pred - z[i]) ** 2).mean())
    assert loo_r2(probe) == pytest.approx(1 - np.mean(errors), abs=1e-6)


def test_holdout_blocks_follow_the_paper_then_entity_type() -> None:
    from core.analysis.run import holdout_columns
    from core.data.schema import EntityDataset

    frame = pd.DataFrame(
        {
            "name": ["a", "b", "c"],
            "text": ["a", "b", "c"],
            "lat": [1.0, 2.0, 3.0],
            "lon": [1.0, 2.0, 3.0],
            "is_test": [False, False, True],
            "group": ["Europe", "Asia", "Asia"],
            "country": ["France", "Japan", "Japan"],
            "entity_type": ["city", "city", "airport"],
        }
    )
    world = EntityDataset(name="world_places", kind="space", frame=frame, group_column="group")
    assert holdout_columns(world, None) == ["country", "entity_type"]
    assert holdout_columns(world, "group") == ["group"]


def test_run_analysis_ranks_mlp_neurons_when_given() -> None:
    x, y, is_test = planted(n=240, d=16)
    rng = np.random.default_rng(4)
    groups = np.array(["EU", "AS", "NA"])[rng.integers(0, 3, len(y))]
    ds = _dataset({0: x}, y, is_test, groups)
    hidden = rng.normal(size=(len(y), 40))
    hidden[:, 29] = np.exp(y[:, 0] / 30)  # a monotone "latitude neuron" among MLP units
    hidden[is_test, 5] = y[is_test, 1]  # tracks longitude on test rows only: never chosen
    res = run_analysis(
        {0: x}.__getitem__,
        [0],
        ds,
        AnalysisConfig(mlp=False, k_neurons=2),
        neuron_activations={0: hidden}.__getitem__,
    )
    assert (res.neurons["basis"] == "mlp").all() and res.manifest["neuron_basis"] == "mlp"
    lat = res.neurons[res.neurons["target"] == "lat"].iloc[0]
    assert lat["neuron"] == 29 and lat["spearman"] > 0.99
    assert 5 not in set(res.neurons[res.neurons["target"] == "lon"]["neuron"])
    np.testing.assert_array_equal(res.neuron_acts[0], hidden[:, 29])
    with pytest.raises(ValueError, match="rows of neuron activations"):
        run_analysis(
            {0: x}.__getitem__,
            [0],
            ds,
            AnalysisConfig(mlp=False),
            neuron_activations=lambda _: hidden[:10],
        )


def test_analyze_reads_mlp_neurons_of_the_loaded_model(
    tmp_path: Path, places: EntityDataset
) -> None:
    """`python -m core analyze` ranks the model's MLP neurons (down-projection inputs)."""
    from core.analysis.build import analyze
    from core.analysis.neurons import spearman_columns
    from core.common.config import BuildConfig
    from core.extract.mlp_hidden import last_token_mlp_hidden
    from tests.support.tiny import tiny_model  # "tiny-llama" of load_model, seed 0

    analysis, _ = analyze(
        BuildConfig("tiny-llama", places, cache_root=tmp_path),
        AnalysisConfig(mlp=False, k_neurons=3),
    )
    neurons = analysis.neurons
    assert analysis.manifest["neuron_basis"] == "mlp" and (neurons["basis"] == "mlp").all()
    train = ~places.is_test()
    hidden = last_token_mlp_hidden(tiny_model(), places.texts(), [1])[0]
    rows = neurons[(neurons["layer"] == 1) & (neurons["target"] == "lat")]
    rho = spearman_columns(hidden[train], places.targets()[train, 0])
    expected = np.argsort(-np.abs(rho), kind="stable")[:3]
    assert list(rows["neuron"]) == [int(v) for v in expected]
    assert int(neurons["neuron"].max()) < hidden.shape[1]
    back = AnalysisResults.load(analysis.path, verify=True)  # type: ignore[arg-type]
    assert (back.neurons["basis"] == "mlp").all()


def test_analyze_rebuilds_activations_that_shipped_results_dropped(
    tmp_path: Path, places: EntityDataset
) -> None:
    """Shipped results keep no activations: analyze rebuilds them under the same key."""
    import shutil

    from core.analysis.build import analyze
    from core.common.cache import artifact_dir
    from core.common.config import BuildConfig
    from core.results.build import build

    config = BuildConfig("tiny-llama", places, cache_root=tmp_path)
    results = build(config)
    folder = artifact_dir(tmp_path, "activations", results.manifest["activation_key"])
    shutil.rmtree(folder)
    analysis, again = analyze(config, AnalysisConfig(mlp=False, k_neurons=2))
    assert again.manifest["key"] == results.manifest["key"]
    assert (folder / "manifest.json").is_file() and len(analysis.controls) > 0


def test_analyze_extracts_only_the_analysed_rows_of_a_shipped_build(
    tmp_path: Path, places: EntityDataset
) -> None:
    """With `rows` below the build's size and its activations dropped, analyze extracts
    those rows only (not the whole build again), and analyses them as it would have read
    them from the whole build's activations."""
    import shutil

    from core.analysis.build import analyze
    from core.common.cache import artifact_dir
    from core.common.config import BuildConfig
    from core.extract.store import ActivationStore
    from core.results.build import build

    rows = len(places.frame) - 7
    options = AnalysisConfig(mlp=False, k_neurons=2, rows=rows)
    kept_root, dropped_root = tmp_path / "kept", tmp_path / "dropped"
    kept, _ = analyze(BuildConfig("tiny-llama", places, cache_root=kept_root), options)
    config = BuildConfig("tiny-llama", places, cache_root=dropped_root)
    results = build(config)
    full = artifact_dir(dropped_root, "activations", results.manifest["activation_key"])
    shutil.rmtree(full)
    dropped, again = analyze(config, options)
    assert again.manifest["key"] == results.manifest["key"]
    assert not full.exists()
    stores = [
        ActivationStore(p)
        for p in (dropped_root / "activations").iterdir()
        if (p / "manifest.json").is_file()
    ]
    assert [len(s.layer(s.layers[0])) for s in stores] == [rows]
    assert dropped.n_entities == kept.n_entities == rows
    numeric = kept.controls.select_dtypes("number").columns
    np.testing.assert_allclose(
        dropped.controls[numeric].to_numpy(float),
        kept.controls[numeric].to_numpy(float),
        rtol=1e-4,
        atol=1e-5,
    )
