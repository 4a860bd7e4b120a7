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

The CLI prints; the library it calls logs.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.common.cache import (
    ARTIFACT_KINDS,
    SHARED,
    default_cache_root,
    folder_bytes,
    list_artifacts,
    prune_shared,
    shared_files,
)
from core.common.config import BuildConfig, ProbeSpec

if TYPE_CHECKING:
    from core.results.probe_results import ProbeResults


def _layers(text: str) -> tuple[int, ...]:
    """'0,5,10' or '0-29' or '0-29:2'."""
    out: list[int] = []
    for part in text.split(","):
        step = 1
        if ":" in part:
            part, step_text = part.split(":")
            step = int(step_text)
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1, step))
        else:
            out.append(int(part))
    return tuple(sorted(set(out)))


def _depths(text: str | None) -> tuple[float, ...] | None:
    """'0,0.5,1' -> fractions of the depth in [0, 1]."""
    if not text:
        return None
    depths = tuple(float(v) for v in text.split(","))
    if any(not 0 <= d <= 1 for d in depths):
        raise ValueError(f"--mlp-depths: each value must lie in [0, 1], got {text!r}")
    return depths


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

    common = argparse.ArgumentParser(add_help=False)  # what `build` and `analyze` share
    common.add_argument(
        "--model",
        default="smollm2-135m",
        help=(
            "registered name (smollm2-135m, gemma3-270m), model folder, .gguf file "
            "or Hugging Face id"
        ),
    )
    common.add_argument(
        "--dataset",
        required=True,
        help="dataset name (see `python -m core datasets`) or a CSV path",
    )
    common.add_argument(
        "--prompt", default=None, help="prompt template name (default: the dataset's main prompt)"
    )
    common.add_argument(
        "--limit", type=int, default=None, help="only the first N entities (quick runs)"
    )
    common.add_argument(
        "--layers",
        type=_layers,
        default=None,
        help="subset of layers, e.g. 0-29:2 or 5,10,15 (default: all)",
    )
    common.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: cuda if available"
    )
    common.add_argument(
        "--dtype",
        default="auto",
        help="compute dtype: auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16",
    )
    common.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow a hub model's own code to run (off by default)",
    )

    build = sub.add_parser(
        "build",
        parents=[common],
        help="build activations and probes for a model on a dataset",
        description="Build whatever is missing (activations, then one ridge probe per layer) "
        "and print a per-layer table.",
    )
    build.add_argument(
        "--random-init",
        action="store_true",
        help="control: a seeded random-initialised copy of the architecture",
    )
    build.add_argument(
        "--batch-tokens",
        type=int,
        default=None,
        help="token budget per batch, padded tokens (default: 4096 on a CPU, 65536 on a GPU)",
    )
    build.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="max entities per batch (default: 64 on a CPU, 1024 on a GPU)",
    )
    build.add_argument(
        "--method",
        default="loo",
        choices=["loo", "gcv"],
        help="alpha selection: exact leave-one-out or GCV",
    )
    build.add_argument(
        "--target",
        default="latlon",
        choices=["latlon", "globe"],
        help="space probes: read lat/lon, or (x, y, z) on the unit sphere mapped back to "
        "lat/lon (no seam at ±180°)",
    )
    build.add_argument(
        "--probe-device",
        default="auto",
        choices=["auto", "numpy", "cpu", "cuda"],
        help="where probes are fitted: auto = cuda if available, else numpy (the reference); "
        "cpu = torch on the CPU",
    )
    build.add_argument(
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
        parents=[common],
        help="controls, block hold-out, prompt transfer, MLP probes and neurons",
        description="Build (or reuse) activations and probes, then run the research analyses "
        "and save them beside the results for the dashboard's Research page.",
    )
    ana.add_argument(
        "--group",
        default=None,
        help="block column for the hold-out (default: the paper's block for the dataset, "
        "else its group column, then entity type)",
    )
    ana.add_argument(
        "--transfer-prompts",
        default="",
        help="comma-separated other prompts for cross-prompt transfer, or 'all'",
    )
    ana.add_argument(
        "--no-mlp", action="store_true", help="skip the MLP probe (the slowest analysis)"
    )
    ana.add_argument(
        "--mlp-hidden",
        type=int,
        default=128,
        help="MLP hidden units at the middle of the width grid (a quarter and four times "
        "it are tried too, and the grid grows past an edge choice)",
    )
    ana.add_argument(
        "--neurons", type=int, default=10, help="top neurons listed per layer and target"
    )
    ana.add_argument(
        "--rows",
        type=int,
        default=None,
        help="analyse only the first N entities (a seeded sample) of the build",
    )
    ana.add_argument(
        "--mlp-depths",
        default=None,
        help="fit the MLP probe only at these fractions of the depth, e.g. 0,0.5,1 "
        "(and at the chosen layer; default: every layer)",
    )

    steer = sub.add_parser(
        "steer",
        parents=[common],
        help="push entities along a layer's probe and count how often the answer moves",
        description="On a seeded sample, push each entity toward another's target along "
        "the probe's direction (and a random one of the same norm) and score the model's "
        "greedy answer to a question; saved beside the results for the Research page.",
    )
    steer.add_argument(
        "--layer",
        type=_layers,
        default=None,
        help="layers to push at, e.g. 7,15,22 (default: a quarter, half, three quarters deep)",
    )
    steer.add_argument("--n", type=int, default=200, help="test entities sampled per seed")
    steer.add_argument(
        "--strengths",
        default="1,2,4,8",
        help="multiples of the change that makes the probe read the target (1 is always run)",
    )
    steer.add_argument(
        "--seeds",
        default="0,1,2",
        help="seeds (entity sample, partners, random directions), pooled; at least 3 for "
        "the headline",
    )
    steer.add_argument(
        "--question", default=None, help="question template with {name} (default: per dataset)"
    )

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
    demo = sub.add_parser(
        "demo",
        help="rebuild the shipped demo results from scratch",
        description=(
            "Rebuild every shipped result (both models on the six demo datasets, "
            "each one's random-init control and the check slice) and list them in "
            "results/SHIPPED. "
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
    """The one BuildConfig that `build` (and `analyze`) options describe."""
    from core.probe.ridge_torch import probe_device_for

    return BuildConfig(
        model=args.model,
        dataset=args.dataset,
        prompt=args.prompt,
        limit=args.limit,
        layers=args.layers,
        random_init=getattr(args, "random_init", False),
        probe=ProbeSpec(
            method=getattr(args, "method", "loo"), target=getattr(args, "target", "latlon")
        ),
        device=args.device,
        dtype=args.dtype,
        max_tokens_per_batch=getattr(args, "batch_tokens", None),
        max_batch_size=getattr(args, "batch_size", None),
        probe_device=probe_device_for(getattr(args, "probe_device", "numpy")),
        trust_remote_code=args.trust_remote_code,
        cache_root=root,
    )


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

    command = "python -m core " + " ".join(shlex.quote(a) for a in _without_ray(argv, args.ray))
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
    control's best test R² when one was built into this cache (found by its manifest,
    the one it loads)."""
    from core.results.catalog import discover, model_id
    from core.results.probe_results import ProbeResults

    group = (results.manifest.get("dataset_info") or {}).get("reference_column")
    lines = [
        "baselines (test R2): "
        f"name-only {results.baseline('name_only'):.4f}, "
        f"group-mean ({group or 'no group column'}) {results.baseline('group_mean'):.4f}"
    ]
    entry = None
    if not results.manifest.get("spec", {}).get("random_init"):
        entry = discover(root).find(
            model_id(results.model, random_init=True), results.dataset, results.prompt
        )
    if entry is not None:
        control = ProbeResults.load(entry.folder)
        lines.append(
            f"random-init control (n={len(control.entities):,}): test R2 "
            f"{control.metric_at(control.best_layer()):.4f}"
        )
    else:
        lines.append(
            "random-init control: not built (add --random-init to build it); "
            "the ridge on names alone is the control for what the tokens give"
        )
    return "\n".join(lines)


def _cmd_analyze(args: argparse.Namespace, root: Path, argv: Sequence[str]) -> int:
    from tqdm import tqdm

    from core.analysis.build import analyze

    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None or bar.total != total or done < bar.n:
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    prompts = [p for p in args.transfer_prompts.split(",") if p]
    if prompts == ["all"]:
        from core.data.registry import load_dataset

        prompts = sorted(load_dataset(args.dataset, cache_root=root).prompts)
    command = "python -m core " + " ".join(shlex.quote(a) for a in argv)
    analysis, results = analyze(
        build_config(args, root),
        group_column=args.group,
        transfer_prompts=prompts,
        mlp=not args.no_mlp,
        mlp_hidden=args.mlp_hidden,
        k_neurons=args.neurons,
        progress=progress,
        command=command,
        rows=args.rows,
        mlp_depths=_depths(args.mlp_depths),
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
            spec = manifest.get("spec", {})
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
    import time

    from core.results.shipped import (
        DEMO_ANALYSES,
        SAMPLE_LIMITS,
        demo_builds,
        run_build,
        shipped_names,
        shipped_results,
        superseded,
        write_shipped_index,
    )

    builds = [b for b in demo_builds() if not args.only or args.only in b.command()]
    built = []
    for i, item in enumerate(builds, 1):
        print(f"[{i}/{len(builds)}] {item.command()}", flush=True)
        if args.dry_run:
            continue
        start = time.perf_counter()
        analysed = (
            not args.no_analyses
            and not item.random_init
            and any((a.model, a.dataset) == (item.model, item.dataset) for a in DEMO_ANALYSES)
        )  # its analysis reads the activations, then deletes them
        keep = args.keep_activations or (analysed and item.limit == SAMPLE_LIMITS.get(item.dataset))
        results = run_build(item, root, keep_activations=keep)
        built.append(results)
        best = results.best_layer()
        print(
            f"    best layer {best} (train LOO): test R2 = {results.metric_at(best):.4f}, "
            f"name-only {results.baseline('name_only'):.4f} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    if built:
        # --only adds to the shipped list; a full run replaces it
        # a rebuilt result (a control on its probe's rows) replaces the one it supersedes
        kept = superseded(shipped_results(root), built) if args.only else []
        index = write_shipped_index(root, [r.path for r in kept + built])
        print(f"shipped list: {index}")
    if args.dry_run or args.no_analyses:
        return 0
    from core.analysis.run import analysis_dir
    from core.analysis.shipped import run_check_analysis, run_demo_analysis
    from core.results.shipped import CHECK_SLICE

    analyses = [
        a
        for a in DEMO_ANALYSES
        if not args.only or args.only in f"--model {a.model} --dataset {a.dataset}"
    ]
    done = []
    for i, job in enumerate(analyses, 1):
        print(f"[analysis {i}/{len(analyses)}] {job.model} on {job.dataset}", flush=True)
        start = time.perf_counter()
        done.append(run_demo_analysis(job, root))
        print(f"    {time.perf_counter() - start:.0f} s", flush=True)
    model, dataset, limit = CHECK_SLICE
    if not args.only or args.only in f"--model {model} --dataset {dataset} --limit {limit}":
        print(f"[analysis] check slice: {model} on {limit} {dataset}", flush=True)
        done.append(run_check_analysis(root))
    if done:
        listed = shipped_names(root, "analysis") if args.only else None
        folders = [a.path for a in done] + [analysis_dir(root, n) for n in listed or ()]
        print(f"shipped analyses: {write_shipped_index(root, folders, kind='analysis')}")
    return _demo_steering(args, root)


def _demo_steering(args: argparse.Namespace, root: Path) -> int:
    """The shipped steering runs: `python -m core steer` at the pre-registered layer and a
    quarter of the depth, at `STEERING_STRENGTHS`, with the shipped sample size, all seeds."""
    from core.common.depth import layer_at_depth
    from core.results.shipped import (
        DEMO_STEERING,
        SAMPLE_LIMITS,
        STEERING_N,
        STEERING_STRENGTHS,
        shipped_names,
        shipped_results,
        write_shipped_index,
    )
    from core.steer.evaluate import headline_layer

    probes = {
        (r.model, r.dataset): r
        for r in shipped_results(root)
        if not r.manifest.get("spec", {}).get("random_init")
        and r.probe_target == "latlon"
        and r.manifest.get("spec", {}).get("limit") == SAMPLE_LIMITS.get(r.dataset)
    }

    folders = []
    for model, dataset in DEMO_STEERING:
        if args.only and args.only not in f"--model {model} --dataset {dataset}":
            continue
        argv = ["steer", "--model", model, "--dataset", dataset, "--n", str(STEERING_N)]
        if (model, dataset) in probes:  # the full grid of cells takes hours on a CPU
            res = probes[(model, dataset)]
            layers = {layer_at_depth(res.layers, res.n_model_layers, 0.25), headline_layer(res)}
            argv += ["--layer", ",".join(str(v) for v in sorted(layers))]
            argv += ["--strengths", ",".join(f"{v:g}" for v in STEERING_STRENGTHS)]
        if dataset in SAMPLE_LIMITS:
            argv += ["--limit", str(SAMPLE_LIMITS[dataset])]
        print(f"[steering] python -m core {' '.join(argv)}", flush=True)
        folders.append(_run_steering(_parser().parse_args(argv), root, argv))
    if folders:
        listed = shipped_names(root, "steering") if args.only else None
        folders += [root / "steering" / name for name in listed or ()]
        print(f"shipped steering: {write_shipped_index(root, folders, kind='steering')}")
    return 0


def _cmd_steer(args: argparse.Namespace, root: Path, argv: Sequence[str]) -> int:
    _run_steering(args, root, argv)
    return 0


def _run_steering(args: argparse.Namespace, root: Path, argv: Sequence[str]) -> Path:
    from tqdm import tqdm

    from core.common.cache import now_iso
    from core.results.build import build, load_config_model
    from core.steer.evaluate import evaluate_steering, save_steering, steering_dir

    strengths = tuple(float(v) for v in args.strengths.split(",") if v)
    if not strengths or any(v < 0 for v in strengths):
        raise ValueError(f"--strengths: non-negative numbers, got {args.strengths!r}")
    seeds = tuple(int(v) for v in args.seeds.split(",") if v)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: distinct integers, got {args.seeds!r}")
    if args.question is not None and "{name}" not in args.question:
        raise ValueError(f"--question must contain {{name}}, got {args.question!r}")
    config = build_config(args, root)
    loaded = load_config_model(config, root)
    results = build(config, loaded=loaded)
    prompt_text = str(results.manifest.get("prompt_text") or "")  # what the probes read
    bar = tqdm(desc="steer", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    summary, examples, facts = evaluate_steering(
        loaded,
        results,
        prompt_text,
        layers=args.layer,
        strengths=strengths,
        n=args.n,
        seeds=seeds,
        question=args.question,
        progress=progress,
    )
    bar.close()
    key = str(results.manifest["key"])
    folder = save_steering(
        steering_dir(root, key),
        summary,
        examples,
        {
            **facts,
            "results_key": key,
            "model": results.model,
            "dataset": results.dataset,
            "prompt": results.prompt,
            "command": "python -m core " + " ".join(shlex.quote(a) for a in argv),
            "created_at": now_iso(),
        },
    )
    print(
        f"{results.model} on {results.dataset}: {facts['n']} test entities x "
        f"{len(seeds)} seeds, question {facts['question']!r}"
    )
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    from core.steer.evaluate import load_steering
    from core.steer.report import headline

    run = load_steering(folder)
    if run is not None:
        print(headline(run))
    print(f"steering: {folder}")
    return folder


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
