"""The steering headline: the pre-registered cell, test entities, shuffled-target chance,
and a verdict that can be "inconclusive"; the docs print what the shipped runs say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.steer.evaluate import summarise
from core.steer.report import (
    BLOCKS,
    GLOBE_END,
    GLOBE_START,
    HEADLINE_START,
    PROTOCOL,
    TABLES_END,
    TABLES_START,
    block_text,
    bootstrap_difference,
    cells_table,
    headline,
    headline_of,
    read_block,
    shipped_runs,
    verdict,
    write_blocks,
)

REPO = Path(__file__).resolve().parents[2]
HEAD = 5  # the pre-registered layer of the synthetic runs


def _cell(seed: int, layer: int, strength: float, direction: str, hits: int, n: int):  # type: ignore[no-untyped-def]
    entity = np.arange(n) + 1000 * seed % 7  # overlapping entities across seeds
    ok = np.zeros(n, dtype=bool)  # which entities succeed: independent across arms
    ok[np.random.default_rng([seed, layer + 1, len(direction)]).permutation(n)[:hits]] = True
    return pd.DataFrame(
        {
            "seed": seed,
            "layer": layer,
            "strength": strength,
            "direction": direction,
            "entity": entity,
            "moved": ok,
            "kept": ~ok,
            "moved_continent": ok,
            "reading_error_at_layer": 0.0,
            "reading_error_last_layer": 0.0,
            "delta_norm": strength,
        }
    )


def synthetic_run(
    steered: int, chance: int, random: int = 10, untouched: int = 12, best: int = 150, n: int = 100
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:  # type: ignore[type-arg]
    """Three seeds of `n` pushes; per seed, the pre-registered cell (layer HEAD, strength
    1) has `steered` hits along the probe and `chance` with shuffled targets; layer 9 at
    strength 4 is the best cell by far (`best` hits of n... capped at n)."""
    frames = []
    for seed in (0, 1, 2):
        frames += [
            _cell(seed, -1, 0.0, "none", untouched, n),
            _cell(seed, HEAD, 1.0, "probe", steered, n),
            _cell(seed, HEAD, 1.0, "random", random, n),
            _cell(seed, HEAD, 1.0, "shuffled", chance, n),
            _cell(seed, 9, 4.0, "probe", min(best, n), n),
            _cell(seed, 9, 4.0, "random", random, n),
        ]
    examples = pd.concat(frames, ignore_index=True)
    manifest = {
        "protocol": PROTOCOL,
        "model": "smollm2-135m",
        "dataset": "world_places",
        "headline_layer": HEAD,
        "headline_strength": 1.0,
        "seeds": [0, 1, 2],
        "n": n,
        "question": "{name} is located in the country of",
        "answer_column": "country",
        "command": "python -m core steer --model smollm2-135m --dataset world_places",
    }
    return summarise(examples, HEAD), examples, manifest


def test_headline_reads_the_preregistered_cell_not_the_best() -> None:
    run = synthetic_run(steered=30, chance=10, best=95)
    h = headline_of(run)
    assert (h.layer, h.strength) == (HEAD, 1.0)
    assert (h.steered.success, h.steered.n) == (90, 300)  # 30 per seed, pooled
    text = headline(run)
    assert "layer 5, strength 1" in text and "90 of 300" in text
    assert "285 of 300" not in text and "layer 9" not in text  # the best cell stays out
    assert "3 seeds pooled" in text and "test entities" in text


def test_chance_is_the_shuffled_arm_not_random_or_untouched() -> None:
    run = synthetic_run(steered=30, chance=20, random=3, untouched=5)
    h = headline_of(run)
    assert h.chance.success == 60 and h.random.success == 9 and h.untouched.success == 15
    assert abs(h.difference - (90 - 60) / 300) < 1e-12
    assert "chance (shuffled targets) 60 of 300" in headline(run)


def test_an_interval_straddling_zero_is_inconclusive() -> None:
    assert verdict(-0.01, 0.03) == "inconclusive"
    assert verdict(0.0, 0.03) == "inconclusive"
    assert verdict(0.01, 0.05) == "works"
    assert verdict(-0.05, -0.01) == "fails"
    # 51 vs 45 of 300 (the reviewer's strength-1 numbers, scaled): not distinguishable
    close = headline_of(synthetic_run(steered=17, chance=15))
    assert close.low < 0 < close.high and close.verdict == "inconclusive"
    assert "inconclusive" in headline(synthetic_run(steered=17, chance=15))
    clear = headline_of(synthetic_run(steered=40, chance=15))
    assert clear.low > 0 and clear.verdict == "works"
    assert headline_of(synthetic_run(steered=5, chance=40)).verdict == "fails"


def test_bootstrap_keeps_entities_together() -> None:
    entity = np.repeat(np.arange(50), 3)  # each entity pushed in three seeds
    same = np.tile([True, False, False], 50)
    diff, low, high = bootstrap_difference(entity, same, entity, same)
    assert diff == 0.0 and low == high == 0.0  # paired, identical arms: no spread at all
    rng = np.random.default_rng(1)
    a, b = rng.random(150) < 0.5, rng.random(150) < 0.5
    diff, low, high = bootstrap_difference(entity, a, entity, b)
    assert low < diff < high and high - low < 0.4


def test_older_runs_get_no_headline() -> None:
    summary, examples, manifest = synthetic_run(steered=30, chance=10)
    legacy = {k: v for k, v in manifest.items() if k != "protocol"}
    text = headline((summary, examples, legacy))
    assert "predates the pre-registered protocol" in text
    assert "python -m core steer --model smollm2-135m --dataset world_places" in text
    with pytest.raises(ValueError, match="predates"):
        headline_of((summary, examples, legacy))


def test_cells_table_marks_the_preregistered_cell() -> None:
    table = cells_table(synthetic_run(steered=30, chance=10))
    labels = [f"{layer} {strength}" for layer, strength in table.index]
    assert labels == ["untouched 0", "5 1 (pre-registered)", "9 4"]
    assert table.loc[("5", "1 (pre-registered)"), "shuffled target (chance)"].startswith("30/300")


def test_write_blocks_replaces_between_markers(tmp_path: Path) -> None:
    run = synthetic_run(steered=30, chance=10)
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{HEADLINE_START}\nold\n{BLOCKS[0][1]}\nend\n")
    assert write_blocks(doc, [run]) == [HEADLINE_START]
    assert read_block(doc, *BLOCKS[0]) == block_text([run], HEADLINE_START)
    assert doc.read_text().startswith("intro\n") and doc.read_text().endswith("end\n")
    bare = tmp_path / "bare.md"
    bare.write_text("nothing")
    with pytest.raises(ValueError, match="no steering markers"):
        write_blocks(bare, [run])


def test_docs_print_what_the_shipped_runs_say() -> None:
    root = REPO / "cache"
    runs = shipped_runs(root)
    assert runs, "no shipped steering runs"
    hint = "run: python -m core steer-report --write docs/steering.md --write README.md"
    docs = REPO / "docs" / "steering.md"
    assert read_block(docs, TABLES_START, TABLES_END) is not None
    assert read_block(docs, GLOBE_START, GLOBE_END) is not None
    for path in (docs, REPO / "README.md"):
        for start, end in BLOCKS:
            found = read_block(path, start, end)
            assert found is None or found == block_text(runs, start, root), f"{path}: {hint}"


def test_chart_rings_the_preregistered_cell_and_draws_chance() -> None:
    from core.viz.steer_figures import steering_success_figure

    summary = synthetic_run(steered=30, chance=10)[0]
    fig = steering_success_figure(summary, what="country")
    named = {trace.name: trace for trace in fig.data}
    assert (
        "pre-registered cell (layer 5)" in named and "chance (shuffled targets) (layer 5)" in named
    )
    assert list(named["chance (shuffled targets) (layer 5)"].y) == [30 / 300]
    assert "continent" in fig.layout.yaxis.title.text  # the headline's metric, not the country
    legacy = summary.drop(columns=["success", "metric", "preregistered"])
    legacy = legacy[legacy["direction"] != "shuffled"]
    names = {trace.name for trace in steering_success_figure(legacy).data}
    assert not any("pre-registered" in n for n in names)
