"""docs/api.md runs as written: its python blocks, in order, on the tiny model."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import core

REPO = Path(__file__).resolve().parents[1]
API_DOC = REPO / "docs" / "api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_api_doc_runs_on_the_tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import plotly.graph_objects as go

    import tests.support.tiny  # noqa: F401  (registers "tiny-llama")

    monkeypatch.setenv("SPACETIME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(go.Figure, "show", lambda self, *a, **k: None)
    blocks = python_blocks(API_DOC.read_text())
    assert len(blocks) >= 3
    namespace: dict[str, object] = {}
    for i, block in enumerate(blocks):
        code = block.replace('"smollm2-135m"', '"tiny-llama"')
        exec(compile(code, f"{API_DOC.name} block {i + 1}", "exec"), namespace)  # noqa: S102
    results = namespace["results"]
    assert isinstance(results, core.ProbeResults)
    assert namespace["layer"] == results.best_layer()
    # the model the user built in code went through build to a map, under its own name
    mine = namespace["my_results"]
    assert isinstance(mine, core.ProbeResults) and mine.model == "my-llama"
    assert mine.manifest["model_info"]["n_layers"] == 4 and mine.coef.shape[-1] == 64
    assert mine.path is not None and mine.path.name.startswith("my-llama__world_capitals__")
    probe = results[results.best_layer()]
    assert (
        isinstance(probe, core.RidgeProbe)
        and probe.alpha_ == results.alphas[list(results.layers).index(results.best_layer())]
    )
    with pytest.raises(LookupError, match="build them with"):
        core.load_results("tiny-llama", "world_capitals", prompt="coords")


def test_public_names_are_typed_and_complete() -> None:
    """``core.__all__``, its lazy table and its TYPE_CHECKING imports name the same things,
    and docs/api.md names each of them."""
    tree = ast.parse((REPO / "core" / "__init__.py").read_text())
    checked = next(
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )
    typed = {
        alias.name
        for node in checked.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert typed == set(core.__all__)
    assert sorted(core._API) == core.__all__
    doc = API_DOC.read_text()
    assert not [name for name in core.__all__ if f"`{name}(" not in doc and f"`{name}`" not in doc]
