"""Shipped demo results: the default view, the scoreboard, and a bit-exact rebuild of the
check slice."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.common.cache import default_cache_root
from core.results import intervals
from core.results.catalog import best_model_on, discover
from core.results.probe_results import ProbeResults
from core.results.published import PAPER_ROWS
from core.results.reproduce import compare_results
from core.results.shipped import (
    CHECK_SLICE,
    markdown_table,
    scoreboard,
    scoreboard_markdown,
    shipped_results,
)
from tests.support.recorded import ONE_THREAD, rerun_recorded
from tests.support.synthetic import save_synthetic, space_entities, synthetic_results

REPO = Path(__file__).resolve().parents[2]


def test_default_view_is_the_best_world_model(cache_root) -> None:  # type: ignore[no-untyped-def]
    world = space_entities(300, "world", seed=1)
    for model, skill, rand in (
        ("smollm2-135m", 0.5, False),
        ("gemma3-270m", 1.0, False),
        ("smollm2-135m", 1.5, True),
    ):
        save_synthetic(
            cache_root,
            synthetic_results(
                world, "space", 6, 16, model, "world_places", skill=skill, random_init=rand
            ),
        )
    catalog = discover(cache_root)
    # the random-init control scores "best" here but is a control, never the default
    assert best_model_on(catalog, "world_places") == "gemma3-270m"
    assert best_model_on(catalog, "us_places") is None


def test_scoreboard_table(cache_root) -> None:  # type: ignore[no-untyped-def]
    world = space_entities(300, "world", seed=1)
    res = synthetic_results(world, "space", 6, 16, "smollm2-135m", "world_places")
    control = synthetic_results(
        world, "space", 6, 16, "smollm2-135m", "world_places", random_init=True, skill=0.2
    )
    for item in (res, control):
        save_synthetic(cache_root, item)
    table = scoreboard(shipped_results(cache_root))
    row = table.loc[("world_places", "smollm2-135m")]
    layer = res.best_layer()
    train = res.metrics[res.metrics["split"] == "train"]
    assert layer == int(train.loc[train["loo_r2"].idxmax(), "layer"])  # chosen on train
    assert row["layer"] == f"L{layer}/6"
    # each test R² ± half its 95% interval (bootstrap over test rows of the predictions)
    assert row["test R²"] == intervals.probe_r2(res, layer).compact()
    assert row["test R²"].startswith(f"{res.metric_at(layer):.2f} ")
    # baselines without stored predictions: the bare figure
    assert row["name-only R²"] == "0.10" and row["group-mean R²"] == "0.05 (group)"
    assert row["random-init R²"].startswith(f"{control.metric_at(control.best_layer()):.2f} ")
    assert ("world_places", "smollm2-135m@random") not in table.index  # a control, not a row
    text = markdown_table(table)
    assert text.splitlines()[0].startswith("| dataset | model | family | n | layer | test R²")
    assert row["family"] == "SmolLM2"
    assert "±" in scoreboard_markdown(shipped_results(cache_root))
    # the paper's Llama-2 rows follow, labelled, at their fixed layer, for shown datasets only
    paper = [m for d, m in table.index if d == "world_places" and "(paper)" in m]
    assert paper == [f"{r.model} (paper)" for r in PAPER_ROWS]
    first = table.loc[("world_places", f"{PAPER_ROWS[0].model} (paper)")]
    assert first["test R²"] == f"{PAPER_ROWS[0].test_r2['world_places']:.3f}"
    assert first["layer"].endswith("fixed") and first["random-init R²"] == "0.298"
    assert {d for d, _ in table.index} == {"world_places"}
    assert len(scoreboard(shipped_results(cache_root), with_paper=False)) == 1


def test_scoreboard_reads_only_the_shipped_list(cache_root) -> None:  # type: ignore[no-untyped-def]
    """A result a user builds into the cache never changes the shipped scoreboard."""
    from core.results.shipped import write_shipped_index

    world = space_entities(300, "world", seed=1)
    shipped = synthetic_results(world, "space", 6, 16, "smollm2-135m", "world_places")
    save_synthetic(cache_root, shipped)
    write_shipped_index(cache_root, [shipped.path])
    people = synthetic_results(
        world.assign(year=1900.0), "time", 6, 16, "smollm2-135m", "paper_world_place"
    )
    save_synthetic(cache_root, people)
    assert [r.dataset for r in shipped_results(cache_root)] == ["world_places"]
    assert len(shipped_results(cache_root, everything=True)) == 2


def _shipped_slice() -> ProbeResults:
    model, dataset, limit = CHECK_SLICE
    for res in shipped_results(default_cache_root()):
        spec = res.manifest["spec"]
        if (
            spec["model"] == model
            and spec["dataset"] == dataset
            and spec.get("limit") == limit
            and not spec["random_init"]
        ):
            return res
    raise AssertionError(
        f"the shipped check slice {CHECK_SLICE} is missing from {default_cache_root()}/results"
    )


@pytest.mark.slow
def test_check_slice_reproduces_shipped_numbers(cache_root) -> None:  # type: ignore[no-untyped-def]
    """Run the exact command recorded in the shipped manifest, on one BLAS thread (another
    machine state than the shipped build's): the numbers agree within `TOLERANCE`."""
    shipped = _shipped_slice()
    rerun_recorded(shipped.manifest, cache_root, env=ONE_THREAD)
    assert shipped.path is not None
    rebuilt = ProbeResults.load(cache_root / "results" / shipped.path.name)  # same cache key
    assert compare_results(rebuilt, shipped) == []


def test_shipped_results_verify() -> None:
    """Every shipped result matches its manifest checksums and records the command that made it."""
    results = shipped_results(default_cache_root())
    assert results, "no shipped results"
    for res in results:
        assert res.path is not None
        ProbeResults.load(res.path, verify=True)
        assert res.manifest["command"].startswith("python -m core build --model ")
        assert "activations" not in {p.name for p in res.path.iterdir()}


def test_readme_scoreboard_matches_shipped_results() -> None:
    """The README table and docs/results.md are generated from the shipped results, never
    typed by hand."""
    from core.results.shipped import readme_scoreboard, scoreboard_markdown

    results = shipped_results(default_cache_root())
    hint = "run: python -m core scoreboard --write README.md --write docs/results.md"
    assert readme_scoreboard(REPO / "README.md") == scoreboard_markdown(results), hint
    full = readme_scoreboard(REPO / "docs" / "results.md", full=True)
    assert full == scoreboard_markdown(results, full=True), hint


def test_the_dashboard_opens_on_a_model_the_first_run_converts(cache_root) -> None:  # type: ignore[no-untyped-def]
    from core.results.catalog import OPENING_MODELS

    world = space_entities(300, "world", seed=1)
    for model, skill in (("qwen2.5-coder-1.5b", 1.0), ("gemma3-270m", 0.6), ("smollm2-135m", 0.3)):
        save_synthetic(
            cache_root, synthetic_results(world, "space", 6, 16, model, "world_places", skill=skill)
        )
    catalog = discover(cache_root)
    assert best_model_on(catalog, "world_places") == "qwen2.5-coder-1.5b"
    assert best_model_on(catalog, "world_places", among=OPENING_MODELS) == "gemma3-270m"
    # `make run` converts exactly these before the dashboard's first view
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    first = next(line for line in makefile.splitlines() if "core prepare" in line)
    assert first.count("--model") == len(OPENING_MODELS)
    assert all(f"--model {m}" in first for m in OPENING_MODELS)
