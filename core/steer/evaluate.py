"""``python -m core steer``: how often a push along the probe changes the model's answer.

For each seed, a seeded sample of *test* entities; each is pushed toward another sampled
entity's target (one in a different country, state or borough; a year at least
`MIN_YEARS` away). For every layer and strength the push runs along the probe's
direction and along a random direction of the same norm, and the model's greedy answer
to a question ("... is located in the country of") is read:

- places: the answer *moves* when it names the target entity's country (state,
  borough); for world places the continent named is scored too;
- time: the answer moves when the year it names is closer to the target than the
  unsteered answer's year (or, if that named none, than the entity's true year).

Strength 0 is the model untouched. At the pre-registered cell (:func:`headline_layer`,
strength 1) each entity is also pushed toward a *shuffled* target (another sampled
entity's) and scored against its own: the chance level the headline is read against
(:mod:`core.steer.report`). Seeds are pooled in the summary; every push is a row of the
examples, with its seed and entity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.common.cache import (
    MANIFEST,
    CacheError,
    artifact_dir,
    atomic_dir,
    read_manifest,
    verify_files,
    write_manifest,
)
from core.common.config import SteerConfig
from core.common.depth import layer_at_depth
from core.extract.models import LoadedModel
from core.results.probe_results import ProbeResults, best_layer_of
from core.steer.answers import ContinentReader, PlaceReader, place_column, read_year
from core.steer.protocol import HEADLINE_STRENGTH, PROTOCOL, RULE, metric_of
from core.steer.run import DIRECTIONS, question_for, steer_batched, untouched_activations

log = logging.getLogger(__name__)

ARTIFACT = "steering"
DEPTHS: tuple[float, ...] = (0.25, 0.5, 0.75)
MIN_YEARS = 100.0
RANDOM_SEED_STRIDE = 1_000_003  # a seed's random directions: stride * seed + batch offset
SUMMARY = "summary.parquet"
EXAMPLES = "examples.parquet"


def steering_dir(cache_root: Path, results_key: str) -> Path:
    """Where the steering evaluation of one results key lives (one folder per key)."""
    return artifact_dir(cache_root, ARTIFACT, results_key)


def default_layers(layers: Sequence[int], n_layers: int) -> list[int]:
    """Layers at a quarter, half and three quarters of the depth (`layer_at_depth`)."""
    return sorted({layer_at_depth(layers, n_layers, d) for d in DEPTHS})


def pair_targets(
    entities: pd.DataFrame, kind: str, group: str | None, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(sampled rows, partner rows): each sampled entity's target is its partner's, a
    partner in another group (places) or at least MIN_YEARS away (time)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(entities), size=min(n, len(entities)), replace=False))
    partners = np.empty_like(rows)
    for i, row in enumerate(rows):
        for _ in range(1000):
            other = int(rng.choice(rows))
            if kind == "space":
                ok = other != row and (
                    group is None or entities[group].iloc[other] != entities[group].iloc[row]
                )
            else:
                gap = abs(float(entities["year"].iloc[other]) - float(entities["year"].iloc[row]))
                ok = gap >= MIN_YEARS
            if ok:
                break
        partners[i] = other
    return rows, partners


def _score(
    kind: str,
    texts: list[str],
    base: list[str],
    entities: pd.DataFrame,
    rows: np.ndarray,
    partners: np.ndarray,
    reader: PlaceReader | None,
    group: str | None,
    continents: ContinentReader | None = None,
) -> dict[str, np.ndarray]:
    if kind == "space" and reader is not None and group is not None:
        named = [reader.read(t) for t in texts]
        want = entities[group].to_numpy()[partners]
        own = entities[group].to_numpy()[rows]
        out = {
            "answer": np.array([v or "" for v in named], dtype=object),
            "moved": np.array([v == w for v, w in zip(named, want, strict=True)]),
            "kept": np.array([v == w for v, w in zip(named, own, strict=True)]),
        }
        if continents is not None:
            said = [continents.read(t, v) for t, v in zip(texts, named, strict=True)]
            target = entities["continent"].to_numpy()[partners]
            out["moved_continent"] = np.array([g == t for g, t in zip(said, target, strict=True)])
        return out
    years = [read_year(t) for t in texts]
    base_years = [read_year(t) for t in base]
    truth = entities["year"].to_numpy(np.float64)
    target = truth[partners]
    moved = []
    for got, before, own, want in zip(years, base_years, truth[rows], target, strict=True):
        ref = before if before is not None else own
        moved.append(got is not None and abs(got - want) < abs(ref - want))
    return {
        "answer": np.array([np.nan if v is None else v for v in years], dtype=np.float64),
        "moved": np.array(moved),
        "kept": np.array(
            [g is not None and abs(g - o) < 1 for g, o in zip(years, truth[rows], strict=True)]
        ),
    }


def headline_layer(results: ProbeResults) -> int:
    """The pre-registered layer: best training leave-one-out R² (test rows never
    consulted) among the layers a push can reach the answer from. A push after the last
    block changes only the entity's own last-layer states, which no later token reads,
    so that block is left out."""
    last = int(results.n_model_layers) - 1
    usable = results.metrics[results.metrics["layer"] != last]
    if usable[usable["split"] == "train"].empty:
        raise ValueError("no layer before the last block has a probe to steer along")
    return best_layer_of(usable)


def sample_test_pairs(
    entities: pd.DataFrame, kind: str, group: str | None, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, partners, shuffled): a seeded sample of test rows, each one's partner
    (:func:`pair_targets` among the sample) and a shuffled partner: another sampled
    entity's partner, by a seeded derangement of the sample (never the entity itself
    when that can be avoided). Indices into `entities`."""
    test = np.flatnonzero(entities["is_test"].to_numpy(bool))
    if len(test) < 3:
        raise ValueError(f"steering needs at least 3 test entities, got {len(test)}")
    sub, part = pair_targets(entities.iloc[test].reset_index(drop=True), kind, group, n, seed)
    rows, partners = test[sub], test[part]
    rng = np.random.default_rng([seed, 1])
    shuffled = partners
    for _ in range(100):
        order = rng.permutation(len(rows))
        shuffled = np.empty_like(partners)
        shuffled[order] = partners[np.roll(order, -1)]  # each gets the next one's partner
        if not (shuffled == rows).any():
            break
    return rows, partners, shuffled


