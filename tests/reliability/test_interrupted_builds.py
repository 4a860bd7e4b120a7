"""Builds killed with SIGKILL, again and again, resume and end byte-identical.

Each build runs in a child process forked from a forkserver that has already
imported torch and transformers (so a run costs a second, not an import), builds
activations and probes for the tiny model on synthetic places, and is killed:

* 12 times at seeded random moments (6 while activations are being built, 6
  while probes are being fitted), the parent sending SIGKILL;
* 11 times at commit points: the child kills itself just before or just after a
  rename or cleanup (batch plan, the batch ledger, a manifest, the final folder rename,
  the cleanup of a finished result's probe layers, ...).

After every kill, everything a reader can see as finished (``list_artifacts``,
the dashboard catalog) must verify against its manifest; the run that finally
completes must leave files byte-identical to an uninterrupted build and no
leftovers (``.partial-*``, ``.tmp-*``).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.common.cache import MANIFEST, list_artifacts, verify_files
from core.extract.layer_files import read_progress
from core.extract.store import ActivationStore
from core.results.catalog import discover
from core.results.probe_results import ProbeResults
from tests.reliability import build_worker

SEED = 20240917
TIME_KILLS_PER_STAGE = 6
THROTTLE = 0.02  # seconds per batch (x4 per probe layer): ~1 s activations, ~0.5 s probes
RUN_TIMEOUT = 60.0
N_BATCHES = math.ceil(build_worker.N_ENTITIES / build_worker.BATCH_SIZE)
# Fields of a manifest that differ between two builds of the same thing.
VOLATILE = {"created_at", "seconds", "seconds_by_phase"}


@pytest.fixture(scope="module")
def forkserver() -> Iterator[Any]:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        [
            "tests.reliability.build_worker",
            "core.results.build",
            "tests.support.tiny",
            "tests.conftest",
            "transformers.models.llama.modeling_llama",
        ]
    )
    yield ctx


def start(ctx: Any, root: Path, **kwargs: Any) -> Any:
    proc = ctx.Process(target=build_worker.run, args=(str(root),), kwargs=kwargs)
    proc.start()
    return proc


def finish(ctx: Any, root: Path, **kwargs: Any) -> int:
    proc = start(ctx, root, **kwargs)
    proc.join(RUN_TIMEOUT)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise AssertionError(f"build under {root} did not finish in {RUN_TIMEOUT} s")
    return int(proc.exitcode)


@pytest.fixture(scope="module")
def reference(forkserver: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reference")
    trace = root.parent / "reference-trace.txt"
    assert finish(forkserver, root, trace_file=str(trace)) == 0
    (root / "trace.json").write_text(json.dumps(trace.read_text().splitlines()))
    return root


def stage_folder(root: Path, kind: str) -> Path | None:
    found = [folder for folder, _ in list_artifacts(root, kind)]
    assert len(found) <= 1, found
    return found[0] if found else None


def assert_nothing_half_built_is_visible(root: Path) -> None:
    """Whatever looks finished must be finished: every listed artifact verifies and loads."""
    for kind in ("activations", "results"):
        for folder, manifest in list_artifacts(root, kind):
            on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
            assert on_disk == set(manifest["files"]) | {MANIFEST}, folder
            verify_files(folder, manifest)
            if kind == "activations":
                ActivationStore(folder, verify=True)
            else:
                ProbeResults.load(folder, verify=True)
    for entry in discover(root).entries:
        ProbeResults.load(entry.folder, verify=True)


def snapshot(folder: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = json.loads((folder / MANIFEST).read_text())
    return files, {k: v for k, v in manifest.items() if k not in VOLATILE}


def assert_same_as_reference(root: Path, reference: Path) -> None:
    for kind in ("activations", "results"):
        got, want = stage_folder(root, kind), stage_folder(reference, kind)
        assert got is not None and want is not None and got.name == want.name
        got_files, got_manifest = snapshot(got)
        want_files, want_manifest = snapshot(want)
        assert sorted(got_files) == sorted(want_files)
        for name in want_files:
            assert got_files[name] == want_files[name], (
                f"{kind}/{name} differs from the uninterrupted build"
            )
        assert got_manifest["files"] == want_manifest["files"]
        assert got_manifest == want_manifest
    leftovers = sorted(str(p.relative_to(root)) for p in root.rglob(".*"))
    assert leftovers == [], f"left behind: {leftovers}"


def committed_batches(root: Path) -> int:
    partial = list(root.glob("activations/.partial-*"))
    if not partial:
        return 0
    return len(read_progress(partial[0], partial[0].name.removeprefix(".partial-")) or {})


def restart_stage(root: Path, kind: str) -> None:
    """Remove a finished stage (and anything of it) so that the next run builds it again."""
    for folder in (root / kind).iterdir():
        shutil.rmtree(folder)


def test_random_sigkills_resume_to_a_byte_identical_build(
    forkserver: Any, reference: Path, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    # How long the throttled stages take, from one uninterrupted throttled run.
    timing_root = tmp_path / "timing"
    t0 = time.perf_counter()
    proc = start(forkserver, timing_root, throttle=THROTTLE)
    t_act = None
    while proc.is_alive():
        if t_act is None and stage_folder(timing_root, "activations"):
            t_act = time.perf_counter() - t0
        time.sleep(0.005)
    t_total = time.perf_counter() - t0
    assert proc.exitcode == 0 and t_act is not None
    t_probes = t_total - t_act

    root = tmp_path / "killed"
    kills = {"activations": 0, "probes": 0}
    runs = 0
    while min(kills.values()) < TIME_KILLS_PER_STAGE:
        runs += 1
        assert runs <= 60, f"could not land the kills: {kills}"
        target = "activations" if kills["activations"] < TIME_KILLS_PER_STAGE else "probes"
        if target == "activations" and stage_folder(root, "activations"):
            restart_stage(root, "activations")  # a late kill let the stage finish
        proc = start(forkserver, root, throttle=THROTTLE)
        if target == "activations":
            left = 1 - committed_batches(root) / N_BATCHES
            delay = rng.uniform(0.05, max(0.1, 0.9 * t_act * left))
        else:
            while proc.is_alive() and stage_folder(root, "activations") is None:
                time.sleep(0.005)
            left = (
                1 - len(list(root.glob("results/.partial-*/layer_*.npz"))) / build_worker.N_LAYERS
            )
            delay = rng.uniform(0.05, 0.2 + 0.9 * t_probes * left)
        deadline = time.perf_counter() + delay
        while proc.is_alive() and time.perf_counter() < deadline:
            time.sleep(0.002)
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert proc.exitcode in (0, -signal.SIGKILL), proc.exitcode
        assert_nothing_half_built_is_visible(root)
        if stage_folder(root, "activations") is None:
            landed = "activations"
        elif stage_folder(root, "results") is None:
            landed = "probes"
        else:
            landed = "finished"
            restart_stage(root, "results")
        if landed == target:
            kills[target] += 1

    assert finish(forkserver, root) == 0
    assert_same_as_reference(root, reference)
    print(
        f"\nrandom SIGKILLs landed: {kills} in {runs} runs "
        f"(throttled: activations {t_act:.2f} s, total {t_total:.2f} s)"
    )


# (label of the commit point, which occurrence in that run, kill after it rather than before)
COMMIT_KILLS = [
    ("os.replace plan.json", 1, False),  # the plan written, not yet in place
    (
        "os.replace progress.json",
        1,
        True,
    ),  # an empty ledger: the layer files created, nothing in them
    ("os.replace progress.json", 4, True),  # three batches committed
    ("os.replace progress.json", 3, False),  # batches written and fsync'd, not yet in the ledger
    ("os.replace manifest.json", 1, True),  # activations complete in .partial-*, not renamed
    ("os.replace <key>", 1, True),  # activations in place
    ("os.replace layer_#.npz", 2, True),
    ("os.replace layer_#.npz", 2, False),
    ("os.replace manifest.json", 1, False),  # results written in .tmp-*, manifest not yet
    ("os.replace <key>", 1, True),  # results in place, probe layers not yet removed
    ("shutil.rmtree .partial-<key>", 1, False),
]


def test_sigkill_at_every_kind_of_commit_point(
    forkserver: Any, reference: Path, tmp_path: Path
) -> None:
    trace = json.loads((reference / "trace.json").read_text())
    labels = set(trace)
    # The n-th ledger write must be the same moment in every run: the empty ledger, one
    # checkpoint per batch (CHECKPOINT_SECONDS 0), and the final one, whatever the disk's pace.
    assert trace.count("os.replace progress.json") == N_BATCHES + 2
    root = tmp_path / "killed"
    for kill_label, occurrence, after in COMMIT_KILLS:
        assert kill_label in labels, f"{kill_label!r} is no longer a commit point: {sorted(labels)}"
        code = finish(forkserver, root, kill_label=kill_label, occurrence=occurrence, after=after)
        assert code == -signal.SIGKILL, (
            f"the run meant to die at {kill_label} #{occurrence} exited {code}"
        )
        assert_nothing_half_built_is_visible(root)
    assert finish(forkserver, root) == 0
    assert_same_as_reference(root, reference)
