"""Rerun the command an artifact's manifest recorded, as its own process, in another cache."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


# Another machine state than a default build's: one BLAS/OpenMP thread changes the order
# of float32 sums, as another CPU does.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def rerun_recorded(
    manifest: dict[str, Any], cache_root: Path, env: dict[str, str] | None = None
) -> None:
    """Run `manifest["command"]` (a ``python -m core ...`` line) under `cache_root`.

    Its own process, as a user would run it: a process whose imports loaded another
    OpenMP runtime first can differ in the last float bits.
    """
    command = shlex.split(str(manifest["command"]))  # as core.common.config.command_line quoted it
    assert command[:3] == ["python", "-m", "core"], command
    subprocess.run(
        [sys.executable, "-m", "core", "--cache-root", str(cache_root), *command[3:]],
        check=True,
        cwd=REPO,
        capture_output=True,
        env={**os.environ, **(env or {})},
    )
