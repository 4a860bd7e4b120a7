"""Every consumer reads the same random-init control: the one on identical rows.

The catalog below is built so that the rules the project used to have disagree: one
control has the probe's entity count but other rows (the scoreboard picked it), one is
newer and on more rows (the pages and the CLI picked it: ``find`` of the control's
model id), one is on the probe's own rows. The scoreboard row, findings' Context, the
Layers and Research pages' loader and the CLI's baseline lines must all read the last,
and a probe whose rows no control shares gets none (reported, never substituted).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.analysis.findings import Context, beats_controls
from core.cli import baseline_lines
from core.results.catalog import discover, model_id
from core.results.intervals import probe_r2
from core.results.probe_results import ProbeResults
from core.results.shipped import control_cell, scoreboard, shipped_results
from pages._loaders import load, load_control
from tests.app.conftest import make_app
from tests.app.test_pages import charts, no_exceptions
from tests.support.synthetic import save_synthetic, space_entities, synthetic_results

MODEL = "smollm2-135m"


def _save(root: Path, entities: pd.DataFrame, key: str, created: str, **kw: object) -> Path:
    res = synthetic_results(entities, "space", 6, 16, MODEL, **kw)  # type: ignore[arg-type]
    res.manifest["created_at"] = created  # the order the old rules read
    return save_synthetic(root, res, key)


@pytest.fixture
def disagreeing(tmp_path: Path) -> dict[str, Path]:
    """A trained world probe with three controls the old rules split over, and a US probe
    whose controls are all on other rows."""
    root = tmp_path / "cache"
    world = space_entities(300, "world", seed=1)
    other = space_entities(300, "world", seed=2)  # as many rows, other entities
    more = space_entities(600, "world", seed=3)
    usa = space_entities(300, "usa", seed=4)
    made = {
        "probe": _save(root, world, "probe", "2026-01-01", seed=1),
        "same_count": _save(root, other, "same-count", "2026-01-02", random_init=True, skill=0.9),
        "own_rows": _save(root, world, "own-rows", "2026-01-03", random_init=True, skill=0.4),
        "more_rows": _save(root, more, "more-rows", "2026-01-04", random_init=True, skill=0.0),
        "us_probe": _save(root, usa, "us-probe", "2026-01-01", dataset="us_places", seed=5),
        "us_other": _save(
            root, usa.iloc[:200], "us-other", "2026-01-02", dataset="us_places", random_init=True
        ),
    }
    return {**made, "root": root}


def _cell(folder: Path) -> str:
    return control_cell(ProbeResults.load(folder))


def test_the_old_rules_would_disagree(disagreeing: dict[str, Path]) -> None:
    """The catalog really is one where a count rule and a newest-most-rows rule differ
    from identical rows, and the three controls' numbers tell them apart."""
    catalog = discover(disagreeing["root"])
    probe = catalog.find(MODEL, "world_places", "empty")
    newest = catalog.find(model_id(MODEL, True), "world_places", "empty")
    assert probe is not None and newest is not None
    assert newest.folder == disagreeing["more_rows"]  # what the pages and CLI read
    same_count = catalog.entries[
        [e.folder for e in catalog.entries].index(disagreeing["same_count"])
    ]
    assert same_count.n_entities == probe.n_entities  # what the scoreboard read
    assert not same_count.meta.shares_rows(probe.meta)
    cells = {_cell(disagreeing[k]) for k in ("same_count", "own_rows", "more_rows")}
    assert len(cells) == 3


def test_every_consumer_reads_the_control_on_identical_rows(
    disagreeing: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = disagreeing["root"]
    results = shipped_results(root)
    probe = next(r for r in results if r.path == disagreeing["probe"])
    expected = ProbeResults.load(disagreeing["own_rows"])

    # the scoreboard row
    board = scoreboard(results, with_paper=False)
    assert board.loc[("world_places", MODEL), "random-init R²"] == control_cell(expected)

    # findings' Context (and the claim that reads it)
    control = Context(tuple(results), None, n_boot=200).control_of(probe)
    assert control is not None and control.path == disagreeing["own_rows"]
    found = beats_controls(probe, Context(tuple(results), None, n_boot=200))[0]
    assert "random init on the same 300 entities" in found.evidence

    # the pages' loader (Layers, Research and the scale view call it)
    catalog = discover(root)
    entry = catalog.find(MODEL, "world_places", "empty")
    assert entry is not None
    loaded_control, why = load_control(catalog, load(entry))
    assert loaded_control is not None and why == ""
    assert loaded_control.entry.folder == disagreeing["own_rows"]

    # the CLI's baseline lines
    r2 = expected.metric_at(expected.best_layer())
    assert f"random-init control (n=300): test R2 {r2:.4f}" in baseline_lines(probe, root)

    # and what the Layers page draws: the control's line, with its interval
    monkeypatch.setenv("SPACETIME_CACHE", str(root))
    at = make_app({"model": MODEL, "dataset": "world_places"}).run()
    at.switch_page("pages/layers.py").run()
    no_exceptions(at)
    names = {t["name"] for t in charts(at)[0]["data"]}
    pm = probe_r2(expected, expected.best_layer()).pm()
    assert f"random init ({pm})" in names


def test_a_missing_control_is_reported_never_substituted(disagreeing: dict[str, Path]) -> None:
    root = disagreeing["root"]
    results = shipped_results(root)
    us = next(r for r in results if r.path == disagreeing["us_probe"])

    assert scoreboard(results, with_paper=False).loc[("us_places", MODEL), "random-init R²"] == ""
    ctx = Context(tuple(results), None, n_boot=200)
    assert ctx.control_of(us) is None
    assert beats_controls(us, ctx)[0].verdict == "not tested"

    catalog = discover(root)
    entry = catalog.find(MODEL, "us_places", "empty")
    assert entry is not None
    control, why = load_control(catalog, load(entry))
    assert control is None and "not on these rows" in why and "n=200" in why

    lines = baseline_lines(us, root)
    assert "random-init control: not on these rows" in lines
    assert "random-init control (n=" not in lines
