"""Synthetic ProbeResults for tests, browser checks and benchmarks (never for findings).

Predictions approach the truth as depth grows (noise shrinks with layer), so maps
visibly sharpen along the layer slider; metrics are computed from them the same
way for every split. Probe weights are small random matrices whose outputs land
near the targets' mean, so a live probe through a random model stays on the map.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.common.cache import artifact_dir
from core.results.probe_results import ProbeResults

log = logging.getLogger(__name__)

CONTINENTS = {
    "EU": (50.0, 10.0),
    "AS": (30.0, 100.0),
    "NA": (40.0, -100.0),
    "SA": (-15.0, -60.0),
    "AF": (5.0, 20.0),
    "OC": (-25.0, 135.0),
}
BOROUGHS = {
    "Manhattan": (40.78, -73.97),
    "Brooklyn": (40.65, -73.95),
    "Queens": (40.72, -73.82),
    "Bronx": (40.85, -73.88),
    "Staten Island": (40.58, -74.15),
}
STATES = {
    "CA": (37.0, -120.0),
    "TX": (31.0, -99.0),
    "NY": (42.5, -75.5),
    "FL": (28.5, -82.0),
    "IL": (40.0, -89.0),
    "CO": (39.0, -105.5),
    "WA": (47.4, -120.5),
}


def _names(prefix: str, n: int, rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out = []
    for i in range(n):
        stem = "".join(rng.choice(letters, int(rng.integers(4, 10)))).capitalize()
        out.append(f"{stem} {prefix}{i}")
    return out


def space_entities(n: int, scope: str = "world", seed: int = 0) -> pd.DataFrame:
    """Entities clustered around continents, US states or NYC boroughs."""
    rng = np.random.default_rng(seed)
    centres, spread, col = {
        "world": (CONTINENTS, 12.0, "continent"),
        "usa": (STATES, 2.0, "state"),
        "nyc": (BOROUGHS, 0.025, "borough"),
    }[scope]
    keys = list(centres)
    group = rng.choice(keys, n)
    lat = np.array([centres[g][0] for g in group]) + rng.normal(0, spread, n)
    lon = np.array([centres[g][1] for g in group]) + rng.normal(0, spread * 1.3, n)
    names = _names(scope[0].upper(), n, rng)
    frame = pd.DataFrame(
        {
            "name": names,
            "text": names,
            "lat": np.clip(lat, -85, 85),
            "lon": (lon + 180) % 360 - 180,
            "group": group,
            col: group,
        }
    )
    frame["is_test"] = rng.random(n) < 0.2
    return frame


def time_entities(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    year = np.round(rng.uniform(1500, 2000, n))
    kinds = np.array(["painter", "writer", "scientist", "politician"])
    names = _names("P", n, rng)
    frame = pd.DataFrame(
        {
            "name": names,
            "text": names,
            "year": year.astype(float),
            "entity_type": rng.choice(kinds, n),
            "decade": (np.floor(year / 10) * 10).astype(int).astype(str),
            "century": (np.floor(year / 100) * 100).astype(int).astype(str),
        }
    )
    frame["group"] = frame["entity_type"]
    frame["is_test"] = rng.random(n) < 0.2
    return frame


def _metrics(
    y: np.ndarray, pred: np.ndarray, names: Sequence[str], kind: str, rng: np.random.Generator
) -> dict[str, float]:
    """The project's own metrics (one owner: core.probe.metrics), proximity on a small sample."""
    from core.probe.metrics import regression_metrics

    out = regression_metrics(y, pred, tuple(names), kind)
    if len(y) > 1500:
        rows = np.sort(rng.choice(len(y), 1500, replace=False))
        out["proximity_error"] = regression_metrics(y[rows], pred[rows], tuple(names), kind)[
            "proximity_error"
        ]
    return out


def synthetic_results(
    entities: pd.DataFrame,
    kind: str,
    n_layers: int = 6,
    d_model: int = 32,
    model: str = "smollm2-135m",
    dataset: str = "world_places",
    prompt: str = "empty",
    prompt_text: str = "",
    random_init: bool = False,
    layers: Sequence[int] | None = None,
    seed: int = 0,
    skill: float = 1.0,
) -> ProbeResults:
    """ProbeResults whose predictions sharpen with depth (`skill` 0 = no signal)."""
    rng = np.random.default_rng(seed)
    target_names: tuple[str, ...] = ("lat", "lon") if kind == "space" else ("year",)
    layer_arr = np.asarray(list(layers) if layers is not None else range(n_layers), dtype=int)
    y = entities[list(target_names)].to_numpy(np.float64)
    mean, std = y.mean(axis=0), y.std(axis=0) + 1e-9
    preds, rows = [], []
    is_test = entities["is_test"].to_numpy(bool)
    for pos, layer in enumerate(layer_arr):
        depth = (layer + 1) / max(n_layers, 1)
        signal = skill * min(0.92, 0.1 + 0.9 * depth)
        noise = rng.normal(0, 1, y.shape) * std * (1.05 - signal) * 0.8
        pred = mean + signal * (y - mean) + noise
        preds.append(pred)
        alpha = float(10 ** (4 - 3 * depth))
        for split, mask in (("train", ~is_test), ("test", is_test)):
            if mask.sum() < 3:
                continue
            m = _metrics(y[mask], pred[mask], target_names, kind, rng)
            rows.append(
                {
                    "layer": int(layer),
                    "split": split,
                    "alpha": alpha,
                    "alpha_at_edge": pos == 0,
                    "n": int(mask.sum()),
                    "loo_r2": m["r2"] - 0.01 if split == "train" else float("nan"),
                    **m,
                }
            )
    coef = rng.normal(0, 1, (len(layer_arr), len(target_names), d_model)) * (
        std[None, :, None] * 0.3 / np.sqrt(d_model)
    )
    intercept = np.repeat(mean[None, :], len(layer_arr), axis=0)
    results = ProbeResults(
        kind=kind,
        target_names=target_names,
        layers=layer_arr,
        n_model_layers=n_layers,
        entities=entities.reset_index(drop=True),
        predictions=np.stack(preds),
        coef=coef.astype(np.float32),
        intercept=intercept.astype(np.float32),
        alphas=np.array([10 ** (4 - 3 * (int(v) + 1) / n_layers) for v in layer_arr]),
        metrics=pd.DataFrame(rows),
        baselines=pd.DataFrame(
            [
                {"baseline": "name_only", "column": "text", "split": "test", "r2": 0.1},
                {"baseline": "group_mean", "column": "group", "split": "test", "r2": 0.05},
            ]
        ),
        manifest={
            "spec": {
                "model": model,
                "dataset": dataset,
                "prompt": prompt,
                "random_init": random_init,
                "limit": None,
            },
            "model_info": {"name": model, "n_layers": n_layers, "d_model": d_model},
            "dataset_info": {"name": dataset, "reference_column": "group"},
            "prompt_text": prompt_text,
            "synthetic": True,
            "command": (
                f"synthetic results (tests.support.synthetic) for {model} / {dataset} / {prompt}"
            ),
        },
    )
    return results


