"""The constants the docs quote, written from the code into marked blocks.

``python -m core docs --write docs/how-it-works.md --write docs/protocol.md`` replaces
the text between each ``<!-- facts-<name>:start ... -->`` / ``<!-- facts-<name>:end -->``
pair with :func:`block_text`; a test fails when a file's block differs, so a number in
prose (rows analysed, MLP depths, the group-mean column, how many models ship) cannot
drift from the code that decides it. ``python -m core demo --help`` says the same.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from core.analysis.common import MAX_PROXIMITY_ROWS
from core.analysis.mlp import CV_ROWS, FOLDS, MAX_EXTENSIONS, WEIGHT_DECAYS, WIDTHS
from core.common.blocks import splice
from core.common.cache import default_cache_root, read_manifest
from core.common.config import AnalysisConfig, _option_text
from core.probe.baselines import REFERENCE_COLUMNS
from core.probe.metrics import MAX_PROXIMITY_ENTITIES
from core.results import shipped
from core.results.index import shipped_names

WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _count(n: int) -> str:
    return WORDS[n] if 0 <= n < len(WORDS) else f"{n:,}"


def _code(items: object) -> str:
    return ", ".join(f"`{v}`" for v in items)  # type: ignore[attr-defined]


def shipped_models() -> list[str]:
    """Every model with shipped builds, in build order."""
    return list(dict.fromkeys(b.model for b in shipped.demo_builds()))


def demo_summary() -> str:
    """One sentence of what ``python -m core demo`` rebuilds (its --help)."""
    models = shipped_models()
    return (
        f"Rebuild every shipped result ({_count(len(models))} models: {', '.join(models)}; "
        f"on the {_count(len(shipped.DEMO_DATASETS))} demo datasets, each with its "
        "random-init control on the same rows, the globe target and the check slice) "
        "and list them in results/SHIPPED"
    )


def _not_analysed() -> str:
    """The declared gaps in the shipped analyses, named ("" when there are none)."""
    gaps = sorted(shipped.NOT_ANALYSED)
    if not gaps:
        return ""
    named = ", ".join(f"`{m}` on `{d}`" for m, d in gaps)
    return f" (not {named}: `NOT_ANALYSED`)"


def _limits() -> str:
    parts = []
    for dataset in shipped.DEMO_DATASETS:
        limit = shipped.SAMPLE_LIMITS.get(dataset)
        parts.append(
            f"`{dataset}` on a seeded {limit:,}-entity sample (`--limit {limit}`)"
            if limit
            else f"`{dataset}` whole"
        )
    return "; ".join(parts)


def _controls_on_probe_rows() -> bool:
    builds = shipped.demo_builds()
    probes = {(b.model, b.dataset, b.limit) for b in builds if not b.random_init}
    return all((b.model, b.dataset, b.limit) in probes for b in builds if b.random_init)


def shipped_block() -> str:
    models = shipped_models()
    builds = shipped.demo_builds()
    model, dataset, limit = shipped.CHECK_SLICE
    controls = (
        "each on exactly its probe's entities and split (the same `--limit`)"
        if _controls_on_probe_rows()
        else "some on other rows than their probe's"
    )
    globe = sorted({b.model for b in builds if b.probe.target == "globe"})
    dtypes = sorted({(b.model, b.dtype) for b in builds if b.dtype != "auto"})
    analysed = list(dict.fromkeys(a.model for a in shipped.DEMO_ANALYSES))
    transfer = sum(a.transfer for a in shipped.DEMO_ANALYSES)
    depths = _option_text(shipped.ANALYSIS_MLP_DEPTHS)
    steering = ", ".join(f"`{m}` on `{d}`" for m, d in shipped.DEMO_STEERING)
    lines = [
        f"- **Models** ({_count(len(models))}): {_code(models)}. **Datasets** "
        f"({_count(len(shipped.DEMO_DATASETS))}): {_limits()}. Rows are stored in a seeded "
        "shuffled order, so a sample is representative.",
        f"- **Controls**: a random-init control for every (model, dataset), {controls}.",
        f"- **Globe target** beside lat/lon (`--target globe`) for {_code(globe)} on "
        f"{_code(shipped.GLOBE_DATASETS)}; the **check slice** is `{model}` on `{dataset}` "
        f"`--limit {limit}`, which a test rebuilds and compares.",
    ]
    if dtypes:
        lines.append(
            "- **Compute dtype**: "
            + ", ".join(f"`{m}` in {d}" for m, d in dtypes)
            + "; the others in float32 (`auto` on a CPU)."
        )
    lines += [
        f"- **Analyses** ({len(shipped.DEMO_ANALYSES)}, `DEMO_ANALYSES`): {_code(analysed)} "
        f"on the demo datasets{_not_analysed()}, {transfer} of them with every prompt for "
        f"the cross-prompt transfer matrix. Each runs on at most the first "
        f"{shipped.ANALYSIS_ROWS:,} entities of its build (a seeded sample; `--rows`), "
        "probes refitted on them; the "
        f"MLP probe is fitted at depth {depths} (as a fraction of the model's) plus the "
        f"layer the results chose (`--mlp-depths {depths}`), and "
        f"{_count(shipped.ANALYSIS_NEURONS)} neurons per layer and target are kept "
        f"(`--neurons {shipped.ANALYSIS_NEURONS}`). Without "
        f"these options `python -m core analyze` fits the MLP at every layer and keeps "
        f"{AnalysisConfig.k_neurons} neurons.",
        f"- **Steering** ({_count(len(shipped.DEMO_STEERING))} runs): {steering}, "
        f"{shipped.STEERING_N} test entities per seed.",
    ]
    return "\n".join(lines)


def mlp_block() -> str:
    return (
        "- a one-hidden-layer **MLP probe** (`--no-mlp` skips it; it is the slowest part). "
        "It reads the same features as the ridge (the raw activations, shifted and scaled "
        "by one global number, which changes no ridge prediction) with z-scored targets. "
        f"Its weight decay and width are chosen on training rows only (a seeded "
        f"subsample of {CV_ROWS:,} at most), by a seeded {FOLDS}-fold CV over the decays "
        f"{_option_text(WEIGHT_DECAYS)} and the widths {_option_text(WIDTHS)}; a choice at "
        f"a grid's edge extends that grid one step (at most {MAX_EXTENSIONS} times). The "
        "search runs at the layer with the best ridge training LOO R² and its choice is "
        "reused at every layer (`--mlp-cv every_layer` searches at each). The chosen decay "
        "is the `alpha` of the `mlp` rows of `controls.parquet`;"
    )


def proximity_block() -> str:
    return (
        "- **Two proximity errors, one definition** (`proximity_errors` in "
        "`core/probe/metrics.py`). `build` ranks within the split (n − 1, strict, at most "
        f"{MAX_PROXIMITY_ENTITIES:,} rows); the block hold-out of `analyze` ranks each block "
        "entity against every entity, with a 1e-12 margin on the dot products and a "
        f"{MAX_PROXIMITY_ROWS:,}-row cap on its split metrics (`core/analysis/common.py` "
        "says why), so the two can differ for one probe."
    )


def group_block(root: Path | None = None) -> str:
    """The group-mean column rule, and the column each shipped dataset gets (read from the
    shipped results' manifests)."""
    root = root or default_cache_root()
    columns: dict[str, str | None] = {}
    for name in shipped_names(root, "results") or ():
        manifest = read_manifest(root / "results" / name)
        info = manifest.get("dataset_info") or {}
        columns.setdefault(str(info.get("name")), info.get("reference_column"))
    got = "; ".join(f"`{d}` {c or 'none'}" for d, c in sorted(columns.items()))
    return (
        "- **Group mean**: each entity is predicted at its group's training-row mean; a "
        "group with no training row gets the training mean. The group column is the first "
        f"of {_code(REFERENCE_COLUMNS)} with more than one value (`REFERENCE_COLUMNS`). "
        f"The shipped datasets get: {got}."
    )


def control_block() -> str:
    rows = (
        "on exactly its probe's entities and split (the same `--limit`)"
        if _controls_on_probe_rows()
        else "on other rows than its probe's"
    )
    return (
        "- **Random-init control**: a separate build (`--random-init`). It uses the same "
        "architecture with weights from `torch.manual_seed(0)` and its own cache key. The "
        f"shipped demo builds it for every (model, dataset) {rows}; its test R² is read at "
        "its own best training layer."
    )


BLOCKS: dict[str, Callable[[], str]] = {
    "shipped": shipped_block,
    "mlp": mlp_block,
    "proximity": proximity_block,
    "group-mean": group_block,
    "control": control_block,
}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- facts-{name}:start (python -m core docs --write FILE) -->", (
        f"<!-- facts-{name}:end -->"
    )


def block_text(name: str) -> str:
    """A block's Markdown, each bullet wrapped at 88 columns as the docs' prose is."""
    return "\n".join(
        textwrap.fill(
            line, 88, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
        )
        for line in BLOCKS[name]().splitlines()
    )


def read_blocks(path: Path) -> dict[str, str]:
    """name -> the text between that block's markers in a file (its blocks only)."""
    text = Path(path).read_text()
    out = {}
    for name in BLOCKS:
        start, end = markers(name)
        if start in text and end in text:
            out[name] = text.split(start, 1)[1].split(end, 1)[0].strip()
    return out


def write_blocks(path: Path) -> list[str]:
    """Replace every facts block a Markdown file holds; returns their names."""
    text = Path(path).read_text()
    written = []
    for name in BLOCKS:
        start, end = markers(name)
        if start in text and end in text:
            text = splice(text, start, end, block_text(name))
            written.append(name)
    if not written:
        raise ValueError(f"{path}: no facts markers (<!-- facts-NAME:start ... -->)")
    Path(path).write_text(text)
    return written
