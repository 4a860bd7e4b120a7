"""The shipped demo results: which builds they are, how to rebuild them, their scoreboard.

``python -m core demo`` rebuilds every shipped result from scratch (activations are
built, used and then deleted: only results ship) and lists them in ``results/SHIPPED``.
``python -m core scoreboard`` prints, per shipped (dataset, model), the best layer's test
R² beside its baselines as a Markdown table, each with its 95% interval (a paired
bootstrap over test entities, :mod:`core.results.intervals`), and for time datasets the
same within eras.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from core.common.blocks import splice
from core.common.cache import artifact_dir, default_cache_root, list_artifacts
from core.common.config import BuildConfig, ProbeSpec
from core.probe.bootstrap import Interval
from core.results import intervals, scale
from core.results.index import SHIPPED_INDEX as SHIPPED_INDEX  # re-exported
from core.results.index import ResultSet, shipped_names
from core.results.index import write_shipped_index as write_shipped_index  # re-exported
from core.results.probe_results import ProbeResults

log = logging.getLogger(__name__)

DEMO_MODELS: tuple[str, ...] = ("smollm2-135m", "gemma3-270m")
DEMO_DATASETS: tuple[str, ...] = (
    "world_places",
    "us_places",
    "nyc_places",
    "historical_figures",
    "artworks",
    "dated_events",
)
# The small slice that tests rebuild and compare bit for bit with the shipped copy.
CHECK_SLICE = ("smollm2-135m", "world_places", 400)


# World and US places ship on a seeded sample of 8,000 (rows are stored in a seeded
# shuffled order, so --limit N is a representative sample): the full 40,669 / 22,996
# rows, each built again as a random-init control on the same rows, do not fit a demo
# rebuild on 2 CPU cores. The other datasets ship at full size.
SAMPLE_LIMITS: dict[str, int] = {"world_places": 8000, "us_places": 8000}
# The scale axis (core.results.scale): two sizes of one family, built on the same rows as
# the demo models (the same limits), so all four models compare on identical rows.
SCALE_MODELS: tuple[str, ...] = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
SHIPPED_MODELS: tuple[str, ...] = (*DEMO_MODELS, *SCALE_MODELS)
# The compute dtype each shipped model is built in (default float32). The Qwen models run
# in bfloat16: 7-15x faster than float32 on a CPU with AMX / avx512_bf16 units (about 5x
# slower on one without), which is what lets them ship at full size (bench/runs.md). It is
# declared here, not detected, so every machine builds the same cache keys.
BUILD_DTYPES: dict[str, str] = {model: "bfloat16" for model in SCALE_MODELS}
GLOBE_DATASETS: tuple[str, ...] = ("world_places",)
# The random-init control of every (model, dataset) runs on exactly its probe's entities
# and split (the same limit): a control on fewer rows is handicapped (name-only on world
# places falls from 0.32 to 0.23 at n = 2,000).


@dataclasses.dataclass(frozen=True)
class DemoAnalysis:
    """One shipped analysis (`python -m core analyze`) of a shipped build."""

    model: str
    dataset: str
    transfer: bool  # every prompt of the dataset, for the cross-prompt transfer matrix
    limit: int | None = None  # the build analysed: its --limit (None: the whole dataset)


# The analyses run on at most this many of a build's entities (its first rows: a seeded
# sample). The MLP probe's tuning (inner CV over decay and width) and the other prompts'
# forward passes are what limit them on a CPU: every shipped analysis fits the MLP at
# the chosen layer and the last one only (`ANALYSIS_MLP_DEPTHS`) and keeps
# `ANALYSIS_NEURONS` neurons per layer; `python -m core analyze` without these options
# does the full sweep. SMALL_ANALYSIS is the size at or below which a shipped analysis
# would fit the MLP at every layer (0: none does).
ANALYSIS_ROWS = 2000
ANALYSIS_MLP_DEPTHS: tuple[float, ...] = (1.0,)
SMALL_ANALYSIS = 0
ANALYSIS_NEURONS = 3  # top neurons per layer and target
# Shipped steering runs (`python -m core steer`, its defaults): the default model on one
# space and one time dataset.
DEMO_STEERING: tuple[tuple[str, str], ...] = (
    (DEMO_MODELS[0], "world_places"),
    (DEMO_MODELS[0], "historical_figures"),
)
STEERING_N = 100  # test entities per seed (three seeds pooled)
# strength 1 is the pre-registered one; 4 shows an overshoot beside it in the chart
STEERING_STRENGTHS: tuple[float, ...] = (1.0, 4.0)
# Every shipped model is analysed on every demo dataset, the transfer prompts included,
# except these: the 1.5B model's passes over their other prompts did not fit the CPU time
# of the round that built them (the findings say "not tested" with the command to run).
NOT_ANALYSED: frozenset[tuple[str, str]] = frozenset(
    {("qwen2.5-coder-1.5b", dataset) for dataset in ("us_places", "artworks", "dated_events")}
)
DEMO_ANALYSES: tuple[DemoAnalysis, ...] = tuple(
    DemoAnalysis(model, dataset, transfer=True, limit=SAMPLE_LIMITS.get(dataset))
    for model in SHIPPED_MODELS
    for dataset in DEMO_DATASETS
    if (model, dataset) not in NOT_ANALYSED
)


def demo_builds() -> list[BuildConfig]:
    """Every shipped build: each model and its random-init control on the same rows of
    every dataset, the globe target beside lat/lon, and the check slice."""
    builds = [
        BuildConfig(
            model,
            dataset,
            random_init=random_init,
            limit=SAMPLE_LIMITS.get(dataset),
            dtype=BUILD_DTYPES.get(model, "auto"),
        )
        for random_init in (False, True)
        for model in SHIPPED_MODELS
        for dataset in DEMO_DATASETS
    ]
    # the globe target beside lat/lon, on the same activations
    builds += [
        BuildConfig(
            model,
            dataset,
            limit=SAMPLE_LIMITS.get(dataset),
            probe=ProbeSpec(target="globe"),
            dtype=BUILD_DTYPES.get(model, "auto"),
        )
        for model in SHIPPED_MODELS
        for dataset in GLOBE_DATASETS
    ]
    model, dataset, limit = CHECK_SLICE
    builds.append(BuildConfig(model, dataset, limit=limit))
    return builds


def run_build(
    item: BuildConfig,
    cache_root: Path,
    keep_activations: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> ProbeResults:
    from core.results.build import build

    results = build(dataclasses.replace(item, cache_root=cache_root), progress=progress)
    if not keep_activations:
        activation_key = results.manifest.get("activation_key")
        if activation_key:
            shutil.rmtree(
                artifact_dir(cache_root, "activations", activation_key), ignore_errors=True
            )
    return results


def _identity(res: ProbeResults) -> tuple[object, ...]:
    meta = res.meta
    return (
        meta.model,
        meta.dataset,
        meta.prompt,
        meta.random_init,
        meta.target,
        _is_check_slice(res),
    )


def superseded(kept: Iterable[ProbeResults], built: Iterable[ProbeResults]) -> list[ProbeResults]:
    """`kept` without the results a new build replaces: same model, dataset, prompt,
    control flag and probe target (a control rebuilt on its probe's rows replaces the
    control on 2,000); the check slice is never replaced by a full build, nor it by one."""
    new = {_identity(r) for r in built}
    names = {Path(r.path).name for r in built if r.path is not None}
    return [
        r
        for r in kept
        if _identity(r) not in new or (r.path is not None and Path(r.path).name in names)
    ]


def shipped_results(cache_root: Path | None = None, everything: bool = False) -> list[ProbeResults]:
    """The shipped results (those the index lists); `everything`: every result folder."""
    root = Path(cache_root) if cache_root else default_cache_root()
    folders = [folder for folder, _ in list_artifacts(root, "results")]
    listed = shipped_names(root, "results")
    if not everything and listed is not None:
        folders = [folder for folder in folders if folder.name in listed]
    return [ProbeResults.load(folder) for folder in folders]


def _is_check_slice(res: ProbeResults) -> bool:
    limit = res.meta.limit
    return bool(limit) and (res.model, res.dataset, limit) == CHECK_SLICE


def _r2(value: float) -> str:
    return "" if value != value else f"{value:.2f}"


def _pm(value: Interval | None, fallback: float = float("nan")) -> str:
    """``0.35 ± 0.04`` (half the width of the 95% interval); the bare figure without one."""
    if value is None or not np.isfinite(value.lo):
        return _r2(value.point if value is not None else fallback)
    return value.compact()


def control_cell(control: ProbeResults | None) -> str:
    """The control's test R² at the layer its own training rows choose, ± its interval
    ("" without a control on the probe's rows: none is taken from other rows)."""
    if control is None:
        return ""
    return _pm(intervals.probe_r2(control, control.best_layer()))


def _probes(results: list[ProbeResults]) -> list[ProbeResults]:
    """Each model's headline probes (not the check slice, nor globe or control builds)."""
    return [
        r
        for r in results
        if not _is_check_slice(r) and r.probe_target == "latlon" and not r.meta.random_init
    ]


def _dataset_order(datasets: Iterable[str]) -> list[str]:
    seen = set(datasets)
    shown = [d for d in DEMO_DATASETS if d in seen]
    return shown + sorted(seen - set(shown))


def within_cells(res: ProbeResults) -> dict[str, str]:
    """The scoreboard's within-group columns (issue 29): the within-group probe's test R²
    at the layer its training rows choose ("not built" without its activations), and the
    overall probe's R²_within with the share of its R² the groups explain."""
    from core.results.within import decomposition_of, load_within

    within = load_within(res)
    probe = "not built"
    grouping = None
    if within is not None:
        grouping = within.grouping
        probe = f"{within.test_r2().compact()} ({grouping}, L{within.layer})"
    split = decomposition_of(res, res.best_layer(), grouping)
    overall = ""
    if split is not None:
        share = split["group_share"]
        shown = f"{share.point:.0%}" if np.isfinite(share.point) else "n/a"
        overall = f"{split['r2_within'].compact()}; groups {shown} of R²"
    return {"within-group probe R²": probe, "overall R² within groups": overall}


def scoreboard(results: list[ProbeResults], with_paper: bool = True) -> pd.DataFrame:
    """One row per (dataset, model): the best layer's test R² (layer chosen on the
    training rows' leave-one-out R²) beside what it means: the name-only, group-mean and
    random-init figures, and Spearman for time datasets; each ``point ± half-width`` of
    its 95% interval where predictions are stored. Then the paper's Llama-2 rows with
    its published baselines.
    """
    from core.results.published import paper_scoreboard_rows

    index = ResultSet(results)
    rows = []
    for res in _probes(results):
        layer = res.best_layer()
        control = index.control_of(res)
        group = (res.manifest.get("dataset_info") or {}).get("reference_column")
        group_mean = _pm(intervals.baseline_r2(res, "group_mean"), res.baseline("group_mean"))
        rho = ""
        if res.kind == "time":
            eras = intervals.era_scores(res, layer)
            rho = _pm(eras[0].spearman) if eras else _r2(res.metric_at(layer, "spearman"))
        rows.append(
            {
                "dataset": res.dataset,
                "model": res.model,
                "family": scale.family_label(res.model),
                "n": f"{len(res.entities):,}",
                "layer": f"L{layer}/{res.n_model_layers}",
                "test R²": _pm(intervals.probe_r2(res, layer)),
                "Spearman": rho,
                "name-only R²": _pm(
                    intervals.baseline_r2(res, "name_only"), res.baseline("name_only")
                ),
                "group-mean R²": f"{group_mean} ({group})" if group_mean else "",
                "random-init R²": control_cell(control),
                **within_cells(res),
            }
        )
    if not rows:
        return pd.DataFrame()
    shown = _dataset_order(r["dataset"] for r in rows)
    rows.sort(key=lambda r: (shown.index(r["dataset"]), r["model"]))
    if with_paper:
        paper = [r for r in paper_scoreboard_rows() if r["dataset"] in shown]
        rows += sorted(paper, key=lambda r: shown.index(r["dataset"]))
    table = pd.DataFrame(rows).fillna("")
    return table.set_index(["dataset", "model"])


def era_table(results: list[ProbeResults]) -> pd.DataFrame:
    """Per time (dataset, model) with a ``year``: all test rows, then each era's
    (:data:`core.results.intervals.ERAS`), at the layer chosen on training rows: test
    rows, test R² (around the era's own mean) and Spearman of the probe, and the
    name-only and group-mean R² within the same rows, each ± its 95% interval."""
    rows = []
    for res in _probes(results):
        if res.kind != "time":
            continue
        layer = res.best_layer()
        probe = intervals.era_scores(res, layer)
        if not probe:
            continue
        by_baseline = {}
        for name in ("name_only", "group_mean"):
            pred = res.baseline_prediction(name)
            if pred is not None:
                by_baseline[name] = {e.era: e for e in intervals.era_scores(res, layer, pred)}
        group = (res.manifest.get("dataset_info") or {}).get("reference_column")
        for score in probe:
            if score.n == 0:
                continue
            base = {k: v.get(score.era) for k, v in by_baseline.items()}
            name_only = base.get("name_only")
            group_mean = base.get("group_mean")
            rows.append(
                {
                    "dataset": res.dataset,
                    "model": res.model,
                    "era": score.era,
                    "test n": f"{score.n:,}",
                    "test R²": _pm(score.r2),
                    "Spearman": _pm(score.spearman),
                    "name-only R²": _pm(name_only.r2) if name_only else "",
                    "group-mean R²": (
                        f"{_pm(group_mean.r2)} ({group})" if group_mean and group_mean.r2 else ""
                    ),
                }
            )
    if not rows:
        return pd.DataFrame()
    shown = _dataset_order(r["dataset"] for r in rows)
    rows.sort(key=lambda r: (shown.index(r["dataset"]), r["model"]))  # stable: eras in order
    return pd.DataFrame(rows).set_index(["dataset", "model", "era"])


def globe_table(results: list[ProbeResults]) -> pd.DataFrame:
    """Each globe probe beside the lat/lon probe of the same entities (same model,
    dataset, prompt and rows), each at the layer it chooses on its training rows: test
    R² of lat and lon (and of x, y, z), median great-circle error, proximity error."""
    index = ResultSet(results)
    rows = []
    for globe in (r for r in results if r.probe_target == "globe"):
        twin = next(
            (
                r
                for r in index.same_rows(globe)
                if r.meta.model_id == globe.meta.model_id and r.probe_target == "latlon"
            ),
            None,
        )
        for label, res in (("lat/lon", twin), ("globe (x, y, z)", globe)):
            if res is None:
                continue
            layer = res.best_layer()
            axes = (
                " / ".join(_r2(res.metric_at(layer, f"r2_{a}")) for a in ("x", "y", "z"))
                if res is globe
                else ""
            )
            rows.append(
                {
                    "dataset": res.dataset,
                    "model": res.model,
                    "probe": label,
                    "n": f"{len(res.entities):,}",
                    "layer": f"L{layer}/{res.n_model_layers}",
                    "R² lat": _r2(res.metric_at(layer, "r2_lat")),
                    "R² lon": _r2(res.metric_at(layer, "r2_lon")),
                    "R² x / y / z": axes,
                    "median km": f"{res.metric_at(layer, 'km_median'):,.0f}",
                    "proximity error": f"{res.metric_at(layer, 'proximity_error'):.3f}",
                }
            )
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).set_index(["dataset", "model", "probe"])


