"""The document-start token as a measured choice (`python -m core start-tokens`).

Every embedded model is built with each candidate start (none, and the model's own
document token) on one fixed sample of every demo dataset. The choice per model is made
on training rows only, by a rule stated before any test number is read
(:data:`RULE`); test R² is reported beside it once chosen. A second check asks whether
the model still works under each start: the rank of the right next word after a few
fact prompts ("The capital of France is" -> " Paris"). A model whose facts collapse
under a start has lost what it leans on there (its attention sink) and is named so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from core.common.config import BuildConfig
from core.results.probe_results import ProbeResults, best_layer_of
from core.results.shipped import DEMO_DATASETS

log = logging.getLogger(__name__)

# The candidates of each embedded model: its document token, then no start at all.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "smollm2-135m": ("<|endoftext|>", "none"),
    "gemma3-270m": ("<bos>", "none"),
    "qwen2.5-coder-0.5b": ("<|endoftext|>", "none"),
    "qwen2.5-coder-1.5b": ("<|endoftext|>", "none"),
}
STUDY_DATASETS: tuple[str, ...] = DEMO_DATASETS
STUDY_LIMIT = 600  # the first rows of each dataset: a seeded sample, the same for all
# A start other than the model's document token is chosen only when it beats it by this
# much (mean train LOO R² over the datasets): smaller differences are noise at n = 600.
MIN_GAIN = 0.01
RULE = (
    "per model, the start with the highest mean over the six datasets of the training "
    "rows' leave-one-out R² at the layer those rows choose; the model's document token "
    f"is kept unless another start beats it by more than {MIN_GAIN}"
)
# Fact prompts whose next word a working model ranks first or near it.
FACTS: tuple[tuple[str, str], ...] = (
    ("The capital of France is", " Paris"),
    ("The capital of Japan is", " Tokyo"),
    ("The capital of Italy is", " Rome"),
    ("The capital of Germany is", " Berlin"),
    ("The Eiffel Tower is in the city of", " Paris"),
)
BROKEN_RANK = 10  # median rank of the right word above this: the model lost its footing
# An attention sink shows as a first position whose residual norm (middle block) is many
# times the other positions'; below this ratio the first position is no sink.
SINK_RATIO = 5.0
CHOICE_FILE = "start_tokens.json"  # under <cache>/studies/: the table and the choice


def study_builds(models: Iterable[str] = tuple(CANDIDATES)) -> list[BuildConfig]:
    from core.results.shipped import BUILD_DTYPES

    return [
        BuildConfig(
            model,
            dataset,
            limit=STUDY_LIMIT,
            start_token=start,
            dtype=BUILD_DTYPES.get(model, "auto"),
        )
        for model in models
        for start in CANDIDATES[model]
        for dataset in STUDY_DATASETS
    ]


def study_table(results: Sequence[ProbeResults]) -> pd.DataFrame:
    """model, start, dataset, layer (chosen on training rows), train LOO R², test R²."""
    rows = []
    for res in results:
        layer = best_layer_of(res.metrics)
        train = res.metrics[(res.metrics["split"] == "train") & (res.metrics["layer"] == layer)]
        rows.append(
            {
                "model": res.model,
                "start": res.meta.start_token or "?",
                "dataset": res.dataset,
                "layer": layer,
                "train_loo_r2": float(train["loo_r2"].iloc[0]),
                "test_r2": res.metric_at(layer),
            }
        )
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame) -> dict[str, str]:
    """The start of each model under :data:`RULE` (reads the training column only)."""
    out = {}
    for model, rows in table.groupby("model", sort=False):
        means = rows.groupby("start")["train_loo_r2"].mean()
        own = CANDIDATES[str(model)][0]
        best = str(means.idxmax())
        out[str(model)] = best if best != own and means[best] - means[own] > MIN_GAIN else own
    return out


def fact_checks(loaded: object, starts: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    """Per start: the rank (0 = top) of each fact's right next token, and the ratio of
    the first position's residual norm to the other positions' median at the middle
    block (a sink is many times larger)."""
    import torch

    from core.extract.activations import tokenize, with_start_token

    out: dict[str, dict[str, list[float]]] = {}
    for start in starts:
        model = with_start_token(loaded, start)  # type: ignore[arg-type]
        ranks, sinks = [], []
        for prompt, answer in FACTS:
            ids = tokenize(model, [prompt])[0]
            target = model.tokenizer(answer, add_special_tokens=False)["input_ids"][0]
            with torch.no_grad():
                out_ = model.model(torch.tensor([ids]), output_hidden_states=True)
            logits = out_.logits[0, -1].float()
            ranks.append(float((logits > logits[target]).sum()))
            # hidden_states[i + 1] is block i's output
            norms = out_.hidden_states[model.n_layers // 2 + 1][0].float().norm(dim=-1)
            sinks.append(float(norms[0] / norms[1:].median()))
        out[start] = {"ranks": ranks, "sink": sinks}
    return out


def fact_table(checks: dict[str, dict[str, dict[str, list[float]]]]) -> pd.DataFrame:
    rows = []
    for model, per_start in checks.items():
        for start, values in per_start.items():
            median = float(np.median(values["ranks"]))
            sink = float(np.median(values["sink"]))
            rows.append(
                {
                    "model": model,
                    "start": start,
                    "fact_ranks": ",".join(f"{v:.0f}" for v in values["ranks"]),
                    "median_rank": median,
                    "broken": median > BROKEN_RANK,
                    "sink_ratio": sink,
                    "sink": sink >= SINK_RATIO,
                }
            )
    return pd.DataFrame(rows)


def save_study(path: Path, table: pd.DataFrame, facts: pd.DataFrame) -> dict[str, object]:
    record = {
        "rule": RULE,
        "limit": STUDY_LIMIT,
        "choice": choose(table),
        "table": table.to_dict(orient="records"),
        "facts": facts.to_dict(orient="records"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def load_study(path: Path) -> dict[str, object]:
    return dict(json.loads(Path(path).read_text()))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a pipe would end the Markdown table cell


def study_markdown(record: dict[str, object]) -> str:
    """The docs/models.md block: model x start x dataset, train LOO R² (and, after the
    choice, test R²), the facts check and the choice."""
    table = pd.DataFrame(record["table"])
    choice = dict(record["choice"])  # type: ignore[call-overload]
    facts = pd.DataFrame(record["facts"]).set_index(["model", "start"])
    lines = [
        f"Rule (declared before any test number was read): {record['rule']}. "
        f"Sample: the first {record['limit']} rows of each dataset.",
        "",
        "| model | start | "
        + " | ".join(STUDY_DATASETS)
        + " | mean | facts (rank) | first-position norm | chosen |",
        "|---|---|" + "---|" * len(STUDY_DATASETS) + "---|---|---|---|",
    ]
    for (model, start), rows in table.groupby(["model", "start"], sort=False):
        by = rows.set_index("dataset")
        cells = []
        for dataset in STUDY_DATASETS:
            if dataset not in by.index:
                cells.append("")
                continue
            row = by.loc[dataset]
            cells.append(f"{row['train_loo_r2']:.2f} ({row['test_r2']:.2f})")
        fact = facts.loc[(model, start)] if (model, start) in facts.index else None
        fact_cell = sink_cell = ""
        if fact is not None:
            fact_cell = f"{fact['fact_ranks']}" + (" **broken**" if fact["broken"] else "")
            sink_cell = f"{fact['sink_ratio']:.0f}×" + ("" if fact["sink"] else " **no sink**")
        chosen = "**yes**" if choice.get(model) == start else ""
        mean = rows["train_loo_r2"].mean()
        lines.append(
            f"| {model} | `{_cell(str(start))}` | "
            + " | ".join(cells)
            + f" | {mean:.3f} | {fact_cell} "
            f"| {sink_cell} | {chosen} |"
        )
    lines += [
        "",
        "Each cell: train LOO R² at the layer the training rows choose (test R² at that "
        "layer in brackets, read only after the choice). Facts: the rank (0 = first) of "
        "the right next word after each of "
        + "; ".join(f'"{p}" -> "{a.strip()}"' for p, a in FACTS)
        + f"; a median rank above {BROKEN_RANK} is marked broken. First-position norm: the "
        "residual norm at the first position over the other positions' median, at the "
        f"middle block (median over the facts); below {SINK_RATIO:g}× the first position is "
        "no attention sink.",
    ]
    return "\n".join(lines)


def run_study(
    root: Path, models: Iterable[str] = tuple(CANDIDATES), say: object = log.info
) -> dict[str, object]:
    """Build every candidate (activations deleted after), check facts, save the record
    under ``<root>/studies/``; the record is returned."""
    import dataclasses
    import shutil
    import time

    from core.common.cache import artifact_dir
    from core.results.build import build, load_config_model

    tell = say if callable(say) else log.info
    results: list[ProbeResults] = []
    checks: dict[str, dict[str, dict[str, list[float]]]] = {}
    for model in models:
        items = [dataclasses.replace(b, cache_root=root) for b in study_builds([model])]
        loaded = load_config_model(items[0], root)
        checks[model] = fact_checks(loaded, CANDIDATES[model])
        tell(f"{model}: fact checks {checks[model]}")
        for item in items:
            start = time.perf_counter()
            res = build(item, loaded=loaded)
            key = res.manifest.get("activation_key")
            if key:
                shutil.rmtree(artifact_dir(root, "activations", key), ignore_errors=True)
            results.append(res)
            tell(
                f"  {item.command()}: {time.perf_counter() - start:.0f} s, "
                f"train LOO {study_table([res])['train_loo_r2'].iloc[0]:.3f}"
            )
        del loaded
    return save_study(root / "studies" / CHOICE_FILE, study_table(results), fact_table(checks))
