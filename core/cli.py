"""Command line: ``python -m core <command>`` (``--help`` on each lists its options).

build         activations and one ridge probe per layer (resumable; --ray on a cluster)
analyze       controls, block hold-out, MLP probe, neurons, cross-prompt transfer
steer         push entities along a layer's probe direction and score the answers
steer-report  print a saved steering run
list          caches with their sizes (unfinished builds included; --prune)
datasets      every dataset: source, rows, target, test fraction
models        the registered models and whether they are converted
prepare       convert a registered GGUF model once (later loads take seconds)
demo          rebuild every shipped result, analysis and steering run
scoreboard    the results tables (--write README.md --write docs/results.md)
findings      the paper's claims tested on the shipped results (--write docs/findings.md)
docs          the constants the docs quote, from the code (--write docs/how-it-works.md)
start-tokens  each model's document-start token, chosen on training rows (docs/models.md)
anchors       the embedded models on the paper's data beside published R² (docs/results.md)

The CLI prints; the library it calls logs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from core.common.cache import (
    ARTIFACT_KINDS,
    SHARED,
    default_cache_root,
    folder_bytes,
    list_artifacts,
    prune_shared,
    shared_files,
)
from core.common.config import (
    AnalysisConfig,
    BuildConfig,
    SteerConfig,
    command_line,
    option_fields,
)

if TYPE_CHECKING:
    from core.results.probe_results import ProbeResults


Config = TypeVar("Config", BuildConfig, AnalysisConfig, SteerConfig)


def _dest(config: type[Any], path: tuple[str, ...]) -> str:
    # one namespace per config: steer's --layer and the build's --layers stay apart
    return ".".join((config.__name__, *path))


def _add_options(
    parser: argparse.ArgumentParser, config: type[Any], build_only: bool = True
) -> None:
    """One option per field of `config` (and of a config it holds, `BuildConfig.probe`),
    from the field's `option` metadata (flag, help, argparse keywords) and its default:
    every field is an option and every option a field. A field without a default is
    required unless its metadata gives the option one. `build_only=False` leaves out
    the fields only `build` takes."""
    for path, f in option_fields(config):
        if f.metadata.get("build_only") and not build_only:
            continue
        spec = dict(f.metadata["option"])
        flag = spec.pop("flag")
        if "action" not in spec and "choices" not in spec:  # argparse's own, not the dest's
            spec.setdefault("metavar", flag.lstrip("-").upper().replace("-", "_"))
        if f.default is not dataclasses.MISSING:
            assert "default" not in spec, f"{flag}: the field's default is the option's"
            spec["default"] = f.default
        elif "default" not in spec:
            spec["required"] = True
        parser.add_argument(flag, dest=_dest(config, path), **spec)


def _values_of(
    config: type[Any], args: argparse.Namespace, top: type[Any], prefix: tuple[str, ...] = ()
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        path = (*prefix, f.name)
        if "option" in f.metadata:
            dest = _dest(top, path)
            if hasattr(args, dest):  # a build-only option that this command does not take
                values[f.name] = getattr(args, dest)
        elif dataclasses.is_dataclass(f.default):
            nested: type[Any] = type(f.default)
            values[f.name] = nested(**_values_of(nested, args, top, path))
    return values


def _config_of(config: type[Config], args: argparse.Namespace, **extra: Any) -> Config:
    """The `config` that the options `_add_options` added describe (`extra`: fields
    that are no option of this command, such as the cache root)."""
    return config(**_values_of(config, args, config), **extra)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Spacetime Lens: cache per-layer activations, fit probes, list caches.",
    )
    parser.add_argument(
        "--cache-root",
        type=Path,
        default=None,
        help="cache folder (default: ./cache or $SPACETIME_CACHE)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser(
        "build",
        help="build activations and probes for a model on a dataset",
        description="Build whatever is missing (activations, then one ridge probe per layer) "
        "and print a per-layer table. Each option is a field of core.BuildConfig, with its "
        "default.",
    )
    _add_options(build, BuildConfig)
    build.add_argument(  # where the build runs, not what it builds: no BuildConfig field
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run the forward passes and probe fits on a Ray cluster: ADDRESS, else "
        "$RAY_ADDRESS, else a local Ray started here (docs/scale.md)",
    )

    ana = sub.add_parser(
        "analyze",
        help="controls, block hold-out, prompt transfer, MLP probes and neurons",
        description="Build (or reuse) activations and probes, then run the research analyses "
        "and save them beside the results for the dashboard's Research page.",
    )
    _add_options(ana, BuildConfig, build_only=False)
    _add_options(ana, AnalysisConfig)

    steer = sub.add_parser(
        "steer",
        help="push entities along a layer's probe and count how often the answer moves",
        description="On a seeded sample, push each entity toward another's target along "
        "the probe's direction (and a random one of the same norm) and score the model's "
        "greedy answer to a question; saved beside the results for the Research page.",
    )
    _add_options(steer, BuildConfig, build_only=False)
    _add_options(steer, SteerConfig)

    steer_report = sub.add_parser(
        "steer-report",
        help="the shipped steering runs' pre-registered headlines and tables",
        description="Print each shipped steering run's pre-registered headline and its "
        "cells; with --write, replace the text between the steering markers of FILE.",
    )
    steer_report.add_argument(
        "--write",
        action="append",
        default=[],
        metavar="FILE",
        help="replace the steering blocks in FILE (README.md, docs/steering.md); repeatable",
    )

    lst = sub.add_parser(
        "list",
        help="list caches with sizes",
        description="List cached models, activations and results with their sizes.",
    )
    lst.add_argument("--kind", choices=list(ARTIFACT_KINDS), default=None)
    lst.add_argument(
        "--prune",
        action="store_true",
        help="delete shared files (entity tables) that no artifact lists any more",
    )

    sub.add_parser(
        "datasets",
        help="list datasets",
        description="Every dataset with source, rows, target and test fraction.",
    )
    sub.add_parser(
        "models",
        help="list registered models",
        description="Registered models and whether they are converted yet.",
    )
    from core.analysis.doc_facts import demo_summary

    demo = sub.add_parser(
        "demo",
        help="rebuild the shipped demo results from scratch",
        description=(
            f"{demo_summary()}, then the shipped analyses and steering runs. "
            "Activations are deleted after each build unless --keep-activations."
        ),
    )
    demo.add_argument("--only", default=None, help="only builds whose command contains this text")
    demo.add_argument("--keep-activations", action="store_true")
    demo.add_argument("--dry-run", action="store_true", help="print the commands only")
    demo.add_argument(
        "--no-analyses", action="store_true", help="skip the shipped analyses (the slow part)"
    )
    board = sub.add_parser(
        "scoreboard",
        help="best-layer test R2 of the shipped results beside their baselines (Markdown)",
        description=(
            "Print a Markdown table, per shipped (dataset, model), of the test R2 at the "
            "layer chosen on training rows, with the name-only, group-mean and random-init "
            "figures and Spearman for time datasets."
        ),
    )
    board.add_argument(
        "--all",
        action="store_true",
        help="every result under the cache root, not only the shipped list",
    )
    board.add_argument(
        "--write",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="also replace the tables between the scoreboard markers in FILE (README.md: "
        "the compact table; docs/results.md: with the paper's rows, eras and globe); "
        "repeatable",
    )
    find = sub.add_parser(
        "findings",
        help="the paper's claims tested on the shipped results (Markdown)",
        description=(
            "For each of the paper's claims, whether it holds for each shipped model and "
            "dataset, with the numbers (docs/findings.md)."
        ),
    )
    find.add_argument(
        "--write", type=Path, default=None, metavar="FILE", help="also write it to FILE"
    )
    find.add_argument(
        "--since",
        type=Path,
        default=None,
        metavar="FILE",
        help="the earlier findings file whose verdicts the closing 'changed' section compares "
        "with (default: the --write file as it is before it is overwritten)",
    )
    starts = sub.add_parser(
        "start-tokens",
        help="choose each embedded model's document-start token on training rows",
        description=(
            "Build every embedded model with each candidate start token on one fixed "
            "sample of every demo dataset, choose per model on training rows only, and "
            "print the table (docs/models.md). Reads the saved study unless --build."
        ),
    )
    starts.add_argument("--build", action="store_true", help="run the study's builds first")
    starts.add_argument(
        "--model", action="append", default=None, help="model name (repeatable; default: all)"
    )
    starts.add_argument(
        "--write", type=Path, default=None, metavar="FILE", help="also replace its block in FILE"
    )
    anchors = sub.add_parser(
        "anchors",
        help="the embedded models on the paper's own data beside published R² (Markdown)",
        description=(
            "Build every embedded model on a seeded sample of the paper's CSVs (set "
            "SPACETIME_PAPER_DATA_URL to a local folder offline) and print the table beside "
            "Llama-2 and Pythia (docs/results.md)."
        ),
    )
    anchors.add_argument(
        "--model", action="append", default=None, help="model name (repeatable; default: all)"
    )
    anchors.add_argument(
        "--write", type=Path, default=None, metavar="FILE", help="also replace its block in FILE"
    )
    docs = sub.add_parser(
        "docs",
        help="the constants the docs quote, written from the code (Markdown blocks)",
        description="Print each facts block (shipped models and datasets, analysis rows, "
        "MLP grid, group-mean column, ...); with --write, replace the text between the "
        "facts markers of FILE.",
    )
    docs.add_argument(
        "--write",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="replace the facts blocks in FILE (docs/how-it-works.md, docs/protocol.md); "
        "repeatable",
    )
    prep = sub.add_parser(
        "prepare",
        help="convert a model once so later loads take seconds",
        description="Convert a GGUF model into a safetensors folder under the cache (once).",
    )
    prep.add_argument(
        "--model",
        action="append",
        default=None,
        help="model name (repeatable; default: the embedded default)",
    )
    return parser


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def build_config(args: argparse.Namespace, root: Path) -> BuildConfig:
    """The one BuildConfig that `build` (and `analyze`, `steer`) options describe."""
    return _config_of(BuildConfig, args, cache_root=root)


def _without_ray(argv: Sequence[str], address: str | None) -> list[str]:
    """`argv` less its --ray option: a cluster build records the plain build's command
    (the same command rebuilds the same bytes), so both write the same manifest."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--ray":
            skip = bool(address) and i + 1 < len(argv) and argv[i + 1] == address
        elif not arg.startswith("--ray="):
            out.append(arg)
    return out


