"""The build: dataset -> activations -> one probe per layer -> ProbeResults.

Each stage is cached under its own key and reused; probe fitting is resumable per
layer (finished layers are kept in ``results/.partial-<key>/``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

from core.common.cache import CacheError, artifact_dir, build_lock, default_cache_root
from core.common.config import ActivationSpec, BuildConfig, ProbeSpec
from core.data.registry import load_dataset
from core.data.schema import EntityDataset
from core.extract.activations import Batch, default_batching, with_start_token
from core.extract.models import LoadedModel, load_model
from core.extract.store import (
    ActivationStore,
    FinishedBatch,
    build_activations,
    resolve_spec,
)
from core.probe.baselines import baseline_predictions, baseline_table, reference_column
from core.probe.globe import GLOBE_AXES, from_globe, to_globe
from core.probe.metrics import MAX_PROXIMITY_ENTITIES, split_metrics
from core.probe.ridge import RidgeProbe, loo_r2
from core.probe.ridge_torch import probe_device_for
from core.results.probe_results import ProbeResults
from core.results.upgrade import add_baseline_predictions

log = logging.getLogger(__name__)

StageProgress = Callable[[str, int, int], None]
# (store, layers to fit, targets, is_test, probe spec, probe device) -> (layer, layer_arrays)
# for each of those layers, in their order (``core.cluster.probes``: one Ray task each)
LayerFitter = Callable[
    [ActivationStore, list[int], np.ndarray, np.ndarray, ProbeSpec, str | None],
    Iterator[tuple[int, dict[str, np.ndarray]]],
]


class Cluster(Protocol):
    """Where a build runs when it is not this process alone (``core.cluster.RayBackend``)."""

    def describe(self) -> tuple[LoadedModel, tuple[int, int]]:
        """The model as the workers load it (its weights may stay there) and its batching."""
        ...

    def run_batches(
        self, batches: list[Batch], token_ids: list[list[int]], layers: list[int], dtype: str
    ) -> Iterator[FinishedBatch]:
        """A ``core.extract.store.BatchRunner``."""
        ...

    def fit_layers(
        self,
        store: ActivationStore,
        layers: list[int],
        y: np.ndarray,
        is_test: np.ndarray,
        probe_spec: ProbeSpec,
        probe_device: str | None,
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """A LayerFitter."""
        ...


def _verified_results(final: Path, locked: bool = False) -> ProbeResults | None:
    """Finished results at `final` whose files match their manifest; None if absent or broken.

    Results built before the baselines' predictions were stored gain them here
    (:func:`core.results.upgrade.add_baseline_predictions`: no model, no activations);
    `locked`: the caller holds the results' build lock. A broken folder (truncated or
    altered file, unreadable manifest) is logged and left to be rebuilt: the rebuild
    replaces it atomically. Layers left in ``.partial-<key>`` by a build killed after its
    final rename are removed.
    """
    if not (final / "manifest.json").is_file():
        return None
    try:
        if add_baseline_predictions(final, lock=not locked):
            log.info("%s: added the baselines' predictions", final.name)
        results = ProbeResults.load(final, verify=True)
    except CacheError as exc:
        log.warning("%s; rebuilding it", exc)
        return None
    shutil.rmtree(final.parent / f".partial-{final.name}", ignore_errors=True)
    return results


def fit_layer(
    x: np.ndarray,
    y: np.ndarray,
    is_test: np.ndarray,
    probe_spec: ProbeSpec,
    probe_device: str | None = None,
) -> RidgeProbe:
    probe = RidgeProbe.from_spec(probe_spec, device=probe_device)
    return probe.fit(x[~is_test], y[~is_test])


def layer_arrays(
    x: np.ndarray,
    y: np.ndarray,
    is_test: np.ndarray,
    probe_spec: ProbeSpec,
    probe_device: str | None = None,
) -> dict[str, np.ndarray]:
    """One layer's probe, fitted on the training rows, as the arrays its file keeps.

    `x` is float64 for the numpy solver, the stored dtype for a torch device."""
    n_targets = y.shape[1] if y.ndim > 1 else 1
    probe = fit_layer(x, y, is_test, probe_spec, probe_device)
    pred = probe.predict(x).reshape(len(y), n_targets)
    return {
        "pred": pred.astype(np.float32),
        "coef": np.asarray(probe.coef_, dtype=np.float32).reshape(n_targets, -1),
        "intercept": np.asarray(probe.intercept_, dtype=np.float32).reshape(n_targets),
        "alpha": np.asarray(probe.alpha_, dtype=np.float64),
        "at_edge": np.asarray(probe.alpha_at_edge_, dtype=np.bool_),
        "loo_r2": np.asarray(loo_r2(probe), dtype=np.float64),
    }


def layer_input(store: ActivationStore, layer: int, probe_device: str | None) -> np.ndarray:
    """A layer's rows as its solver reads them."""
    if probe_device is None:
        return np.asarray(store.layer(layer), dtype=np.float64)
    return np.asarray(store.layer(layer))  # stored dtype: float16 rows cross to the device


