"""`core` installs as a library: the wheel builds offline, installs into a fresh virtual
environment and imports from another folder, with its console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _requirements(name: str) -> list[str]:
    lines = (REPO / name).read_text().splitlines()
    out = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            out.append(line)
    return out


def test_pyproject_declares_what_requirements_pin() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    runtime = _requirements("requirements.txt")
    assert sorted([*project["dependencies"], *extras["dashboard"], *extras["ray"]]) == sorted(
        runtime
    )
    assert "torch==2.13.0" in project["dependencies"]
    assert sorted(extras["dev"]) == sorted(_requirements("requirements-dev.txt"))
    assert project["scripts"]["spacetime-lens"] == "core.cli:main"


def test_the_wheel_installs_and_imports_from_another_folder(tmp_path: Path) -> None:
    # build from a copy of what the wheel needs, so no build/ or egg-info lands in the repo
    source = tmp_path / "source"
    shutil.copytree(REPO / "core", source / "core", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(dist), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("spacetime_lens-*.whl")
    # a fresh venv that reuses this one's packages (torch, numpy ...) through a .pth file,
    # then the wheel alone, without dependencies (offline)
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "notebook"
    elsewhere.mkdir()
    code = (
        "import core, core.common.cache as c; "
        "print(core.RidgeProbe.__module__, core.__file__, c.default_cache_root())"
    )
    out = subprocess.run(
        [str(python), "-c", code],
        cwd=elsewhere,
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.split()
    assert out[0] == "core.probe.ridge"
    assert Path(out[1]).is_relative_to(Path(purelib))  # the installed copy, not the repo
    assert Path(out[2]) == (elsewhere / "cache").resolve()  # not inside site-packages
    script = subprocess.run(
        [str(env / "bin" / "spacetime-lens"), "build", "--help"],
        cwd=elsewhere,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = subprocess.run(
        [sys.executable, "-m", "core", "build", "--help"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert script == module and "--probe-device" in script