def _cmd_build(args: argparse.Namespace, root: Path, argv: Sequence[str]) -> int:
    from tqdm import tqdm

    from core.results.build import build, summary_table

    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            unit = {"activations": "entity", "probes": "layer", "download": "B"}.get(stage, "it")
            bar = bars[stage] = tqdm(
                total=total or None,
                desc=stage,
                unit=unit,
                unit_scale=stage == "download",
                file=sys.stderr,
            )
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()

    command = command_line(_without_ray(argv, args.ray))
    if args.ray is None:
        results = build(build_config(args, root), progress=progress, command=command)
    else:
        from core.cluster.backend import build_on_ray

        results = build_on_ray(build_config(args, root), args.ray, progress, command)
    table = summary_table(results)
    print(
        f"{results.model} on {results.dataset} (prompt {results.prompt!r}), "
        f"{len(results.entities)} entities"
    )
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    if table["edge"].eq("*").any():
        print("* alpha at the edge of the grid")
    best = results.best_layer()
    r2 = float(table.loc[best, "test_r2"])
    print(f"results: {results.path}")
    print(f"best layer {best} (chosen on training leave-one-out R2): test R2 = {r2:.4f}")
    print(baseline_lines(results, root))
    return 0


def baseline_lines(results: ProbeResults, root: Path) -> str:
    """What the test R² means: the baselines of the same entities, and the random-init
    control's best test R² when one was built into this cache on exactly these rows (the
    result index's :meth:`~core.results.index.ResultSet.control_of`)."""
    from core.results.catalog import discover
    from core.results.probe_results import ProbeResults

    group = (results.manifest.get("dataset_info") or {}).get("reference_column")
    lines = [
        "baselines (test R2): "
        f"name-only {results.baseline('name_only'):.4f}, "
        f"group-mean ({group or 'no group column'}) {results.baseline('group_mean'):.4f}"
    ]
    catalog = discover(root)
    entry = catalog.control_of(results)
    if entry is not None:
        control = ProbeResults.load(entry.folder)
        lines.append(
            f"random-init control (n={len(control.entities):,}): test R2 "
            f"{control.metric_at(control.best_layer()):.4f}"
        )
    elif results.meta.random_init:
        lines.append(f"random-init control: {catalog.missing_control(results)}")
    else:
        lines.append(
            f"random-init control: {catalog.missing_control(results)}; add --random-init to "
            "build it on these rows; the ridge on names alone is the control for what the "
            "tokens give"
        )
    return "\n".join(lines)


