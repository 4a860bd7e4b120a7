"""End to end on a tiny model: dataset -> activations -> probes -> saved results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.common.cache import list_artifacts, read_manifest
from core.common.config import ActivationSpec, BuildConfig, ProbeSpec
from core.data.schema import EntityDataset
from core.extract.store import build_activations
from core.probe.metrics import regression_metrics
from core.results.build import build, fit_probes, summary_table
from core.results.probe_results import ProbeResults
from tests.support.interrupt import stop_after


def test_build_end_to_end_and_reuse(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    results = build(
        BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny, command="test"
    )
    assert results.predictions.shape == (3, len(places), 2)
    assert results.coef.shape == (3, 2, tiny.d_model)
    assert set(results.metrics["split"]) == {"train", "test"}
    assert len(results.metrics) == 6
    for column in (
        "r2",
        "r2_lat",
        "r2_lon",
        "spearman_lat",
        "mae_lat",
        "km_median",
        "proximity_error",
        "alpha",
    ):
        assert column in results.metrics
    # stored predictions are the probe applied to the stored activations
    store = build_activations(
        ActivationSpec(model="tiny-llama", dataset=places.name), places, tiny, cache_root
    )
    acts = np.stack([np.asarray(store.layer(layer), dtype=np.float32) for layer in store.layers])
    np.testing.assert_allclose(
        results.predict(acts), results.predictions.astype(np.float64), rtol=2e-2, atol=0.1
    )
    loaded = ProbeResults.load(results.path, verify=True)
    assert loaded.entities["name"].tolist() == places.frame["name"].tolist()
    assert loaded.manifest["prompt_text"] == ""
    assert loaded.manifest["model_info"]["n_layers"] == 3
    # a second build finds everything cached and returns the same artifact
    again = build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    assert again.path == results.path
    assert len(list_artifacts(cache_root, "results")) == 1
    table = summary_table(loaded)
    assert list(table.index) == [0, 1, 2]


def test_planted_signal_is_recovered(tiny, cache_root) -> None:  # type: ignore[no-untyped-def]
    """Targets that ARE a linear function of the last-layer activations give test R2 ~ 1."""
    from tests.conftest import synthetic_places

    base = synthetic_places(300, seed=2)
    store = build_activations(
        ActivationSpec(model="tiny-llama", dataset=base.name), base, tiny, cache_root
    )
    x = np.asarray(store.layer(2), dtype=np.float64)
    rng = np.random.default_rng(0)
    w = rng.normal(size=(x.shape[1], 2))
    z = (x - x.mean(0)) @ w
    frame = base.frame.copy()
    frame["lat"] = 20 * z[:, 0] / z[:, 0].std()
    frame["lon"] = 50 * z[:, 1] / z[:, 1].std()
    planted = EntityDataset(name="planted", kind="space", frame=frame)
    results = build(BuildConfig("tiny-llama", planted, cache_root=cache_root), loaded=tiny)
    test = results.metrics[(results.metrics["split"] == "test") & (results.metrics["layer"] == 2)]
    assert float(test["r2"].iloc[0]) > 0.95
    assert results.best_layer() == 2


@pytest.mark.usefixtures("one_torch_thread")
def test_probe_fit_resumes_per_layer(tiny, places, cache_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = ActivationSpec(model="tiny-llama", dataset=places.name)
    reference = fit_probes(
        build_activations(spec, places, tiny, tmp_path / "ref"),
        places,
        ProbeSpec(),
        tmp_path / "ref",
    )
    store = build_activations(spec, places, tiny, cache_root)
    with pytest.raises(KeyboardInterrupt):
        fit_probes(store, places, ProbeSpec(), cache_root, progress=stop_after(1))
    assert not list_artifacts(cache_root, "results")
    resumed = fit_probes(store, places, ProbeSpec(), cache_root)
    for name in ("predictions.npy", "coef.npy", "intercept.npy", "alphas.npy"):
        assert (resumed.path / name).read_bytes() == (reference.path / name).read_bytes()
    pd.testing.assert_frame_equal(resumed.metrics, reference.metrics)


def test_time_dataset(tiny, cache_root) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    names = [f"Person {i} {'x' * int(rng.integers(1, 9))}" for i in range(80)]
    frame = pd.DataFrame(
        {
            "name": names,
            "text": names,
            "year": rng.uniform(1500, 2000, 80),
            "is_test": np.arange(80) % 5 == 0,
        }
    )
    people = EntityDataset(
        name="people",
        kind="time",
        frame=frame,
        prompts={"empty": "", "when": "When did "},
        default_prompt="when",
    )
    results = build(BuildConfig("tiny-llama", people, cache_root=cache_root), loaded=tiny)
    assert results.predictions.shape == (3, 80, 1)
    assert results.predictions.dtype == np.float32  # decoded from float16 around an offset
    assert {"r2", "r2_year", "mae_year", "proximity_error"} <= set(results.metrics)
    assert read_manifest(results.path)["prompt_text"] == "When did "


def test_unknown_prompt_fails_before_any_work(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="no prompt 'nope'"):
        build(BuildConfig("tiny-llama", places, prompt="nope", cache_root=cache_root), loaded=tiny)
    assert not (cache_root / "activations").exists()


def test_probes_on_a_torch_device_match_numpy(tiny, places, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--probe-device: the torch solver (here on the CPU) gives the reference's results."""
    reference = build(BuildConfig("tiny-llama", places, cache_root=tmp_path / "numpy"), loaded=tiny)
    on_torch = build(
        BuildConfig("tiny-llama", places, cache_root=tmp_path / "torch", probe_device="cpu"),
        loaded=tiny,
    )
    assert read_manifest(reference.path)["probe_solver"] == "numpy"
    assert read_manifest(on_torch.path)["probe_solver"] == "torch:cpu"
    np.testing.assert_array_equal(on_torch.alphas, reference.alphas)
    np.testing.assert_allclose(on_torch.coef, reference.coef, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(on_torch.predictions, reference.predictions, rtol=1e-3, atol=1e-3)
    pd.testing.assert_frame_equal(on_torch.metrics, reference.metrics, rtol=1e-6)


def test_best_layer_is_chosen_on_training_rows_only() -> None:
    """Layer 1 has the best test R², layer 0 the best training leave-one-out R²: the
    choice must not look at the test rows."""
    metrics = pd.DataFrame(
        [
            {"layer": 0, "split": "train", "loo_r2": 0.6, "r2": 0.7},
            {"layer": 0, "split": "test", "loo_r2": np.nan, "r2": 0.5},
            {"layer": 1, "split": "train", "loo_r2": 0.4, "r2": 0.9},
            {"layer": 1, "split": "test", "loo_r2": np.nan, "r2": 0.8},
        ]
    )
    results = ProbeResults(
        kind="time",
        target_names=("year",),
        layers=np.array([0, 1]),
        n_model_layers=2,
        entities=pd.DataFrame(),
        predictions=np.zeros((2, 0, 1)),
        coef=np.zeros((2, 1, 4)),
        intercept=np.zeros((2, 1)),
        alphas=np.ones(2),
        metrics=metrics,
    )
    assert results.best_layer() == 0
    assert results.metric_at(0) == 0.5 and np.isnan(results.baseline("name_only"))


def test_build_stores_loo_r2_and_baselines(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    frame = places.frame.assign(country=places.frame["group"])
    data = EntityDataset(name="with_country", kind="space", frame=frame)
    results = build(BuildConfig("tiny-llama", data, cache_root=cache_root), loaded=tiny)
    train = results.metrics[results.metrics["split"] == "train"]
    assert train["loo_r2"].notna().all() and (train["loo_r2"] <= train["r2"] + 1e-9).all()
    again = ProbeResults.load(results.path)
    assert set(again.baselines["baseline"]) == {"name_only", "group_mean", "train_mean"}
    # every baseline's prediction of every entity is stored and gives its stored metrics
    assert again.baseline_names == ("name_only", "group_mean", "train_mean")
    y = again.entities[["lat", "lon"]].to_numpy()
    test = again.entities["is_test"].to_numpy(dtype=bool)
    for name in again.baseline_names:
        pred = again.baseline_prediction(name)
        assert pred is not None and pred.shape == y.shape
        got = regression_metrics(y[test], pred[test].astype(np.float64), ("lat", "lon"), "space")
        assert again.baseline(name) == pytest.approx(got["r2"], abs=1e-5)
    assert again.manifest["dataset_info"]["reference_column"] == "country"
    assert again.manifest["spec"]["start_token"] == "<s>"
    assert again.manifest["spec"]["dtype"] == "float32"
    assert results.manifest["probe"]["alpha_scale"] == "trace"


def test_build_records_the_chosen_start_token(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    default = build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    bare = build(
        BuildConfig("tiny-llama", places, cache_root=cache_root, start_token="none"), loaded=tiny
    )
    assert default.manifest["spec"]["start_token"] == "<s>"
    assert bare.manifest["spec"]["start_token"] == "none"
    assert default.path != bare.path
    assert not np.allclose(default.predictions, bare.predictions)
    assert "--start-token none" in bare.manifest["command"]


def test_build_refuses_a_loaded_model_that_is_not_the_configs(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    """A trained model passed with a random-init config would be written out as its
    control (and another model's name into the manifests): both are refused, and
    nothing is built."""
    import dataclasses

    from core.extract.models import load_model

    with pytest.raises(ValueError, match=r"the trained weights but the config asks for a random"):
        build(
            BuildConfig("tiny-llama", places, random_init=True, cache_root=cache_root), loaded=tiny
        )
    control = load_model("tiny-llama", random_init=True)
    assert control.random_init and not load_model("tiny-llama").random_init
    with pytest.raises(ValueError, match=r"is a random-init control but the config asks"):
        build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=control)
    renamed = dataclasses.replace(tiny, name="my-llama")
    with pytest.raises(ValueError, match=r"loaded model is 'my-llama' but the config names"):
        build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=renamed)
    assert not list_artifacts(cache_root, "activations")
    # a model built in code goes through under its own name, the control under its flag
    results = build(BuildConfig("my-llama", places, cache_root=cache_root), loaded=renamed)
    assert results.model == "my-llama"
    rand = build(
        BuildConfig("tiny-llama", places, random_init=True, cache_root=cache_root), loaded=control
    )
    assert rand.manifest["spec"]["random_init"] is True