def fit_probes(
    store: ActivationStore,
    dataset: EntityDataset,
    probe_spec: ProbeSpec,
    cache_root: Path,
    progress: Callable[[int, int], None] | None = None,
    command: str = "",
    probe_device: str | None = None,
    layer_fitter: LayerFitter | None = None,
) -> ProbeResults:
    """Fit one probe per stored layer; resumable per layer; returns saved results.

    probe_device: None fits with numpy (the reference); a torch device ("cuda") fits
    there (`core.probe.ridge_torch`) from the stored float16 rows, the same to float64
    rounding. It is not part of the cache key; the manifest records it.
    layer_fitter: fits the missing layers elsewhere (a Ray cluster); each layer's file
    is still written here, as it arrives.
    """
    key = probe_spec.key(store.manifest["key"])
    with build_lock(cache_root, "results", key):
        return _fit_probes_locked(
            key,
            store,
            dataset,
            probe_spec,
            cache_root,
            progress,
            command,
            probe_device,
            layer_fitter,
        )


def _fit_probes_locked(
    key: str,
    store: ActivationStore,
    dataset: EntityDataset,
    probe_spec: ProbeSpec,
    cache_root: Path,
    progress: Callable[[int, int], None] | None,
    command: str,
    probe_device: str | None,
    layer_fitter: LayerFitter | None = None,
) -> ProbeResults:
    final = artifact_dir(cache_root, "results", key)
    existing = _verified_results(final, locked=True)
    if existing is not None:
        return existing
    partial = final.parent / f".partial-{key}"
    partial.mkdir(parents=True, exist_ok=True)
    y = dataset.targets()
    is_test = dataset.is_test()
    if is_test.all() or (~is_test).sum() < 2:
        raise ValueError(f"dataset {dataset.name!r}: too few training rows ({(~is_test).sum()})")
    names = dataset.target_names
    globe = probe_spec.target == "globe"
    if globe and dataset.kind != "space":
        raise ValueError(
            f"--target globe needs a space dataset; {dataset.name!r} is {dataset.kind}"
        )
    y_fit = to_globe(y) if globe else y  # what the ridge reads
    missing = [
        layer for layer in store.layers if not (partial / f"layer_{layer:03d}.npz").is_file()
    ]
    remote = None
    if layer_fitter is not None and missing:
        remote = layer_fitter(store, missing, y_fit, is_test, probe_spec, probe_device)
    for position, layer in enumerate(store.layers):
        layer_file = partial / f"layer_{layer:03d}.npz"
        if not layer_file.is_file():
            if remote is not None:
                fitted, arrays = next(remote)
                assert fitted == layer, (fitted, layer)
            else:
                x = layer_input(store, layer, probe_device)
                arrays = layer_arrays(x, y_fit, is_test, probe_spec, probe_device)
            tmp = layer_file.with_suffix(".tmp.npz")
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)  # type: ignore[arg-type]
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, layer_file)
        if progress:
            progress(position + 1, len(store.layers))

    preds, coefs, intercepts, alphas, rows = [], [], [], [], []
    for layer in store.layers:
        with np.load(partial / f"layer_{layer:03d}.npz", allow_pickle=False) as data:
            raw = data["pred"].astype(np.float64)
            pred = from_globe(raw) if globe else raw
            preds.append(pred.astype(np.float32) if globe else data["pred"])
            coefs.append(data["coef"])
            intercepts.append(data["intercept"])
            alphas.append(float(data["alpha"]))
            at_edge = bool(data["at_edge"])
            layer_loo = float(data["loo_r2"])
        for split, mask in (("train", ~is_test), ("test", is_test)):
            if mask.sum() < 2:
                continue
            metrics = split_metrics(y[mask], pred[mask], names, dataset.kind)
            if globe:  # how well each axis of the sphere is read, beside lat and lon
                for i, axis in enumerate(GLOBE_AXES):
                    metrics[f"r2_{axis}"] = float(r2_score(y_fit[mask, i], raw[mask, i]))
            rows.append(
                {
                    "layer": layer,
                    "split": split,
                    "alpha": alphas[-1],
                    "alpha_at_edge": at_edge,
                    "n": int(mask.sum()),
                    # training rows' leave-one-out R² (z units, mean over targets): the
                    # best layer is chosen on it
                    "loo_r2": layer_loo if split == "train" else float("nan"),
                    **metrics,
                }
            )
    log.info("fitting the name-only, group-mean and train-mean baselines")
    entities = dataset.entity_table()
    baseline_preds = baseline_predictions(entities, names, probe_spec)
    baselines = baseline_table(entities, names, dataset.kind, predictions=baseline_preds)
    results = ProbeResults(
        baselines=baselines,
        baseline_preds=baseline_preds,
        kind=dataset.kind,
        target_names=names,
        layers=np.asarray(store.layers, dtype=int),
        n_model_layers=int(store.manifest["n_layers_model"]),
        entities=dataset.entity_table(),
        predictions=np.stack(preds),
        coef=np.stack(coefs),
        intercept=np.stack(intercepts),
        alphas=np.asarray(alphas),
        metrics=pd.DataFrame(rows),
        manifest={
            "key": key,
            "spec": store.manifest["spec"],
            "probe": probe_spec.to_dict(),
            "activation_key": store.manifest["key"],
            "model_info": {
                "name": store.manifest["model"],
                "weights_hash": store.manifest["weights_hash"],
                "n_layers": int(store.manifest["n_layers_model"]),
                "d_model": store.d_model,
                "compute_dtype": store.manifest["compute_dtype"],
            },
            "dataset_hash": dataset.content_hash,
            "dataset_info": {
                "name": dataset.name,
                "source": dataset.source,
                "licence": dataset.licence,
                "group_column": dataset.group_column,
                "reference_column": reference_column(dataset.frame),
            },
            "prompt_text": store.manifest["prompt_text"],
            "max_proximity_entities": MAX_PROXIMITY_ENTITIES,
            "command": command,
            "probe_solver": "numpy" if probe_device is None else f"torch:{probe_device}",
        },
    )
    results.save(final)
    shutil.rmtree(partial, ignore_errors=True)
    return _with_within(final, store, results)