def _runs(
    layers: Sequence[int], strengths: Sequence[float], head: int
) -> list[tuple[int, float, str]]:
    runs = [(layers[0], 0.0, "none")]
    runs += [(layer, float(s), d) for layer in layers for s in strengths for d in DIRECTIONS]
    return runs + [(head, HEADLINE_STRENGTH, "shuffled")]


def evaluate_steering(
    loaded: LoadedModel,
    results: ProbeResults,
    prompt_text: str,
    config: SteerConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(summary, examples, facts) of pushing seeded samples of `config.n` test entities
    (one sample per seed of `config.seeds`) along the probe of each of `config.layers`
    (default: a quarter, half and three quarters deep) at each of `config.strengths`;
    the pre-registered layer and strength 1 are always among the cells. `facts` (the
    manifest's) records `config` (default `SteerConfig()`) under "config"."""
    config = config or SteerConfig()
    n, seeds = config.n, config.seeds
    entities = results.entities
    kind = results.kind
    info = results.manifest.get("dataset_info") or {}
    group = place_column(entities, info.get("reference_column")) if kind == "space" else None
    if kind == "space" and group is None:
        raise ValueError(
            f"{results.dataset}: no country, state, borough or group column to read "
            "a steered answer against"
        )
    reader = PlaceReader(entities[group]) if group else None
    continents = (
        ContinentReader(entities) if group == "country" and "continent" in entities else None
    )
    question = config.question or question_for(results.dataset, kind)
    head = headline_layer(results)
    layers: list[int] = (
        default_layers(list(results.layers), results.n_model_layers)
        if config.layers is None
        else [int(v) for v in config.layers]
    )
    layers = sorted({*layers, head})
    strengths = sorted({float(s) for s in config.strengths if s != 0} | {HEADLINE_STRENGTH})
    runs = _runs(layers, strengths, head)
    y = entities[list(results.target_names)].to_numpy(np.float64)
    names_all = entities["name"].to_numpy().astype(str)
    frames = []
    done = 0
    for seed in seeds:
        rows, partners, shuffled = sample_test_pairs(entities, kind, group, n, int(seed))
        names = [str(v) for v in names_all[rows]]
        targets = y[partners]
        acts = untouched_activations(loaded, results, prompt_text, names)  # once per seed
        base: list[str] = []
        for layer, strength, direction in runs:
            toward = shuffled if direction == "shuffled" else partners
            out = steer_batched(
                loaded,
                results,
                prompt_text,
                names,
                layer,
                y[toward],
                strength=strength,
                direction="random" if direction == "random" else "probe",
                question=question,
                seed=RANDOM_SEED_STRIDE * int(seed),
                base=acts,
            )
            if direction == "none":
                base = out.continuations
            scores = _score(
                kind, out.continuations, base, entities, rows, partners, reader, group, continents
            )
            pos = results.layer_position(layer)
            frame = pd.DataFrame(
                {
                    "seed": int(seed),
                    "layer": layer if direction != "none" else -1,
                    "strength": strength,
                    "direction": direction,
                    "entity": rows,
                    "name": names,
                    "target_entity": partners,
                    "target_name": names_all[partners],
                    "pushed_toward": toward,
                    "continuation": out.continuations,
                    "answer": [str(v) for v in scores["answer"]],
                    "moved": scores["moved"],
                    "kept": scores["kept"],
                    "reading_error_at_layer": np.abs(out.readings[pos] - targets).mean(axis=1),
                    "reading_error_last_layer": np.abs(out.readings[-1] - targets).mean(axis=1),
                    "delta_norm": out.delta_norm,
                }
            )
            if "moved_continent" in scores:
                frame["moved_continent"] = scores["moved_continent"]
            frames.append(frame)
            done += 1
            if progress:
                progress(done, len(runs) * len(seeds))
            log.info(
                "steer seed %d %s L%d x%g: %d/%d moved",
                seed,
                direction,
                layer,
                strength,
                int(scores["moved"].sum()),
                len(names),
            )
    examples = pd.concat(frames, ignore_index=True)
    facts = {
        "config": config.to_dict(),
        "protocol": PROTOCOL,
        "rule": RULE,
        "question": question,
        "layers": layers,
        "strengths": strengths,
        "headline_layer": head,
        "headline_strength": HEADLINE_STRENGTH,
        "metric": metric_of(examples),
        "n": int(examples[examples["direction"] == "none"].groupby("seed").size().iloc[0]),
        "seeds": [int(s) for s in seeds],
        "test_only": True,
        "n_test": int(entities["is_test"].sum()),
        "answer_column": group,
        "min_years": MIN_YEARS if kind == "time" else None,
    }
    return summarise(examples, head), examples, facts


_ORDER = {"none": 0, "probe": 1, "random": 2, "shuffled": 3}


def summarise(examples: pd.DataFrame, head: int | None = None) -> pd.DataFrame:
    """One row per (layer, strength, direction), seeds pooled: counts (`moved`, `kept`,
    `moved_continent` where scored, and `success`: the headline's metric, with `rate`
    its share), mean reading errors and push norm, and whether it is the pre-registered
    cell."""
    metric = metric_of(examples)
    counts = {"moved": "sum", "kept": "sum"}
    if "moved_continent" in examples:
        counts["moved_continent"] = "sum"
    grouped = examples.groupby(["layer", "strength", "direction"], sort=False)
    summary = grouped.agg(
        {
            **counts,
            "reading_error_at_layer": "mean",
            "reading_error_last_layer": "mean",
            "delta_norm": "mean",
        }
    )
    summary.insert(0, "n", grouped.size())
    summary["seeds"] = grouped["seed"].nunique()
    summary = summary.reset_index()
    for column in counts:
        summary[column] = summary[column].astype(np.int64)
    summary["success"] = summary[metric].astype(np.int64)
    summary["rate"] = summary["success"] / summary["n"]
    summary["metric"] = metric
    summary["preregistered"] = (
        (summary["direction"] == "none")
        | ((summary["layer"] == head) & (summary["strength"] == HEADLINE_STRENGTH))
        if head is not None
        else False
    )
    rank = summary["direction"].map(_ORDER)
    summary = summary.assign(
        _none=rank != 0, _layer=summary["layer"], _strength=summary["strength"], _rank=rank
    ).sort_values(["_none", "_layer", "_strength", "_rank"])
    return summary.drop(columns=["_none", "_layer", "_strength", "_rank"]).reset_index(drop=True)


def save_steering(
    folder: Path, summary: pd.DataFrame, examples: pd.DataFrame, manifest: dict[str, Any]
) -> Path:
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        summary.to_parquet(tmp / SUMMARY, index=False)
        examples.to_parquet(tmp / EXAMPLES, index=False)
        write_manifest(tmp, {**manifest, "artifact": ARTIFACT})
    return folder


def load_steering(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]] | None:
    """(summary, examples, manifest) of a steering folder; None if there is none."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        return None
    try:
        manifest = read_manifest(folder)
        verify_files(folder, manifest, str(manifest.get("command", "")))
        return pd.read_parquet(folder / SUMMARY), pd.read_parquet(folder / EXAMPLES), manifest
    except (OSError, ValueError, CacheError) as exc:
        raise CacheError(f"{folder}: steering results cannot be read: {exc}") from exc