INTERVAL_NOTE = (
    "± is half the width of the 95% interval: a percentile bootstrap over the test "
    "entities (1,000 seeded resamples) of the stored predictions."
)


def same_rows_table(results: list[ProbeResults]) -> pd.DataFrame:
    """Per dataset, every model on the rows the most models share (the scale sample where
    the scale models ship): test R² at the layer chosen on training rows, beside its
    random-init control on the same rows, each ± its 95% interval."""
    rows = []
    index = ResultSet(results)
    datasets = _dataset_order({r.dataset for r in _probes(results)})
    for dataset in datasets:
        shared = [r for r in index.shared_sample(dataset) if not r.meta.random_init]
        if len(shared) < 2:
            continue
        shared.sort(key=lambda r: (scale.family_of(r.model), scale.name_size(r.model) or 0.0))
        for res in shared:
            layer = res.best_layer()
            control = index.control_of(res)
            rows.append(
                {
                    "dataset": dataset,
                    "model": res.model,
                    "family": scale.family_label(res.model),
                    "n": f"{len(res.entities):,}",
                    "layer": f"L{layer}/{res.n_model_layers}",
                    "test R²": _pm(intervals.probe_r2(res, layer)),
                    "random-init R²": control_cell(control),
                }
            )
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).set_index(["dataset", "model"])


