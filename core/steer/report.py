"""What a steering run says: the pre-registered headline, its verdict, and the tables.

The headline is fixed before any answer is read (see :data:`RULE`):

- **cell**: the layer chosen on training rows (:func:`core.steer.evaluate.headline_layer`)
  at strength 1, where that layer's probe reads the target exactly;
- **entities**: test rows only, every seed's sample pooled;
- **reference**: chance, from shuffled targets: each entity pushed (strength 1, same layer)
  toward another sampled entity's target and scored against its own assigned target. A
  random direction of the same norm and the untouched model are shown beside it;
- **verdict**: the 95% interval of (steered − chance) success, by a bootstrap over
  entities (every push of an entity, in every seed and both arms, resampled together):
  "works" when it lies above 0, "fails" when below, else "inconclusive".

Every other cell (layers × strengths) is exploratory: it stays in the chart and the
tables, never in the headline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.common.blocks import splice
from core.common.config import BuildConfig, command_line
from core.steer.evaluate import load_steering, steering_dir
from core.steer.protocol import HEADLINE_STRENGTH, PROTOCOL, metric_of

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0

Run = tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]  # what load_steering returns

MODEL_LABELS = {"smollm2-135m": "SmolLM2-135M", "gemma3-270m": "Gemma-3-270M"}


def wilson_interval(
    moved: Sequence[int] | pd.Series | np.ndarray, n: Sequence[int] | pd.Series | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score intervals (low, high arrays) of moved / n, by scipy."""
    from scipy.stats import binomtest

    bounds = [
        binomtest(int(k), int(m)).proportion_ci(method="wilson")
        for k, m in zip(moved, n, strict=True)
    ]
    return (
        np.array([b.low for b in bounds], dtype=np.float64),
        np.array([b.high for b in bounds], dtype=np.float64),
    )


