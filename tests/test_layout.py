"""The library's shape: stages in data-flow order, no cycles, no Streamlit, no test code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "core"
# core/<stage>/ in data-flow order: a module may import its own stage or an earlier one
STAGES = (
    "common",
    "data",
    "extract",
    "probe",
    "results",
    "cluster",
    "analysis",
    "steer",
    "viz",
    "ui",
)


def core_modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(CORE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every core module `path` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t not in ("core", "pages"))
    return found


def stage_of(module: str) -> int | None:
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 2 and parts[1] in STAGES else None


def test_core_is_grouped_by_stage() -> None:
    packages = {p.name for p in CORE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert packages == set(STAGES)
    loose = {p.name for p in CORE.glob("*.py")}
    assert loose == {"__init__.py", "__main__.py", "cli.py"}


def test_no_module_imports_a_later_stage() -> None:
    modules = core_modules()
    wrong = [
        f"{module} -> {target}"
        for module, path in modules.items()
        for target in sorted(imports_of(path, set(modules)))
        if (a := stage_of(module)) is not None and (b := stage_of(target)) is not None and b > a
    ]
    assert not wrong, "imports of a later stage:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    assert_no_cycles(core_modules())


def test_pages_import_no_cycles() -> None:
    """pages/ helpers (``TYPE_CHECKING`` imports included) form no circle either."""
    pages = {f"pages.{p.stem}": p for p in sorted((REPO / "pages").glob("*.py"))}
    assert_no_cycles(pages)


def assert_no_cycles(modules: dict[str, Path]) -> None:
    graph = {m: imports_of(p, set(modules)) - {m} for m, p in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_importing_every_core_module_loads_no_streamlit_and_no_tests() -> None:
    names = sorted(m for m in core_modules() if m != "core.__main__")
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'tests'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_public_api_names_resolve() -> None:
    import core

    for name in core.__all__:
        assert getattr(core, name) is not None, name
    assert callable(core.build) and core.BuildConfig("m", "d").model == "m"
