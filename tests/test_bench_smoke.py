"""The GPU benchmark code paths, run small on the CPU so they keep working between GPU
sessions, and the dashboard benchmark on a tiny synthetic cache. Nothing about speed is
asserted: only that each prints its report and that the probe sweep agrees with the numpy
reference."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent


def run(args: list[str], env_extra: dict[str, str] | None = None) -> str:
    import os

    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_gpu_extraction_bench_path_runs_on_cpu(tmp_path: Path) -> None:
    csv = tmp_path / "world_place.csv"
    pd.DataFrame({"name": [f"Place {chr(65 + i % 26)}{i}" for i in range(60)]}).to_csv(
        csv, index=False
    )
    args = [
        "bench.extract",
        "--gpu",
        "--shape",
        "small",
        "--device",
        "cpu",
        "--n",
        "50",
        "--variants",
    ]
    out = run(args, {"SPACETIME_PAPER_WORLD": str(csv)})
    for method in ("baseline", "project", "project-sync", "project-2x"):
        assert re.search(rf"{method}\s+50 entities", out) and re.search(
            rf"{method}\s+MFU [\d.]+% of a", out
        ), out
    assert re.search(r"project\s+forward passes alone: MFU [\d.]+%", out)
    assert re.search(r"^ratio: [\d.]+$", out, re.MULTILINE)


def test_forward_profile_times_each_attention_kernel(tmp_path: Path) -> None:
    csv = tmp_path / "world_place.csv"
    pd.DataFrame({"name": [f"Place {chr(65 + i % 26)}" for i in range(40)]}).to_csv(
        csv, index=False
    )
    args = [
        "bench.forward_profile",
        "--shape",
        "small",
        "--device",
        "cpu",
        "--batch",
        "16",
        "--attention",
        "--rows",
        "3",
    ]
    out = run(args, {"SPACETIME_PAPER_WORLD": str(csv)})
    for label in ("extract", "bare", "no-mask", "first=FLASH", "first=MATH"):
        assert re.search(rf"{label}\s+[\d.]+ ms per batch\s+MFU\s+[\d.]+%", out), out
    assert "aten::mm" in out  # the profiler's table


def test_probe_sweep_runs_on_torch_cpu() -> None:
    out = run(
        [
            "bench.probes",
            "--sweep",
            "2",
            "--n",
            "600",
            "--d",
            "24",
            "--device",
            "cpu",
            "--profile",
            "--compare-staging",
            "1",
        ]
    )
    assert "same alpha: True" in out
    assert (
        re.search(r"max rel diff (\d\.\d+e-\d+)", out)
        and float(re.search(r"max rel diff (\S+)", out).group(1)) < 1e-6
    )  # type: ignore[union-attr]
    assert re.search(r"^ratio: [\d.]+$", out, re.MULTILINE)
    assert "linalg_eigh" in out  # the profiled layer's table names its eigh
    assert (
        re.search(r"rows staged pageable: [\d.]+ s per layer", out) and "rows staged pinned" in out
    )


@pytest.mark.parametrize("paced", [False, True])
def test_store_bench_writes_the_same_layer_files_both_ways(tmp_path: Path, paced: bool) -> None:
    args = [
        "bench.store",
        "--n",
        "500",
        "--layers",
        "3",
        "--d",
        "64",
        "--batch",
        "64",
        "--dir",
        str(tmp_path),
    ]
    out = run(args + (["--pace", "0.5", "--interval", "0"] if paced else []))
    assert "same layer files: True" in out
    assert ("checkpoint fsyncs in the background" in out) == paced
    assert re.search(r"^ratio: [\d.]+$", out, re.MULTILINE)
    assert list(tmp_path.iterdir()) == []  # both copies removed


def test_dashboard_bench_runs_on_a_small_synthetic_cache(tmp_path: Path) -> None:
    env = {"SPACETIME_CACHE": str(tmp_path), "SPACETIME_FAKE_MODEL": ""}
    out = run(
        [
            "bench.dashboard",
            "--entities",
            "400",
            "--layers",
            "4",
            "--reps",
            "2",
            "--skip-threads-baseline",
        ],
        env,
    )
    assert "results: synthetic, 400 entities x 4 layers" in out
    assert len(re.findall(r"project \(cached results\)\s+median\s+[\d.]+ ms", out)) == 2, out
    # nothing converted under the empty cache: the collection is timed over a tiny model
    frozen = re.search(r"project \(([\d,]+) long-lived objects frozen\)\s+median", out)
    assert frozen and int(frozen.group(1).replace(",", "")) > 10_000, out
    assert re.search(r"baseline \(none frozen\)\s+median\s+[\d.]+ ms", out)
    assert "live probe: SKIPPED" in out
    assert re.search(r"^ratio: [\d.]+$", out, re.MULTILINE)


def test_cluster_bench_prints_the_ratio_and_same_bytes() -> None:
    out = run(["bench.cluster", "--model", "tiny-llama", "--n", "200", "--workers", "2"])
    assert re.search(r"^ratio: [\d.]+$", out, re.MULTILINE), out
    assert "same bytes as single process: yes" in out, out
