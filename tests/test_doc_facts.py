"""Docs that cannot drift: the constants quoted in prose come from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import cli
from core.analysis import doc_facts
from core.results.shipped import demo_builds

REPO = Path(__file__).resolve().parents[1]
FILES = {
    "docs/how-it-works.md": {"shipped", "mlp", "proximity"},
    "docs/protocol.md": {"group-mean", "control"},
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_facts_blocks_match_the_code(name: str) -> None:
    """Regenerate with `python -m core docs --write docs/how-it-works.md --write
    docs/protocol.md`."""
    blocks = doc_facts.read_blocks(REPO / name)
    assert set(blocks) == FILES[name]
    for block, text in blocks.items():
        assert text == doc_facts.block_text(block), f"{name}: block {block!r} is stale"


def test_write_blocks_replaces_only_between_the_markers(tmp_path: Path) -> None:
    start, end = doc_facts.markers("mlp")
    path = tmp_path / "doc.md"
    path.write_text(f"before\n{start}\nold text\n{end}\nafter\n")
    assert doc_facts.write_blocks(path) == ["mlp"]
    text = path.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old text" not in text
    assert doc_facts.read_blocks(path) == {"mlp": doc_facts.block_text("mlp")}
    path.write_text("no markers")
    with pytest.raises(ValueError, match="no facts markers"):
        doc_facts.write_blocks(path)


def test_the_blocks_say_what_the_code_does() -> None:
    from core.analysis.mlp import WEIGHT_DECAYS
    from core.results import shipped

    text = doc_facts.block_text("shipped")
    models = list(dict.fromkeys(b.model for b in demo_builds()))
    assert f"**Models** ({doc_facts._count(len(models))})" in text
    assert f"first {shipped.ANALYSIS_ROWS:,} entities" in " ".join(text.split())
    depths = ",".join(f"{d:g}" for d in shipped.ANALYSIS_MLP_DEPTHS)
    assert f"`--mlp-depths {depths}`" in " ".join(text.split())  # wrapping may split it
    assert ",".join(f"{d:g}" for d in WEIGHT_DECAYS) in doc_facts.block_text("mlp")
    assert "`occupation`" in doc_facts.block_text("group-mean")


def test_demo_help_counts_the_shipped_models(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    models = list(dict.fromkeys(b.model for b in demo_builds()))
    assert f"({doc_facts._count(len(models))} models: {', '.join(models)};" in out
    assert "both models" not in out


def test_every_constant_the_docs_name_exists() -> None:
    """A `NAME_IN_CAPITALS` quoted in the docs is a name the code uses (a constant, an
    environment variable, a Makefile variable): none is left over from old code."""
    sources = [p for d in ("core", "pages", "bench", "tests") for p in (REPO / d).rglob("*.py")]
    sources += [REPO / "Makefile", REPO / "dashboard.py"]
    code = "\n".join(p.read_text() for p in sources if p != Path(__file__).resolve())
    docs = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
    missing = sorted(
        {
            f"{path.name}: {name}"
            for path in docs
            for name in re.findall(r"`([A-Z][A-Z0-9_]{3,})`", path.read_text())
            if not re.search(rf"\b{name}\b", code)
        }
    )
    assert not missing, missing


def test_stale_figures_are_gone() -> None:
    prose = (REPO / "docs" / "how-it-works.md").read_text()
    prose += (REPO / "docs" / "protocol.md").read_text()
    for stale in ("CONTROL_LIMIT", "first 4,000 entities", "--mlp-depths 0,0.5,1"):
        assert stale not in prose
