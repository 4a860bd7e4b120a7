"""The scoreboard's intervals, its controls on the probes' own entities, and eras."""

from __future__ import annotations

import numpy as np

from core.results import intervals
from core.results.shipped import (
    CHECK_SLICE,
    SAMPLE_LIMITS,
    demo_builds,
    era_table,
    scoreboard,
    scoreboard_markdown,
    shipped_results,
    superseded,
)
from tests.support.synthetic import (
    save_synthetic,
    space_entities,
    synthetic_results,
    time_entities,
)


def test_scoreboard_shows_stored_baselines_and_controls_with_intervals(cache_root) -> None:  # type: ignore[no-untyped-def]
    nyc = space_entities(300, "nyc", seed=2)
    res = synthetic_results(nyc, "space", 6, 16, "smollm2-135m", "nyc_places")
    n = len(nyc)
    y = nyc[["lat", "lon"]].to_numpy()
    res.baseline_preds = {"name_only": y + np.random.default_rng(0).normal(0, 0.02, (n, 2))}
    small = synthetic_results(
        nyc.iloc[:200], "space", 6, 16, "smollm2-135m", "nyc_places", random_init=True
    )
    same = synthetic_results(
        nyc, "space", 6, 16, "smollm2-135m", "nyc_places", random_init=True, seed=5
    )
    for item in (res, small, same):
        save_synthetic(cache_root, item, key=None if item is not small else "small-control")
    row = scoreboard(shipped_results(cache_root)).loc[("nyc_places", "smollm2-135m")]
    assert row["name-only R²"] == intervals.baseline_r2(res, "name_only").compact()  # type: ignore[union-attr]
    # the control on the probe's own entities is the one read, not the one on 200
    assert row["random-init R²"] == intervals.probe_r2(same, same.best_layer()).compact()
    only_small = [
        r for r in shipped_results(cache_root) if len(r.entities) != 300 or not r.meta.random_init
    ]
    # with only a control on other rows there is none: reported empty, never substituted
    assert scoreboard(only_small).loc[("nyc_places", "smollm2-135m"), "random-init R²"] == ""


def test_controls_run_on_their_probes_entities() -> None:
    builds = demo_builds()
    probes = {
        (b.model, b.dataset, b.limit)
        for b in builds
        if not b.random_init and (b.model, b.dataset, b.limit) != CHECK_SLICE
    }
    controls = [b for b in builds if b.random_init]
    assert controls
    for control in controls:
        assert control.limit == SAMPLE_LIMITS.get(control.dataset)
        assert (control.model, control.dataset, control.limit) in probes
    # every probe has its control on the same rows
    assert probes == {(b.model, b.dataset, b.limit) for b in controls}


def test_a_rebuilt_control_replaces_the_shipped_one(cache_root) -> None:  # type: ignore[no-untyped-def]
    world = space_entities(200, "world", seed=1)
    probe = synthetic_results(world, "space", 4, 8)
    old = synthetic_results(world.iloc[:100], "space", 4, 8, random_init=True)
    new = synthetic_results(world, "space", 4, 8, random_init=True)
    save_synthetic(cache_root, probe)
    save_synthetic(cache_root, old, key="old-control")
    save_synthetic(cache_root, new, key="new-control")
    assert superseded([probe, old], [new]) == [probe]
    assert superseded([probe, old], [probe]) == [probe, old]  # a rebuild of itself stays


def test_time_results_are_scored_within_eras() -> None:
    people = time_entities(1000, seed=3)
    people["year"] = np.linspace(-300, 2000, len(people)).round()
    res = synthetic_results(people, "time", 4, 8, dataset="historical_figures")
    table = era_table([res])
    eras = table.loc[("historical_figures", "smollm2-135m")]
    assert eras.index.tolist() == ["all", "before 1500", "1500–1800", "after 1800"]
    assert all(("±" in v or "[" in v) for v in eras["test R²"])
    assert all(("±" in v or "[" in v) for v in eras["Spearman"])
    test = people["is_test"].to_numpy(dtype=bool)
    assert eras.loc["before 1500", "test n"] == f"{int((test & (people['year'] < 1500)).sum()):,}"
    assert "Time datasets within eras" in scoreboard_markdown([res], full=True)
    assert "Time datasets within eras" not in scoreboard_markdown([res])
