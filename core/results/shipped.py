"""The shipped demo results: which builds they are, how to rebuild them, their scoreboard.

``python -m core demo`` rebuilds every shipped result from scratch (activations are
built, used and then deleted: only results ship). ``python -m core scoreboard`` prints
the best-layer test R² of each shipped model x dataset as a Markdown table.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.common.cache import artifact_dir, default_cache_root, list_artifacts
from core.common.config import BuildConfig
from core.results.probe_results import ProbeResults

log = logging.getLogger(__name__)

DEMO_MODELS: tuple[str, ...] = ("smollm2-135m", "gemma3-270m")
DEMO_DATASETS: tuple[str, ...] = (
    "world_places",
    "us_places",
    "nyc_places",
    "historical_figures",
    "artworks",
    "headlines",
)
# The small slice that tests rebuild and compare bit for bit with the shipped copy.
CHECK_SLICE = ("smollm2-135m", "world_places", 400)


# The three largest datasets ship on a seeded sample (rows are stored in a seeded shuffled
# order, so --limit N is a representative sample): it keeps the shipped results small and
# the full rebuild to about an hour on a 2-core laptop. `python -m core build` without
# --limit gives the full dataset.
SAMPLE_LIMITS: dict[str, int] = {"us_places": 8000, "artworks": 8000, "headlines": 8000}
CONTROL_LIMIT = 8000


def demo_builds() -> list[BuildConfig]:
    builds = [
        BuildConfig(model, dataset, limit=SAMPLE_LIMITS.get(dataset))
        for model in DEMO_MODELS
        for dataset in DEMO_DATASETS
    ]
    builds.append(
        BuildConfig("smollm2-135m", "world_places", random_init=True, limit=CONTROL_LIMIT)
    )
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


def shipped_results(cache_root: Path | None = None) -> list[ProbeResults]:
    root = Path(cache_root) if cache_root else default_cache_root()
    return [ProbeResults.load(folder) for folder, _ in list_artifacts(root, "results")]


def scoreboard(results: list[ProbeResults], with_paper: bool = True) -> pd.DataFrame:
    """Best-layer test R² per (model, dataset) of `results`, then the paper's rows.

    The paper's Llama-2 figures (`core.results.published`) are at a fixed layer with its own
    prompts and entities; the row labels and values say so.
    """
    from core.results.published import paper_scoreboard_rows

    rows = []
    for res in results:
        spec = res.manifest.get("spec", {})
        if spec.get("limit") and (res.model, res.dataset, spec["limit"]) == CHECK_SLICE:
            continue  # the reproducibility slice, not a result
        model = res.model + (" (random init)" if spec.get("random_init") else "")
        test = res.metrics[res.metrics["split"] == "test"]
        best = test.loc[test["r2"].idxmax()]
        sample = f", n={spec['limit']:,}" if spec.get("limit") else ""
        rows.append(
            {
                "model": model,
                "dataset": res.dataset,
                "value": f"{best['r2']:.2f} (L{int(best['layer'])}/{res.n_model_layers}{sample})",
            }
        )
    if not rows:
        return pd.DataFrame()
    order = list(dict.fromkeys(sorted(r["model"] for r in rows)))
    if with_paper:
        paper = paper_scoreboard_rows()
        rows += paper
        order += list(dict.fromkeys(r["model"] for r in paper))
    table = pd.DataFrame(rows).pivot_table(
        index="model", columns="dataset", values="value", aggfunc="first"
    )
    table = table.loc[order]
    ordered = [d for d in DEMO_DATASETS if d in table.columns] + [
        d for d in table.columns if d not in DEMO_DATASETS
    ]
    return table[ordered]


def markdown_table(table: pd.DataFrame) -> str:
    """A plain GitHub Markdown table (no tabulate dependency)."""
    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.fillna("").iterrows():
        lines.append("| " + " | ".join([str(index)] + [str(v) for v in row]) + " |")
    return "\n".join(lines)


SCOREBOARD_START = "<!-- scoreboard:start (python -m core scoreboard --write README.md) -->"
SCOREBOARD_END = "<!-- scoreboard:end -->"


def write_scoreboard(path: Path, table_markdown: str) -> None:
    """Replace the text between the scoreboard markers of a Markdown file."""
    text = Path(path).read_text()
    if SCOREBOARD_START not in text or SCOREBOARD_END not in text:
        raise ValueError(f"{path}: no scoreboard markers ({SCOREBOARD_START} ... {SCOREBOARD_END})")
    head, rest = text.split(SCOREBOARD_START, 1)
    _, tail = rest.split(SCOREBOARD_END, 1)
    Path(path).write_text(f"{head}{SCOREBOARD_START}\n{table_markdown}\n{SCOREBOARD_END}{tail}")


def readme_scoreboard(path: Path) -> str:
    """The table currently between the markers (for the drift test)."""
    text = Path(path).read_text()
    return text.split(SCOREBOARD_START, 1)[1].split(SCOREBOARD_END, 1)[0].strip()
