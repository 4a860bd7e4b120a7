"""The Compare page's logic: depth -> layer, the default pair, panels and their figure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from core.results.catalog import ResultEntry
from core.results.meta import ResultMeta
from core.viz import compare_figures as cf
from core.viz import figures as figs
from tests.support.synthetic import space_entities, synthetic_results, time_entities


def entry(model: str, n_layers: int = 6, d_model: int = 32, random_init: bool = False):  # type: ignore[no-untyped-def]
    meta = ResultMeta(
        model=model,
        dataset="world_places",
        kind="space",
        random_init=random_init,
        n_entities=10,
        layers=tuple(range(n_layers)),
        n_model_layers=n_layers,
        d_model=d_model,
        key=model,
    )
    return ResultEntry(folder=Path("/nonexistent") / model, key=model, stamp="", meta=meta)


# ------------------------------------------------------------------ models
@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("smollm2-135m", 135e6),
        ("gemma3-270m", 270e6),
        ("meta-llama/Llama-2-7b-hf", 7e9),
        ("Qwen2.5-1.5B", 1.5e9),
        ("pythia-1.4b-deduped", 1.4e9),
        ("Mistral-7B-v0.1", 7e9),
        ("gpt2", None),
        ("/models/my-model", None),
    ],
)
def test_size_from_the_model_name(name: str, size: float | None) -> None:
    assert cf.name_size(name) == size


def test_models_rank_largest_first_and_controls_last() -> None:
    entries = [
        entry("smollm2-135m", 30, 576),
        entry("smollm2-135m", 30, 576, random_init=True),
        entry("gemma3-270m", 18, 640),
        entry("gpt2", 12, 768),  # no size in the name: 12 · 12 · 768² ≈ 85M
    ]
    ranked = [e.model_id for e in cf.rank_models(entries)]
    assert ranked == ["gemma3-270m", "smollm2-135m", "gpt2", "smollm2-135m@random"]


def test_default_pair_is_the_two_largest_trained_models() -> None:
    entries = [
        entry("smollm2-135m"),
        entry("smollm2-135m", random_init=True),
        entry("gemma3-270m"),
    ]
    left, right = cf.choose_models(entries)
    assert left is not None and right is not None
    assert (left.model_id, right.model_id) == ("gemma3-270m", "smollm2-135m")


def ids(pair: tuple[ResultEntry | None, ResultEntry | None]) -> tuple[str | None, ...]:
    return tuple(e.model_id if e else None for e in pair)


def test_a_pick_keeps_the_other_side_on_a_model_not_shown() -> None:
    entries = [entry("smollm2-135m"), entry("gemma3-270m"), entry("smollm2-135m", random_init=True)]
    assert ids(cf.choose_models(entries, "smollm2-135m@random")) == (
        "smollm2-135m@random",
        "gemma3-270m",
    )
    assert ids(cf.choose_models(entries, "", "gemma3-270m")) == ("smollm2-135m", "gemma3-270m")
    assert ids(cf.choose_models(entries, "gemma3-270m", "gemma3-270m")) == (
        "gemma3-270m",
        "gemma3-270m",
    )
    # an id without results here counts as the default
    assert ids(cf.choose_models(entries, "no-such-model")) == ("gemma3-270m", "smollm2-135m")


def test_one_trained_model_is_shown_alone() -> None:
    only = [entry("smollm2-135m"), entry("smollm2-135m", random_init=True)]
    left, right = cf.choose_models(only)
    assert left is not None and left.model_id == "smollm2-135m" and right is None
    # controls only: shown rather than nothing
    left, right = cf.choose_models([entry("smollm2-135m", random_init=True)])
    assert left is not None and left.random_init and right is None
    assert cf.choose_models([]) == (None, None)


# ------------------------------------------------------------------ panels
@pytest.fixture(scope="module")
def pair():  # type: ignore[no-untyped-def]
    world = space_entities(200, "world", seed=3)
    big = synthetic_results(world, "space", 18, 8, "gemma3-270m", seed=1)
    small = synthetic_results(world, "space", 30, 8, "smollm2-135m", seed=2, skill=0.6)
    return big, small


def test_panel_is_the_test_split_at_the_nearest_layer(pair) -> None:  # type: ignore[no-untyped-def]
    big, small = pair
    p = cf.panel(big, 0.5, "gemma3-270m")
    n_test = int(big.entities["is_test"].sum())
    assert p.layer == 8 and p.n_model_layers == 18 and p.depth == 0.5
    assert len(p.frame) == p.n_total == n_test and p.frame["is_test"].all()
    assert p.test_r2 == pytest.approx(big.metric_at(8, "r2", "test"))
    rows = np.flatnonzero(big.entities["is_test"].to_numpy())
    np.testing.assert_allclose(p.frame["pred_lat"], big.predictions[8][rows, 0])
    assert p.title.startswith("gemma3-270m: layer 8 of 18 · test R² 0.")
    q = cf.panel(
        small,
        0.5,
        "smollm2-135m",
        max_points=10,
        safe_names=figs.escape_names(small.entities["name"]),
    )
    assert q.layer == 14 and len(q.frame) == 10 and q.n_total == n_test
    assert "name_html" in q.frame


def test_panel_without_test_metrics_says_so(pair) -> None:  # type: ignore[no-untyped-def]
    big, _ = pair
    stripped = dataclasses.replace(big, metrics=big.metrics[big.metrics["split"] == "train"])
    p = cf.panel(stripped, 1.0, "x")
    assert p.test_r2 is None and p.title.endswith("test R² –")


# ------------------------------------------------------------------ figure
def test_two_maps_side_by_side_with_one_legend(pair) -> None:  # type: ignore[no-untyped-def]
    big, small = pair
    panels = [cf.panel(big, 0.5, "gemma3-270m"), cf.panel(small, 0.5, "smollm2-135m")]
    fig = cf.compare_figure(panels, "space", scope="world", color="continent", title="t")
    markers = [t for t in fig.data if t.mode == "markers"]
    assert {t.geo for t in markers} == {"geo", "geo2"}
    for geo, p in (("geo", panels[0]), ("geo2", panels[1])):
        assert sum(len(t.lat) for t in markers if t.geo == geo) == len(p.frame)
    # each continent once in the legend, both panels' traces toggled together
    legend = [t.name for t in markers if t.showlegend is not False]
    assert sorted(legend) == sorted(set(big.entities["continent"]))
    assert all(t.legendgroup == t.name for t in markers)
    assert fig.layout.geo.projection.type == fig.layout.geo2.projection.type == "natural earth"
    assert fig.layout.geo.domain.x[1] <= fig.layout.geo2.domain.x[0]
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("<b>gemma3-270m</b><br>layer 8 of 18")
    assert titles[1].startswith("<b>smollm2-135m</b><br>layer 14 of 30")
    assert fig.layout.title.text == "t"
    # the Maps page's hover, carried over
    assert all("error %{customdata[2]" in t.hovertemplate for t in markers)


def test_us_scope_and_segments_reach_both_maps() -> None:
    usa = space_entities(120, "usa", seed=5)
    a = synthetic_results(usa, "space", 6, 8, "a-1b", seed=1)
    b = synthetic_results(usa, "space", 12, 8, "b-7b", seed=2)
    fig = cf.compare_figure(
        [cf.panel(a, 1.0, "a-1b"), cf.panel(b, 1.0, "b-7b")], "space", "usa", segments=True
    )
    assert fig.layout.geo.projection.type == fig.layout.geo2.projection.type == "albers usa"
    assert sum(t.name == "true → predicted" for t in fig.data) == 2
    assert sum(t.name == "true → predicted" and t.showlegend is not False for t in fig.data) == 1


def test_timelines_share_their_scale() -> None:
    people = time_entities(200, seed=2)
    a = synthetic_results(people, "time", 18, 8, "gemma3-270m", seed=1)
    b = synthetic_results(people, "time", 30, 8, "smollm2-135m", seed=2)
    fig = cf.compare_figure([cf.panel(a, 0.5, "A"), cf.panel(b, 0.5, "B")], "time")
    assert sum(t.name == "y = x" for t in fig.data) == 2
    assert {t.xaxis for t in fig.data} == {"x", "x2"}
    assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis2.matches == "y"
    assert fig.layout.xaxis.title.text == fig.layout.xaxis2.title.text == "true year"
    one = cf.compare_figure([cf.panel(a, 0.5, "A")], "time")
    assert "xaxis2" not in one.layout and len(one.layout.annotations) == 1


def test_labels_are_text_and_presentation_is_larger(pair) -> None:  # type: ignore[no-untyped-def]
    big, _ = pair
    p = cf.panel(big, 1.0, "<img src=x onerror=alert(1)>")
    fig = cf.compare_figure([p], "space", style=figs.Style(presentation=True), title="<b>")
    assert fig.layout.annotations[0].text.startswith("<b>&lt;img src=x onerror=alert(1)&gt;</b>")
    assert fig.layout.title.text == "&lt;b&gt;"
    assert fig.layout.font.size == 22 and fig.layout.annotations[0].font.size == 23
    small = cf.compare_figure([p], "space")
    assert small.layout.font.size == 13 and small.layout.height < fig.layout.height


def test_bad_figure_requests_raise(pair) -> None:  # type: ignore[no-untyped-def]
    big, _ = pair
    with pytest.raises(ValueError):
        cf.compare_figure([], "space")
    with pytest.raises(ValueError):
        cf.compare_figure([cf.panel(big, 1.0, "x")], "colour")


def test_file_stem_names_both_models_and_the_depth() -> None:
    stem = cf.file_stem(["gemma3-270m", "smollm2-135m@random"], "world_places", "empty", 0.5)
    assert stem == "compare_gemma3-270m-vs-smollm2-135m-random_world_places_empty_depth0.50"
