"""`python -m core build ... --ray`: the same best layer line and bytes as a plain build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.cli import _without_ray, main
from core.common.cache import list_artifacts


def layer_bytes(root: Path) -> dict[str, bytes]:
    ((folder, _),) = list_artifacts(root, "activations")
    return {p.name: p.read_bytes() for p in sorted(folder.glob("layer_*.npy"))}


@pytest.mark.usefixtures("ray_local")
def test_build_on_ray_prints_and_stores_what_a_plain_build_does(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    def run(root: Path, *extra: str) -> str:
        argv = ["--cache-root", str(root), "build", "--model", "tiny-llama"]
        argv += ["--dataset", "world_capitals", "--limit", "80", "--batch-size", "16", *extra]
        assert main(argv) == 0
        return capsys.readouterr().out

    plain = run(tmp_path / "plain")
    on_ray = run(tmp_path / "ray", "--ray")
    best = re.compile(r"^best layer .*$", re.M)
    assert best.findall(on_ray) == best.findall(plain) != []
    assert layer_bytes(tmp_path / "ray") == layer_bytes(tmp_path / "plain")
    ((_, manifest),) = list_artifacts(tmp_path / "ray", "results")
    assert "--ray" not in manifest["command"]  # the plain command rebuilds the same bytes


def test_the_recorded_command_leaves_out_ray() -> None:
    assert _without_ray(["build", "--ray", "--model", "m"], "") == ["build", "--model", "m"]
    assert _without_ray(["build", "--ray", "ray://h:10001"], "ray://h:10001") == ["build"]
    assert _without_ray(["build", "--ray=auto", "--limit", "5"], "auto") == [
        "build",
        "--limit",
        "5",
    ]
