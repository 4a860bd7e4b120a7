"""``python -m core demo``: rebuild every shipped result, analysis and steering run.

What ships is declared in `core.results.shipped` (`demo_builds()`, `DEMO_ANALYSES`,
`CHECK_SLICE`, `DEMO_STEERING`, ...); this module only runs it, in that order, and
writes the shipped lists. It lives in the last stage it runs (steering), the one that
may import all the others. It reports through `say` (the CLI passes ``print``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from core.analysis.run import analysis_dir
from core.analysis.shipped import run_check_analysis, run_demo_analysis
from core.common.config import BuildConfig, SteerConfig, command_line, config_argv
from core.common.depth import layer_at_depth
from core.results.probe_results import ProbeResults
from core.results.shipped import (
    CHECK_SLICE,
    DEMO_ANALYSES,
    DEMO_STEERING,
    SAMPLE_LIMITS,
    STEERING_N,
    STEERING_STRENGTHS,
    demo_builds,
    run_build,
    shipped_names,
    shipped_results,
    superseded,
    write_shipped_index,
)
from core.steer.build import describe_steering, run_steering
from core.steer.evaluate import headline_layer

log = logging.getLogger(__name__)

Say = Callable[[str], None]
Progress = Callable[[int, int], None]


def run_demo(
    root: Path,
    *,
    only: str | None = None,
    keep_activations: bool = False,
    dry_run: bool = False,
    analyses: bool = True,
    say: Say = log.info,
    steer_progress: Callable[[], Progress] | None = None,
) -> None:
    """The shipped builds, then (unless `analyses` is False or `dry_run`) the shipped
    analyses and steering runs, under `root`.

    only: run just the items whose command contains this text; they are added to the
    shipped lists (a full run replaces them). keep_activations: keep every build's
    activations (by default only the builds an analysis reads next keep theirs, and the
    analysis deletes them). dry_run: say the build commands only. steer_progress: makes
    one steering run's progress callback.
    """
    builds = [b for b in demo_builds() if not only or only in b.command()]
    built: list[ProbeResults] = []
    for i, item in enumerate(builds, 1):
        say(f"[{i}/{len(builds)}] {item.command()}")
        if dry_run:
            continue
        start = time.perf_counter()
        analysed = (
            analyses
            and not item.random_init
            and any(
                (a.model, a.dataset, a.limit) == (item.model, item.dataset, item.limit)
                for a in DEMO_ANALYSES
            )
        )  # its analysis reads the activations, then deletes them
        results = run_build(item, root, keep_activations=keep_activations or analysed)
        built.append(results)
        best = results.best_layer()
        say(
            f"    best layer {best} (train LOO): test R2 = {results.metric_at(best):.4f}, "
            f"name-only {results.baseline('name_only'):.4f} "
            f"({time.perf_counter() - start:.0f} s)"
        )
    if built:
        # --only adds to the shipped list; a full run replaces it
        # a rebuilt result (a control on its probe's rows) replaces the one it supersedes
        kept = superseded(shipped_results(root), built) if only else []
        index = write_shipped_index(root, [r.path for r in kept + built])
        say(f"shipped list: {index}")
    if dry_run or not analyses:
        return
    demo_analyses(root, only=only, say=say)
    demo_steering(root, only=only, say=say, progress=steer_progress)


def demo_analyses(root: Path, *, only: str | None = None, say: Say = log.info) -> None:
    """Every `DEMO_ANALYSES` item, then the check slice's analysis; the shipped list."""
    jobs = [
        a for a in DEMO_ANALYSES if not only or only in f"--model {a.model} --dataset {a.dataset}"
    ]
    done = []
    for i, job in enumerate(jobs, 1):
        say(f"[analysis {i}/{len(jobs)}] {job.model} on {job.dataset}")
        start = time.perf_counter()
        done.append(run_demo_analysis(job, root))
        say(f"    {time.perf_counter() - start:.0f} s")
    model, dataset, limit = CHECK_SLICE
    if not only or only in f"--model {model} --dataset {dataset} --limit {limit}":
        say(f"[analysis] check slice: {model} on {limit} {dataset}")
        done.append(run_check_analysis(root))
    if done:
        listed = shipped_names(root, "analysis") if only else None
        folders = [a.path for a in done] + [analysis_dir(root, n) for n in listed or ()]
        say(f"shipped analyses: {write_shipped_index(root, folders, kind='analysis')}")


def demo_steering(
    root: Path,
    *,
    only: str | None = None,
    say: Say = log.info,
    progress: Callable[[], Progress] | None = None,
) -> None:
    """The shipped steering runs: ``python -m core steer`` at the pre-registered layer
    and a quarter of the depth, at `STEERING_STRENGTHS`, with the shipped sample size,
    all seeds; the shipped list."""
    probes = {
        (r.model, r.dataset): r
        for r in shipped_results(root)
        if not r.meta.random_init
        and r.probe_target == "latlon"
        and r.meta.limit == SAMPLE_LIMITS.get(r.dataset)
    }
    folders = []
    for model, dataset in DEMO_STEERING:
        if only and only not in f"--model {model} --dataset {dataset}":
            continue
        config = BuildConfig(model, dataset, limit=SAMPLE_LIMITS.get(dataset), cache_root=root)
        options = SteerConfig(n=STEERING_N)
        if (model, dataset) in probes:  # the full grid of cells takes hours on a CPU
            res = probes[(model, dataset)]
            layers = {layer_at_depth(res.layers, res.n_model_layers, 0.25), headline_layer(res)}
            options = SteerConfig(
                layers=tuple(sorted(layers)), n=STEERING_N, strengths=STEERING_STRENGTHS
            )
        argv = ["steer", *config.argv(build_only=False), *config_argv(options)]
        command = command_line(argv)
        say(f"[steering] {command}")
        folder = run_steering(
            config,
            options,
            progress=progress() if progress else None,
            command=command,
        )
        say(describe_steering(folder))
        folders.append(folder)
    if folders:
        listed = shipped_names(root, "steering") if only else None
        folders += [root / "steering" / name for name in listed or ()]
        say(f"shipped steering: {write_shipped_index(root, folders, kind='steering')}")
