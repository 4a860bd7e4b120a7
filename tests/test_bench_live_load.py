"""The concurrent-sessions benchmark (bench/live_load.py) runs end to end on the tiny
stand-in model and a synthetic cache: two phases, a report row each, one model load, no
problem. Nothing about speed is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.live_load import CHROMIUM, percentile

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.5) == 10 and percentile(values, 0.95) == 19
    assert percentile([3.0], 0.95) == 3.0


def test_live_load_bench_runs_on_the_stand_in_model() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is missing: apt-get install -y chromium")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.live_load", "--fake", "--seconds", "6"]
        + ["--sessions", "1", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for sessions in (1, 2):
        row = re.search(rf"^\| {sessions} \| (\d+) \| [\d.]+ \| [\d.]+ \|.* \| 0 \|$", out, re.M)
        assert row and int(row.group(1)) > 0, out
    assert "model loads: 1" in out
    assert re.search(r"server RSS: start \d+ MiB, after the model loaded \d+ MiB, peak", out)
    assert re.search(r"^ratio: [\d.]+$", out, re.M)