SCALE_NOTE = (
    "Scale is compared within one family only, on identical rows: the larger model's test "
    "R² minus the smaller's (each at the layer its training rows choose), the same "
    "difference between their random-init controls, and the gain beyond it, each with its "
    "paired 95% interval. A pair is not comparable unless the smaller model beats its own "
    "name-only and random-init controls; then the verdict holds when the gain and the gain "
    "beyond random init both beat 0 (outside the equivalence margin), does not hold when "
    "either does not, and is inconclusive otherwise."
)


def scale_markdown(results: list[ProbeResults]) -> str:
    """The scale-pair table with its rule ("" when no pair ships)."""
    table = scale.scale_table(results)
    if table.empty:
        return ""
    order = _dataset_order(table.index.get_level_values("dataset"))
    table = table.iloc[
        np.argsort([order.index(d) for d in table.index.get_level_values(0)], kind="stable")
    ]
    return "Scale within a family:\n\n" + markdown_table(table) + "\n\n" + SCALE_NOTE


def scoreboard_markdown(results: list[ProbeResults], full: bool = False) -> str:
    """The README's scoreboard (the shipped models, with their intervals, then the scale
    pairs); with `full`, docs/results.md's: the paper's rows too, every model on identical
    rows, the time datasets within eras, then (when globe probes ship) the globe vs
    lat/lon table."""
    text = markdown_table(scoreboard(results, with_paper=full)) + "\n\n" + INTERVAL_NOTE
    if any(scale.is_coder(r.model) for r in _probes(results)):
        text += " " + scale.CODER_NOTE + "."
    if any(r.model in SCALE_MODELS for r in _probes(results)):
        text += (
            f" {' and '.join(SCALE_MODELS)} are built in "
            f"{'/'.join(sorted(set(BUILD_DTYPES.values())))}, the other models in float32; "
            "every model and its control ship on the same rows."
        )
    if full:
        same = same_rows_table(results)
        if not same.empty:
            text += (
                "\n\nEvery model on identical rows (per dataset, the sample the most "
                "models share):\n\n" + markdown_table(same)
            )
    pairs = scale_markdown(results)
    if pairs:
        text += "\n\n" + pairs
    if not full:
        return text
    eras = era_table(results)
    if not eras.empty:
        text += (
            "\n\nTime datasets within eras (test rows; R² around each era's own mean, "
            "at the layer chosen on training rows):\n\n"
        )
        text += markdown_table(eras)
    globe = globe_table(results)
    if not globe.empty:
        text += "\n\nGlobe target vs lat/lon on the same entities (test split):\n\n"
        text += markdown_table(globe)
    return text


