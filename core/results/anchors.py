"""Published anchors: the embedded models on the paper's own data, beside published R².

`python -m core anchors --write docs/results.md` builds every embedded model on a seeded
sample of the paper's CSVs (world places with the empty prompt and with Godey et al.'s
question, the US, NYC and art CSVs with the empty prompt), with the paper's own split,
and writes a table of best-layer test R² (layer chosen on training rows) beside the
published numbers with parameter counts: Llama-2 (Gurnee & Tegmark 2023, a fixed middle
layer, the paper's main prompts) and Pythia (Godey et al. 2024, best layer, their
question). Only these summary numbers are committed, never the paper's rows.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.common.config import BuildConfig
from core.results.probe_results import ProbeResults
from core.results.published import PAPER_ROWS

log = logging.getLogger(__name__)

ANCHOR_LIMIT = 2000  # the first rows of each paper CSV: a seeded sample (hash order)
# Every model in bfloat16 here (not only the Qwen ones, as shipped): the anchors place a
# model on the published scale, where bfloat16's last-digit changes do not matter, and it
# is many times faster on a CPU with bf16 units.
ANCHOR_DTYPE = "bfloat16"
# (paper dataset, prompt): every embedded model is built on each
ANCHOR_CELLS: tuple[tuple[str, str], ...] = (
    ("paper_world_place", "empty"),
    ("paper_world_place", "where_world"),
    ("paper_us_place", "empty"),
    ("paper_nyc_place", "empty"),
    ("paper_art", "empty"),
)
# Parameters (billions) of the embedded models, from their model cards.
PARAMS_BILLION: dict[str, float] = {
    "smollm2-135m": 0.135,
    "gemma3-270m": 0.268,
    "qwen2.5-coder-0.5b": 0.494,
    "qwen2.5-coder-1.5b": 1.54,
}
GODEY = "Godey et al. 2024 (Pythia, best layer, 'Where is {name} in the world?')"


@dataclass(frozen=True)
class Anchor:
    model: str
    params_billion: float
    world_r2: float
    source: str


PYTHIA_ANCHORS: tuple[Anchor, ...] = (
    Anchor("Pythia-14M", 0.014, 0.343, GODEY),
    Anchor("Pythia-160M", 0.160, 0.553, GODEY),
    Anchor("Pythia-1B", 1.0, 0.679, GODEY),
    Anchor("Pythia-2.8B", 2.8, 0.750, GODEY),
)
LLAMA_ANCHORS: tuple[Anchor, ...] = tuple(
    Anchor(
        row.model,
        row.params_billion,
        row.test_r2["world_places"],
        f"Gurnee & Tegmark 2023 (layer {row.layer}/{row.n_layers}, 'coords' prompt)",
    )
    for row in PAPER_ROWS
)
PUBLISHED_ANCHORS: tuple[Anchor, ...] = PYTHIA_ANCHORS + LLAMA_ANCHORS


def anchor_builds(models: Iterable[str] = tuple(PARAMS_BILLION)) -> list[BuildConfig]:
    return [
        BuildConfig(model, dataset, prompt=prompt, limit=ANCHOR_LIMIT, dtype=ANCHOR_DTYPE)
        for model in models
        for dataset, prompt in ANCHOR_CELLS
    ]


def anchor_table(results: Sequence[ProbeResults]) -> pd.DataFrame:
    """One row per embedded model: parameters, then the test R² of each cell."""
    rows: dict[str, dict[str, object]] = {}
    for res in results:
        row = rows.setdefault(
            res.model, {"model": res.model, "params (B)": PARAMS_BILLION.get(res.model)}
        )
        layer = res.best_layer()
        row[f"{res.dataset} / {res.prompt}"] = res.metric_at(layer)
        row[f"{res.dataset} / {res.prompt} layer"] = f"L{layer}/{res.n_model_layers}"
    return pd.DataFrame(list(rows.values()))


def run_anchors(
    root: Path, models: Iterable[str] = tuple(PARAMS_BILLION), say: Callable[[str], None] = log.info
) -> list[ProbeResults]:
    """Build every anchor cell (activations deleted after) and return the results."""
    from core.common.cache import artifact_dir
    from core.results.build import build, load_config_model

    out = []
    for model in models:
        items = [dataclasses.replace(b, cache_root=root) for b in anchor_builds([model])]
        loaded = load_config_model(items[0], root)
        for item in items:
            res = build(item, loaded=loaded)
            key = res.manifest.get("activation_key")
            if key:
                shutil.rmtree(artifact_dir(root, "activations", key), ignore_errors=True)
            say(f"{item.command()}: test R² {res.metric_at(res.best_layer()):.3f}")
            out.append(res)
        del loaded
    return out


def anchors_markdown(table: pd.DataFrame) -> str:
    """The docs/results.md block: the embedded models on the paper's data, then the
    published anchors on one scale of parameters."""
    cells = [f"{d} / {p}" for d, p in ANCHOR_CELLS]
    head = ["model", "params (B)", *[c.replace("paper_", "") for c in cells]]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for _, row in table.sort_values("params (B)").iterrows():
        values = []
        for cell in cells:
            r2 = row.get(cell)
            layer = row.get(f"{cell} layer", "")
            values.append("" if r2 is None or pd.isna(r2) else f"{r2:.3f} ({layer})")
        lines.append(f"| {row['model']} | {row['params (B)']:g} | " + " | ".join(values) + " |")
    lines += [
        "",
        "Published world-places R² on the paper's full data (not rebuilt here):",
        "",
        "| model | params (B) | world R² | source |",
        "|---|---|---|---|",
    ]
    for anchor in sorted(PUBLISHED_ANCHORS, key=lambda a: a.params_billion):
        lines.append(
            f"| {anchor.model} | {anchor.params_billion:g} | {anchor.world_r2:.3f} "
            f"| {anchor.source} |"
        )
    lines += [
        "",
        f"Embedded models: the first {ANCHOR_LIMIT:,} rows of each paper CSV (a seeded "
        f"sample; the paper's own split), in {ANCHOR_DTYPE}, best layer chosen on "
        "training rows (in brackets), test R² (places: mean of lat and lon). Llama-2 "
        "reads a fixed middle layer with the paper's main prompt; Pythia is Godey et "
        "al.'s best layer with their question, the `where_world` column's prompt.",
    ]
    return "\n".join(lines)
