"""Published anchors: the embedded models on the paper's data beside published R²."""

from __future__ import annotations

from core.results.anchors import (
    ANCHOR_CELLS,
    ANCHOR_LIMIT,
    PARAMS_BILLION,
    anchor_builds,
    anchor_table,
    anchors_markdown,
)
from tests.support.synthetic import space_entities, synthetic_results


def test_every_embedded_model_is_built_on_every_cell() -> None:
    builds = anchor_builds()
    assert {(b.model, b.dataset, b.prompt) for b in builds} == {
        (m, d, p) for m in PARAMS_BILLION for d, p in ANCHOR_CELLS
    }
    assert {(b.limit, b.dtype) for b in builds} == {(ANCHOR_LIMIT, "bfloat16")}
    assert ("paper_world_place", "where_world") in ANCHOR_CELLS


def test_the_table_sits_beside_the_published_scale() -> None:
    world = space_entities(300, "world", seed=2)
    results = [
        synthetic_results(world, "space", 4, 8, model=m, dataset="paper_world_place", seed=i)
        for i, m in enumerate(("qwen2.5-coder-1.5b", "smollm2-135m"))
    ]
    table = anchor_table(results)
    assert table["params (B)"].tolist() == [1.54, 0.135]
    text = anchors_markdown(table)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    # embedded models by size, then the published ones by size
    assert rows[1].startswith("| smollm2-135m | 0.135 |")
    assert rows[2].startswith("| qwen2.5-coder-1.5b | 1.54 |")
    published = [r.split(" | ")[0][2:] for r in rows[4:]]
    assert published == [
        "Pythia-14M",
        "Pythia-160M",
        "Pythia-1B",
        "Pythia-2.8B",
        "Llama-2-7b",
        "Llama-2-13b",
        "Llama-2-70b",
    ]
    best = results[1].metric_at(results[1].best_layer())
    assert f"{best:.3f} (L" in rows[1]