def _with_within(final: Path, store: ActivationStore, results: ProbeResults) -> ProbeResults:
    """Add the within-group probe (from the same activations) and the between/within
    decomposition (`core.results.within`) to freshly saved results; the caller holds
    their build lock."""
    from core.results.within import add_between_within, add_within_probe

    log.info("fitting the within-group probes")
    changed = add_within_probe(final, store.folder, lock=False)
    changed = add_between_within(final, lock=False) or changed
    return ProbeResults.load(final) if changed else results


def load_config_model(config: BuildConfig, cache_root: Path) -> LoadedModel:
    """The model a build config names (its seeded random-init copy for a control)."""
    return load_model(
        config.model,
        device=config.device,
        random_init=config.random_init,
        seed=ActivationSpec.seed,
        dtype=config.dtype,
        cache_root=cache_root,
        trust_remote_code=config.trust_remote_code,
        progress=(lambda msg: log.info(msg)),
    )


def check_loaded(config: BuildConfig, loaded: LoadedModel) -> None:
    """Raise a ValueError when `loaded` is not the model `config` names: a trained model
    written out as a random-init control (or the reverse), or another model's name in
    the manifests."""
    if loaded.name != config.model:
        raise ValueError(
            f"build: the loaded model is {loaded.name!r} but the config names "
            f"{config.model!r}; pass BuildConfig(model={loaded.name!r}, ...) or load "
            f"{config.model!r}"
        )
    if loaded.random_init != config.random_init:
        what = {True: "a random-init control", False: "the trained weights"}
        raise ValueError(
            f"build: the loaded {loaded.name!r} is {what[loaded.random_init]} but the config "
            f"asks for {what[config.random_init]} (random_init={config.random_init}); load "
            f"it with load_model({config.model!r}, random_init={config.random_init})"
        )