def _stage_bars() -> Callable[[str, int, int], None]:
    """A progress callback that draws one tqdm bar per stage (a new one when a stage
    starts again)."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None or bar.total != total or done < bar.n:
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return progress


def _steer_bar() -> Callable[[int, int], None]:
    bars = _stage_bars()
    return lambda done, total: bars("steer", done, total)


def _cmd_analyze(args: argparse.Namespace, root: Path, argv: Sequence[str]) -> int:
    from core.analysis.build import analyze

    analysis, results = analyze(
        build_config(args, root),
        _config_of(AnalysisConfig, args),
        progress=_stage_bars(),
        command=command_line(argv),
    )
    table = analysis.controls[analysis.controls["split"] == "test"].pivot_table(
        index="layer", columns="control", values="r2"
    )
    print(
        f"{results.model} on {results.dataset} (prompt {results.prompt!r}), "
        f"{len(results.entities)} entities: test R2 by control"
    )
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    if len(analysis.holdout):
        cols = ["layer", "column", "block", "n", "n_test", "heldout_proximity", "nominal_proximity"]
        print("block hold-out (nominal: the block's test rows):")
        print(analysis.holdout[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"analysis: {analysis.path}")
    return 0


def _cmd_list(args: argparse.Namespace, root: Path) -> int:
    from core.extract.store import partial_status
    from core.results.meta import spec_of

    kinds = (
        [args.kind] if args.kind else ["models", "activations", "results", "analysis", "datasets"]
    )
    total = 0
    for kind in kinds:
        entries = list_artifacts(root, kind)
        print(f"{kind}/ ({len(entries)})")
        for folder, manifest in entries:
            size = folder_bytes(folder)
            total += size
            spec = spec_of(manifest)
            label = " ".join(
                f"{k}={spec[k]}"
                for k in ("model", "dataset", "prompt", "limit", "random_init")
                if spec.get(k) not in (None, False)
            )
            print(f"  {_human(size):>9}  {folder.name}  {label}")
        if args.prune:
            for path in prune_shared(root, kind):
                print(f"  removed {path.name} (shared, listed by no artifact)")
        shared = shared_files(root, kind)
        if shared:
            size = sum(path.stat().st_size for path, _ in shared)
            total += size
            orphans = sum(1 for _, referenced in shared if not referenced)
            note = f", {orphans} listed by no artifact (remove with --prune)" if orphans else ""
            print(f"  {_human(size):>9}  {SHARED}/  {len(shared)} shared entity tables{note}")
        partial = sorted((root / kind).glob(".partial-*")) if (root / kind).is_dir() else []
        for folder in partial:
            status = partial_status(folder) if kind == "activations" else None
            done = f"{status[0]} of {status[1]} batches done; " if status else ""
            print(
                f"  {_human(folder_bytes(folder)):>9}  {folder.name}  "
                f"(unfinished: {done}resumes on the next build)"
            )
    print(f"total {_human(total)} under {root}")
    return 0


def _cmd_datasets(root: Path) -> int:
    from core.data.registry import dataset_table

    table = dataset_table()
    print(table.to_string(index=False))
    return 0


def _cmd_models(root: Path) -> int:
    from core.extract.models import model_table

    for row in model_table(root):
        print(f"{row['name']:<14} converted={row['converted']:<4} {row['description']}")
    print("also: any model folder, .gguf file or Hugging Face id")
    return 0


def _cmd_prepare(args: argparse.Namespace, root: Path) -> int:
    from core.extract.models import DEFAULT_MODEL, resolve_model_path

    for name in args.model or [DEFAULT_MODEL]:
        path, weights_hash = resolve_model_path(name, root, progress=print)
        print(f"{name}: ready at {path} ({weights_hash[:24]}...)")
    return 0


def _cmd_demo(args: argparse.Namespace, root: Path) -> int:
    from core.steer.demo import run_demo

    run_demo(
        root,
        only=args.only,
        keep_activations=args.keep_activations,
        dry_run=args.dry_run,
        analyses=not args.no_analyses,
        say=lambda text: print(text, flush=True),
        steer_progress=_steer_bar,
    )
    return 0


def _cmd_steer(args: argparse.Namespace, root: Path, argv: Sequence[str]) -> int:
    from core.steer.build import describe_steering, run_steering

    folder = run_steering(
        build_config(args, root),
        _config_of(SteerConfig, args),
        progress=_steer_bar(),
        command=command_line(argv),
    )
    print(describe_steering(folder))
    return 0


def _cmd_steer_report(args: argparse.Namespace, root: Path) -> int:
    from core.steer.report import shipped_runs, tables_markdown, write_blocks

    runs = shipped_runs(root)
    if not runs:
        print(f"no shipped steering runs under {root}")
        return 1
    print(tables_markdown(runs))
    for path in args.write:
        write_blocks(Path(path), runs, root)
        print(f"updated {path}")
    return 0


def _cmd_findings(args: argparse.Namespace, root: Path) -> int:
    from core.analysis.findings import findings, findings_markdown, previous_verdicts
    from core.results.shipped import shipped_results

    earlier = args.since or args.write
    previous = (
        previous_verdicts(Path(earlier).read_text())
        if earlier is not None and Path(earlier).is_file()
        else None
    )
    text = findings_markdown(findings(shipped_results(root), root), previous)
    print(text, end="")
    if args.write:
        Path(args.write).write_text(text)
        print(f"wrote {args.write}")
    return 0


def _cmd_scoreboard(args: argparse.Namespace, root: Path) -> int:
    from core.results.shipped import (
        scoreboard,
        scoreboard_markdown,
        shipped_results,
        write_scoreboard,
    )

    results = shipped_results(root, everything=args.all)
    if scoreboard(results).empty:
        print(f"no results under {root}")
        return 1
    print(scoreboard_markdown(results, full=True))
    for path in args.write:
        write_scoreboard(path, results)
        print(f"updated {path}")
    return 0


def _cmd_start_tokens(args: argparse.Namespace, root: Path) -> int:
    from core.common.blocks import write_block
    from core.results import start_tokens

    path = root / "studies" / start_tokens.CHOICE_FILE
    if args.build:
        models = args.model or list(start_tokens.CANDIDATES)
        record = start_tokens.run_study(root, models, say=lambda text: print(text, flush=True))
    elif path.is_file():
        record = start_tokens.load_study(path)
    else:
        print(f"no start-token study at {path}; run it with --build")
        return 1
    text = start_tokens.study_markdown(record)
    print(text)
    if args.write:
        write_block(args.write, "start-tokens", "python -m core start-tokens --write FILE", text)
        print(f"updated {args.write}")
    return 0


def _cmd_anchors(args: argparse.Namespace, root: Path) -> int:
    from core.common.blocks import write_block
    from core.results import anchors

    models = args.model or list(anchors.PARAMS_BILLION)
    results = anchors.run_anchors(root, models, say=lambda text: print(text, flush=True))
    text = anchors.anchors_markdown(anchors.anchor_table(results))
    print(text)
    if args.write:
        write_block(args.write, "anchors", "python -m core anchors --write FILE", text)
        print(f"updated {args.write}")
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from core.analysis.doc_facts import BLOCKS, block_text, write_blocks

    for name in BLOCKS:
        print(f"## {name}\n\n{block_text(name)}\n")
    for path in args.write:
        print(f"updated {path}: {', '.join(write_blocks(path))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    root = (args.cache_root or default_cache_root()).resolve()
    try:
        if args.command == "build":
            return _cmd_build(args, root, argv)
        if args.command == "analyze":
            return _cmd_analyze(args, root, argv)
        if args.command == "list":
            return _cmd_list(args, root)
        if args.command == "datasets":
            return _cmd_datasets(root)
        if args.command == "models":
            return _cmd_models(root)
        if args.command == "demo":
            return _cmd_demo(args, root)
        if args.command == "scoreboard":
            return _cmd_scoreboard(args, root)
        if args.command == "prepare":
            return _cmd_prepare(args, root)
        if args.command == "findings":
            return _cmd_findings(args, root)
        if args.command == "steer":
            return _cmd_steer(args, root, argv)
        if args.command == "steer-report":
            return _cmd_steer_report(args, root)
        if args.command == "docs":
            return _cmd_docs(args)
        if args.command == "start-tokens":
            return _cmd_start_tokens(args, root)
        if args.command == "anchors":
            return _cmd_anchors(args, root)
    except KeyboardInterrupt:
        print(
            "interrupted: finished batches are kept; run the same command to resume",
            file=sys.stderr,
        )
        return 130
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1