def save_synthetic(root: Path, results: ProbeResults, key: str | None = None) -> Path:
    """Save under ``<root>/results/<key>`` (a readable key by default)."""
    spec: dict[str, Any] = results.manifest["spec"]
    tag = "-rand" if spec.get("random_init") else ""
    key = key or f"{spec['model']}{tag}__{spec['dataset']}__{spec['prompt']}__synthetic"
    return results.save(artifact_dir(root, "results", key))


def demo_cache(root: Path, n: int = 400, n_layers: int = 6, d_model: int = 32) -> list[Path]:
    """A small cache with every kind of view: world/US/NYC maps, a time dataset,
    a second model and a random-init control (used by the app and browser tests)."""
    made = []
    world = space_entities(n, "world", seed=1)
    for model, seed, skill, rand in (
        ("smollm2-135m", 1, 1.0, False),
        ("gemma3-270m", 2, 0.8, False),
        ("smollm2-135m", 3, 0.05, True),
    ):
        res = synthetic_results(
            world,
            "space",
            n_layers,
            d_model,
            model,
            "world_places",
            seed=seed,
            skill=skill,
            random_init=rand,
        )
        made.append(save_synthetic(root, res))
    coords = synthetic_results(
        world,
        "space",
        n_layers,
        d_model,
        "smollm2-135m",
        "world_places",
        prompt="coords",
        prompt_text="What are the lat/lon coordinates of ",
        seed=4,
    )
    made.append(save_synthetic(root, coords))
    for scope, dataset, seed in (("usa", "us_places", 5), ("nyc", "nyc_places", 6)):
        res = synthetic_results(
            space_entities(n, scope, seed=seed),
            "space",
            n_layers,
            d_model,
            "smollm2-135m",
            dataset,
            seed=seed,
        )
        made.append(save_synthetic(root, res))
    people = synthetic_results(
        time_entities(n, seed=7),
        "time",
        n_layers,
        d_model,
        "smollm2-135m",
        "historical_figures",
        seed=7,
    )
    made.append(save_synthetic(root, people))
    return made


def synthetic_analysis(
    root: Path, results: ProbeResults, seed: int = 0, transfer: bool = True
) -> Path:
    """An ``analysis`` artifact for synthetic results (tests and browser checks only).

    Activations are the stored predictions written along random directions plus noise,
    so the probes recover the synthetic results; analyses then run as for real ones.
    """
    from core.analysis.run import analysis_dir, run_analysis
    from core.common.config import AnalysisConfig
    from core.data.schema import EntityDataset

    rng = np.random.default_rng(seed)
    preds = np.asarray(results.predictions, dtype=np.float64)
    d = int(results.coef.shape[-1])
    dirs = rng.normal(size=(preds.shape[-1], d))
    acts = {}
    for pos, layer in enumerate(results.layers):
        z = (preds[pos] - preds[pos].mean(0)) / (preds[pos].std(0) + 1e-9)
        acts[int(layer)] = z @ dirs + 0.3 * rng.normal(size=(preds.shape[1], d))
    group = (results.manifest.get("dataset_info") or {}).get("group_column") or "group"
    data = EntityDataset(
        name=results.dataset,
        kind=results.kind,  # type: ignore[arg-type]
        frame=results.entities,
        group_column=group,
    )
    other = (
        {"shuffled_prompt": lambda layer: acts[layer][:, rng.permutation(d)]} if transfer else None
    )
    analysis = run_analysis(
        acts.__getitem__,
        [int(v) for v in results.layers],
        data,
        AnalysisConfig(mlp_hidden=16, k_neurons=5, seed=seed),
        other_prompts=other,
        prompt=results.prompt,
    )
    key = results.path.name if results.path else str(results.manifest["key"])
    return analysis.save(
        analysis_dir(root, key),
        {
            "results_key": key,
            "synthetic": True,
            "command": "tests.support.synthetic.synthetic_analysis",
        },
    )