def build(
    config: BuildConfig,
    *,
    loaded: LoadedModel | None = None,
    progress: StageProgress | None = None,
    command: str = "",
    cluster: Cluster | None = None,
) -> ProbeResults:
    """Build whatever is missing for `config` and return its results.

    `loaded` reuses a model already in memory: its name and random-init flag must be
    `config`'s (:func:`check_loaded`, a ValueError otherwise); `command`
    is recorded in the manifests (default: the CLI line that rebuilds it). `cluster`
    computes the batches and fits the probes on its workers (``core.cluster``); this
    process keys, writes and checks everything as in a build of its own.
    """
    root = Path(config.cache_root) if config.cache_root else default_cache_root()
    command = command or config.command()

    def stage(name: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress(name, done, total)

    if isinstance(config.dataset, str):  # paper datasets download once, reporting bytes
        entity_data = load_dataset(config.dataset, cache_root=root, progress=stage("download"))
    else:
        entity_data = config.dataset
    entity_data = entity_data.head(config.limit)
    prompt = config.prompt or entity_data.default_prompt
    entity_data.prompt_text(prompt)  # fail early on an unknown prompt

    batching = None
    if cluster is not None and config.start_token != "auto":
        # the workers load their own copies, which start texts with the model's own token
        raise ValueError("a cluster build uses the model's own start token: drop --start-token")
    if loaded is None and cluster is not None:
        loaded, batching = cluster.describe()
    if loaded is None:
        loaded = load_config_model(config, root)
    check_loaded(config, loaded)
    loaded = with_start_token(loaded, config.start_token)
    # Batching is left out of the cache key, so choosing it by device changes no cache.
    spec = resolve_spec(
        config.activation_spec(
            entity_data.name,
            entity_data.default_prompt,
            batching or default_batching(loaded),
            config.dtype,
        ),
        loaded,
    )
    results_key = config.probe.key(spec.key(entity_data.content_hash, loaded.weights_hash))
    existing = _verified_results(artifact_dir(root, "results", results_key))
    if existing is not None:
        return existing
    store = build_activations(
        spec,
        entity_data,
        loaded,
        root,
        stage("activations"),
        command=command,
        runner=cluster.run_batches if cluster is not None else None,
    )
    return fit_probes(
        store,
        entity_data,
        config.probe,
        root,
        stage("probes"),
        command=command,
        probe_device=probe_device_for(config.probe_device),
        layer_fitter=cluster.fit_layers if cluster is not None else None,
    )


def summary_table(results: ProbeResults) -> pd.DataFrame:
    """Per-layer: layer, alpha, train LOO R², train R², test R², proximity error (test)."""
    metrics = results.metrics
    train = metrics[metrics["split"] == "train"].set_index("layer")
    test = metrics[metrics["split"] == "test"].set_index("layer")
    table = pd.DataFrame(
        {
            "alpha": test["alpha"],
            "edge": test["alpha_at_edge"].map({True: "*", False: ""}),
            "train_loo_r2": train.get("loo_r2", np.nan),
            "train_r2": train["r2"],
            "test_r2": test["r2"],
            "test_prox_err": test["proximity_error"],
        }
    )
    table.index.name = "layer"
    return table