def markdown_table(table: pd.DataFrame) -> str:
    """A plain GitHub Markdown table (no tabulate dependency)."""
    names = [str(n or "") for n in table.index.names]
    header = names + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.fillna("").iterrows():
        keys = list(index) if isinstance(index, tuple) else [index]
        lines.append("| " + " | ".join([str(k) for k in keys] + [str(v) for v in row]) + " |")
    return "\n".join(lines)


SCOREBOARD_START = "<!-- scoreboard:start (python -m core scoreboard --write README.md) -->"
SCOREBOARD_END = "<!-- scoreboard:end -->"
FULL_START = "<!-- results:start (python -m core scoreboard --write docs/results.md) -->"
FULL_END = "<!-- results:end -->"
# each block a file may hold: (start marker, end marker, full table?)
BLOCKS = ((SCOREBOARD_START, SCOREBOARD_END, False), (FULL_START, FULL_END, True))


def write_scoreboard(path: Path, results: list[ProbeResults]) -> None:
    """Replace the text between each pair of scoreboard markers a Markdown file holds
    (the README's compact table, docs/results.md's full one)."""
    text = Path(path).read_text()
    found = False
    for start, end, full in BLOCKS:
        if start in text and end in text:
            text = splice(text, start, end, scoreboard_markdown(results, full))
            found = True
    if not found:
        raise ValueError(f"{path}: no scoreboard markers ({SCOREBOARD_START} or {FULL_START})")
    Path(path).write_text(text)


def readme_scoreboard(path: Path, full: bool = False) -> str:
    """The table currently between a file's markers (for the drift tests)."""
    start, end = (FULL_START, FULL_END) if full else (SCOREBOARD_START, SCOREBOARD_END)
    text = Path(path).read_text()
    return text.split(start, 1)[1].split(end, 1)[0].strip()