def bootstrap_difference(
    entity: np.ndarray,
    steered: np.ndarray,
    chance_entity: np.ndarray,
    chance: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """(difference, low, high): steered minus chance success rate and its 95% percentile
    interval, resampling entities with replacement (each entity's pushes in both arms,
    over all seeds, travel together, so the pairing and repeated entities are kept)."""
    ids = np.unique(np.concatenate([entity, chance_entity]))
    index = {int(v): i for i, v in enumerate(ids)}

    def per_entity(who: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.array([index[int(v)] for v in who], dtype=np.int64)
        hits = np.bincount(pos, weights=ok.astype(np.float64), minlength=len(ids))
        return hits, np.bincount(pos, minlength=len(ids)).astype(np.float64)

    s_hit, s_n = per_entity(entity, steered)
    c_hit, c_n = per_entity(chance_entity, chance)
    diff = s_hit.sum() / s_n.sum() - c_hit.sum() / c_n.sum()
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(ids), np.full(len(ids), 1.0 / len(ids)), size=resamples)
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = (weights @ s_hit) / (weights @ s_n) - (weights @ c_hit) / (weights @ c_n)
    draws = draws[np.isfinite(draws)]
    low, high = np.quantile(draws, [0.025, 0.975])
    return float(diff), float(low), float(high)


def verdict(low: float, high: float) -> str:
    """ "works" when the interval of (steered − chance) lies above 0, "fails" when below,
    "inconclusive" when it touches or straddles 0."""
    if low > 0:
        return "works"
    if high < 0:
        return "fails"
    return "inconclusive"


@dataclass(frozen=True)
class Arm:
    label: str
    success: int
    n: int
    low: float
    high: float

    def text(self) -> str:
        return (
            f"{self.success} of {self.n} ({100 * self.success / self.n:.1f}%, "
            f"95% {100 * self.low:.1f}–{100 * self.high:.1f}%)"
        )


@dataclass(frozen=True)
class Headline:
    """The pre-registered cell of one run, its references and verdict."""

    model: str
    dataset: str
    layer: int
    strength: float
    seeds: tuple[int, ...]
    metric_label: str
    steered: Arm
    chance: Arm
    random: Arm
    untouched: Arm
    difference: float
    low: float
    high: float
    verdict: str


def is_preregistered(manifest: dict[str, Any]) -> bool:
    return manifest.get("protocol") == PROTOCOL


def metric_label(manifest: dict[str, Any], metric: str) -> str:
    if metric == "moved_continent":
        return "name the target's continent"
    column = manifest.get("answer_column")
    if column:
        return f"name the target's {column}"
    return "name a year closer to the target than the untouched answer"


def headline_of(run: Run) -> Headline:
    """The pre-registered cell of a run made under :data:`PROTOCOL`, with its Wilson
    intervals and the bootstrap verdict. Raises ValueError for an older run."""
    _summary, examples, manifest = run
    if not is_preregistered(manifest):
        raise ValueError("this steering run predates the pre-registered protocol")
    layer = int(manifest["headline_layer"])
    strength = float(manifest.get("headline_strength", HEADLINE_STRENGTH))
    metric = metric_of(examples)
    cell = examples[(examples["layer"] == layer) & (examples["strength"] == strength)]
    arms = {
        "steered": cell[cell["direction"] == "probe"],
        "chance": cell[cell["direction"] == "shuffled"],
        "random": cell[cell["direction"] == "random"],
        "untouched": examples[examples["direction"] == "none"],
    }
    for label, rows in arms.items():
        if rows.empty:
            raise ValueError(f"the pre-registered cell has no {label!r} pushes")
    made = {}
    for label, rows in arms.items():
        k, n = int(rows[metric].sum()), len(rows)
        lows, highs = wilson_interval([k], [n])
        made[label] = Arm(label, k, n, float(lows[0]), float(highs[0]))
    diff, low, high = bootstrap_difference(
        arms["steered"]["entity"].to_numpy(),
        arms["steered"][metric].to_numpy(bool),
        arms["chance"]["entity"].to_numpy(),
        arms["chance"][metric].to_numpy(bool),
    )
    return Headline(
        model=str(manifest.get("model", "")),
        dataset=str(manifest.get("dataset", "")),
        layer=layer,
        strength=strength,
        seeds=tuple(int(s) for s in manifest.get("seeds", ())),
        metric_label=metric_label(manifest, metric),
        steered=made["steered"],
        chance=made["chance"],
        random=made["random"],
        untouched=made["untouched"],
        difference=diff,
        low=low,
        high=high,
        verdict=verdict(low, high),
    )


def _who(manifest: dict[str, Any]) -> str:
    model = str(manifest.get("model", ""))
    dataset = str(manifest.get("dataset", "")).replace("_", " ")
    return f"{MODEL_LABELS.get(model, model)} on {dataset}"


_VERDICTS = {
    "works": "steering works: the push along the probe beats chance",
    "fails": "steering fails: the push along the probe does worse than chance",
    "inconclusive": "inconclusive: the interval includes 0",
}


def headline(run: Run) -> str:
    """The one sentence the README and docs/steering.md print for a steering run."""
    _summary, _examples, manifest = run
    if not is_preregistered(manifest):
        return (
            f"{_who(manifest)}: this run predates the pre-registered protocol (one seed, "
            "training and test entities together, no shuffled-target chance), so it has no "
            f"headline; rebuild it with `{rebuild_command(manifest)}`."
        )
    h = headline_of(run)
    n_seeds = len(h.seeds)
    return (
        f"{_who(manifest)}, pre-registered cell (layer {h.layer}, strength {h.strength:g}), "
        f"test entities, {n_seeds} seed{'s' if n_seeds != 1 else ''} pooled: pushed along "
        f"the probe, {h.steered.text()} answers {h.metric_label}; chance (shuffled "
        f"targets) {h.chance.text()}, a random direction of the same norm "
        f"{h.random.text()}, untouched {h.untouched.text()}. Steered − chance "
        f"{100 * h.difference:+.1f} points, 95% interval {100 * h.low:+.1f} to "
        f"{100 * h.high:+.1f} (bootstrap over entities): {_VERDICTS[h.verdict]}."
    )


def rebuild_command(manifest: dict[str, Any]) -> str:
    """The run's recorded command with the pre-registered defaults (a legacy `--seed`
    dropped, since the protocol pools several seeds)."""
    command = str(manifest.get("command") or "")
    if not command:
        model, dataset = str(manifest.get("model")), str(manifest.get("dataset"))
        return command_line(["steer", *BuildConfig(model, dataset).argv(build_only=False)])
    return re.sub(r"\s--seed\s+\S+", "", command)


def cells_table(run: Run) -> pd.DataFrame:
    """Every cell of a run (exploratory beside the headline): pooled counts of the
    headline's metric with 95% Wilson intervals, per layer and strength, one column per
    direction (probe / random, and shuffled chance where it was run)."""
    summary, examples, manifest = run
    metric = metric_of(summary)
    count = metric if metric in summary else "moved"
    low, high = wilson_interval(summary[count], summary["n"])
    shown = summary.assign(
        cell=[
            f"{int(k)}/{int(n)} ({100 * lo:.0f}–{100 * hi:.0f}%)"
            for k, n, lo, hi in zip(summary[count], summary["n"], low, high, strict=True)
        ]
    )
    pre = int(manifest["headline_layer"]) if is_preregistered(manifest) else None
    rows = []
    none = shown[shown["direction"] == "none"]
    if len(none):
        rows.append({"layer": "untouched", "strength": "0", "probe": none["cell"].iloc[0]})
    pushed = shown[shown["direction"] != "none"]
    for (layer, strength), part in pushed.groupby(["layer", "strength"], sort=True):
        row: dict[str, str] = {
            "layer": str(int(layer)),
            "strength": f"{strength:g}",
        }
        for direction in ("probe", "random", "shuffled"):
            cell = part[part["direction"] == direction]
            if len(cell):
                row[direction] = cell["cell"].iloc[0]
        if pre is not None and int(layer) == pre and float(strength) == HEADLINE_STRENGTH:
            row["strength"] += " (pre-registered)"
        rows.append(row)
    table = pd.DataFrame(rows).fillna("")
    renamed = {
        "probe": "along the probe",
        "random": "random direction",
        "shuffled": "shuffled target (chance)",
    }
    return table.rename(columns=renamed).set_index(["layer", "strength"])


def _markdown(table: pd.DataFrame) -> str:
    from core.results.shipped import markdown_table

    return markdown_table(table)


def headlines_markdown(runs: Sequence[Run]) -> str:
    """The README's block: one bullet per run, its headline."""
    return "\n".join(f"- {headline(run)}" for run in runs)


def tables_markdown(runs: Sequence[Run]) -> str:
    """docs/steering.md's block: per run, the headline, then every cell as a table."""
    parts = []
    for run in runs:
        summary, _examples, manifest = run
        what = metric_label(manifest, metric_of(summary))
        if is_preregistered(manifest):
            seeds = ", ".join(str(s) for s in manifest.get("seeds", ()))
            sample = f"{int(manifest.get('n', 0))} test entities per seed, seeds {seeds}"
        else:
            sample = (
                f"{int(manifest.get('n', 0))} entities, training and test together, "
                f"seed {manifest.get('seed', 0)}"
            )
        parts.append(
            f"**{_who(manifest)}** (question {manifest.get('question')!r}; {sample}; "
            f"cells count answers that {what})\n\n"
            f"{headline(run)}\n\n{_markdown(cells_table(run))}"
        )
    return "\n\n".join(parts)


HEADLINE_START = "<!-- steering-headline:start (python -m core steer-report --write FILE) -->"
HEADLINE_END = "<!-- steering-headline:end -->"
TABLES_START = "<!-- steering-tables:start (python -m core steer-report --write FILE) -->"
TABLES_END = "<!-- steering-tables:end -->"
GLOBE_START = "<!-- globe-table:start (python -m core steer-report --write FILE) -->"
GLOBE_END = "<!-- globe-table:end -->"
BLOCKS = ((HEADLINE_START, HEADLINE_END), (TABLES_START, TABLES_END), (GLOBE_START, GLOBE_END))


def globe_markdown(root: Path) -> str:
    """docs/steering.md's globe block: each shipped globe probe beside its lat/lon twin."""
    from core.results.shipped import globe_table, shipped_results

    return _markdown(globe_table(shipped_results(root)))


def block_text(runs: Sequence[Run], start: str, root: Path | None = None) -> str:
    """What goes between a pair of markers (`root`: the cache, for the globe block)."""
    if start == HEADLINE_START:
        return headlines_markdown(runs)
    if start == TABLES_START:
        return tables_markdown(runs)
    if start == GLOBE_START:
        if root is None:
            raise ValueError("the globe block needs the cache root")
        return globe_markdown(root)
    raise ValueError(f"unknown block {start!r}")


def read_block(path: Path, start: str, end: str) -> str | None:
    """The text between a pair of markers in a file (None if it has none)."""
    text = Path(path).read_text()
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def write_blocks(path: Path, runs: Sequence[Run], root: Path | None = None) -> list[str]:
    """Replace the text between every pair of steering (and globe) markers in a Markdown
    file; returns the blocks written. Raises ValueError if the file has none."""
    text = Path(path).read_text()
    written = []
    for start, end in BLOCKS:
        if start not in text or end not in text:
            continue
        text = splice(text, start, end, block_text(runs, start, root))
        written.append(start)
    if not written:
        raise ValueError(f"{path}: no steering markers ({HEADLINE_START} or {TABLES_START})")
    Path(path).write_text(text)
    return written


def shipped_runs(root: Path) -> list[Run]:
    """The shipped steering runs (listed in cache/steering/SHIPPED), in DEMO_STEERING order."""
    from core.results.shipped import DEMO_STEERING, shipped_names

    order = [dataset for _model, dataset in DEMO_STEERING]
    runs = []
    for name in sorted(shipped_names(root, "steering") or ()):
        run = load_steering(steering_dir(root, name))
        if run is not None:
            runs.append(run)

    def rank(run: Run) -> tuple[int, str, str]:
        dataset = str(run[2].get("dataset", ""))
        known = order.index(dataset) if dataset in order else len(order)
        return known, dataset, str(run[2].get("model", ""))

    return sorted(runs, key=rank)


def steer_reading(summary: pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]) -> str:
    """One line for a run: given the whole run (summary, examples, manifest), its
    pre-registered headline (:func:`core.steer.report.headline`); given only a summary,
    the pre-registered cell's pooled counts (no verdict: that needs the examples). Never
    the best cell: the others are exploratory."""
    if isinstance(summary, tuple):
        return headline(summary)
    if "preregistered" not in summary or not summary["preregistered"].any():
        return (
            "This run predates the pre-registered protocol: every cell in the chart is "
            "exploratory (one seed, training and test entities together)."
        )
    cell = summary[summary["preregistered"]]
    parts = []
    for direction, label in (
        ("probe", "along the probe"),
        ("shuffled", "shuffled targets (chance)"),
        ("random", "random direction"),
        ("none", "untouched"),
    ):
        row = cell[cell["direction"] == direction]
        if len(row):
            parts.append(f"{label} {int(row['success'].iloc[0])} of {int(row['n'].iloc[0])}")
    pushed = cell[cell["direction"] == "probe"]
    where = (
        f"layer {int(pushed['layer'].iloc[0])}, strength {float(pushed['strength'].iloc[0]):g}"
        if len(pushed)
        else "n/a"
    )
    return f"Pre-registered cell ({where}, test entities, seeds pooled): " + "; ".join(parts) + "."
