"""``python -m core steer``: how often a push along the probe changes the model's answer.

A seeded sample of entities; each is pushed toward another sampled entity's target (one
in a different country, state or borough; a year at least `MIN_YEARS` away). For every
layer and strength the push runs along the probe's direction and along a random
direction of the same norm, and the model's greedy answer to a question ("... is
located in the country of") is read:

- places: the answer *moves* when it names the target entity's country (state,
  borough); for world places the continent named is scored too;
- time: the answer moves when the year it names is closer to the target than the
  unsteered answer's year (or, if that named none, than the entity's true year).

Strength 0 is the model untouched: the "none" row every other row is read against.
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
from core.extract.models import LoadedModel
from core.results.probe_results import ProbeResults
from core.steer.answers import ContinentReader, PlaceReader, place_column, read_year
from core.steer.run import DIRECTIONS, question_for, steer_batched, untouched_activations

log = logging.getLogger(__name__)

ARTIFACT = "steering"
STRENGTHS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
DEPTHS: tuple[float, ...] = (0.25, 0.5, 0.75)
MIN_YEARS = 100.0
SUMMARY = "summary.parquet"
EXAMPLES = "examples.parquet"


def steering_dir(cache_root: Path, results_key: str) -> Path:
    """Where the steering evaluation of one results key lives (one folder per key)."""
    return artifact_dir(cache_root, ARTIFACT, results_key)


def default_layers(layers: Sequence[int]) -> list[int]:
    """Layers at a quarter, half and three quarters of the depth."""
    layers = [int(v) for v in layers]
    return sorted({layers[round(d * (len(layers) - 1))] for d in DEPTHS})


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


def evaluate_steering(
    loaded: LoadedModel,
    results: ProbeResults,
    prompt_text: str,
    layers: Sequence[int] | None = None,
    strengths: Sequence[float] = STRENGTHS,
    n: int = 200,
    seed: int = 0,
    question: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(summary, examples, facts) of pushing a seeded sample along each layer's probe."""
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
    question = question or question_for(results.dataset, kind)
    layers = default_layers(list(results.layers)) if layers is None else [int(v) for v in layers]
    rows, partners = pair_targets(entities, kind, group, n, seed)
    names = [str(v) for v in entities["name"].to_numpy()[rows]]
    y = entities[list(results.target_names)].to_numpy(np.float64)
    targets = y[partners]
    runs = [(layers[0], 0.0, "none")] + [
        (layer, float(s), direction)
        for layer in layers
        for s in strengths
        if s != 0
        for direction in DIRECTIONS
    ]
    acts = untouched_activations(loaded, results, prompt_text, names)  # read once, reused
    summary_rows, example_frames = [], []
    base: list[str] = []
    for i, (layer, strength, direction) in enumerate(runs):
        out = steer_batched(
            loaded,
            results,
            prompt_text,
            names,
            layer,
            targets,
            strength=strength,
            direction="probe" if direction == "none" else direction,
            question=question,
            seed=seed,
            base=acts,
        )
        if direction == "none":
            base = out.continuations
        scores = _score(
            kind, out.continuations, base, entities, rows, partners, reader, group, continents
        )
        pos = results.layer_position(layer)
        err = np.abs(out.readings[pos] - targets).mean(axis=1)
        final = np.abs(out.readings[-1] - targets).mean(axis=1)
        row: dict[str, Any] = {
            "layer": layer if direction != "none" else -1,
            "strength": strength,
            "direction": direction,
            "n": len(names),
            "moved": int(scores["moved"].sum()),
            "rate": float(scores["moved"].mean()),
            "kept": int(scores["kept"].sum()),
            "reading_error_at_layer": float(err.mean()),
            "reading_error_last_layer": float(final.mean()),
            "delta_norm": float(out.delta_norm.mean()),
        }
        if "moved_continent" in scores:
            row["moved_continent"] = int(scores["moved_continent"].sum())
        summary_rows.append(row)
        example_frames.append(
            pd.DataFrame(
                {
                    "layer": row["layer"],
                    "strength": strength,
                    "direction": direction,
                    "name": names,
                    "target_name": entities["name"].to_numpy()[partners].astype(str),
                    "continuation": out.continuations,
                    "answer": [str(v) for v in scores["answer"]],
                    "moved": scores["moved"],
                }
            )
        )
        if progress:
            progress(i + 1, len(runs))
        log.info(
            "steer %s L%d x%g: %d/%d moved", direction, layer, strength, row["moved"], len(names)
        )
    facts = {
        "question": question,
        "layers": layers,
        "strengths": [float(s) for s in strengths],
        "n": len(names),
        "seed": seed,
        "answer_column": group,
        "min_years": MIN_YEARS if kind == "time" else None,
    }
    return pd.DataFrame(summary_rows), pd.concat(example_frames, ignore_index=True), facts


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


def steer_reading(summary: pd.DataFrame) -> str:
    """One line: the best push along the probe against the random control and no push."""
    pushed = summary[summary["direction"] == "probe"]
    none = summary[summary["direction"] == "none"]
    if pushed.empty:
        return "No pushes were run."
    best = pushed.sort_values(["rate", "strength"], ascending=[False, True]).iloc[0]
    control = summary[
        (summary["direction"] == "random")
        & (summary["layer"] == best["layer"])
        & (summary["strength"] == best["strength"])
    ]
    base = f"{int(none['moved'].iloc[0])} of {int(none['n'].iloc[0])}" if len(none) else "n/a"
    ctrl = f"{int(control['moved'].iloc[0])}" if len(control) else "n/a"
    return (
        f"Best push along the probe: layer {int(best['layer'])}, strength {best['strength']:g}, "
        f"{int(best['moved'])} of {int(best['n'])} answers moved toward the target; the random "
        f"direction of the same norm {ctrl}; no push {base}."
    )
