"""Placement inside groups on screen (issue 29): the Layers page's within-group curve and
its "not built" note, the Maps page's between-countries caption and "within" view, for
world (country), US (state) and NYC (borough) results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.common.cache import artifact_dir, write_manifest
from core.extract.layer_files import layer_name
from core.results.probe_results import ProbeResults
from core.results.within import (
    BETWEEN_WITHIN,
    WITHIN,
    add_within_probe,
    decomposition_at,
    decomposition_of,
    decomposition_table,
    group_offsets,
    load_within,
)
from core.viz.within_figures import pct
from pages._state import widget_key
from tests.app.conftest import make_app
from tests.app.test_pages import arr, charts, no_exceptions, texts
from tests.support.synthetic import save_synthetic, space_entities, synthetic_results

N_LAYERS = 4


def _fake_activations(root: Path, res: ProbeResults, key: str, seed: int) -> Path:
    """An activation cache whose layers carry the truth ever more clearly with depth (the
    within-group probe then has something to read), under the ActivationStore layout."""
    rng = np.random.default_rng(seed)
    y = res.entities[list(res.target_names)].to_numpy(np.float64)
    z = (y - y.mean(0)) / y.std(0)
    d = 16
    dirs = rng.normal(size=(z.shape[1], d))
    folder = artifact_dir(root, "activations", key)
    folder.mkdir(parents=True)
    for layer in res.layers:
        signal = (int(layer) + 1) / N_LAYERS
        acts = signal * z @ dirs + rng.normal(size=(len(z), d))
        np.save(folder / layer_name(int(layer)), acts.astype(np.float32))
    write_manifest(
        folder,
        {
            "artifact": "activations",
            "layers": [int(v) for v in res.layers],
            "n_entities": len(z),
            "d_model": d,
        },
    )
    return folder


def _world(seed: int) -> pd.DataFrame:
    world = space_entities(360, "world", seed=seed)
    world["country"] = world["continent"] + "-" + (np.arange(len(world)) % 3).astype(str)
    return world


@pytest.fixture(scope="module")
def within_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 on world / US / NYC places with the within-group probe built; Gemma-3 on
    world places without it (and without a stored decomposition)."""
    root = tmp_path_factory.mktemp("within-cache")
    world = _world(1)
    made = []
    for dataset, entities, seed in (
        ("world_places", world, 1),
        ("us_places", space_entities(300, "usa", seed=5), 5),
        ("nyc_places", space_entities(300, "nyc", seed=6), 6),
    ):
        res = synthetic_results(entities, "space", N_LAYERS, 16, "smollm2-135m", dataset, seed=seed)
        made.append((save_synthetic(root, res), res, seed))
    for folder, res, seed in made:
        acts = _fake_activations(root, res, f"acts-{folder.name}", seed)
        assert add_within_probe(folder, acts)
    gemma = synthetic_results(world, "space", N_LAYERS, 16, "gemma3-270m", "world_places", seed=2)
    save_synthetic(root, gemma)
    return root


@pytest.fixture
def within_env(within_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SPACETIME_CACHE", str(within_root))
    monkeypatch.setenv("SPACETIME_FAKE_MODEL", "tests.support.tiny:tiny_model")
    yield within_root


def _result(root: Path, model: str, dataset: str) -> ProbeResults:
    return ProbeResults.load(root / "results" / f"{model}__{dataset}__empty__synthetic")


def _captions(at) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(texts(at, "caption"))


# ------------------------------------------------------------------ layers
def test_layers_page_draws_the_within_curve_beside_the_overall_one(within_env: Path) -> None:
    res = _result(within_env, "smollm2-135m", "world_places")
    within = load_within(res)
    assert within is not None and within.grouping == "country"
    at = make_app().run()
    at.switch_page("pages/layers.py").run()
    no_exceptions(at)
    curves = charts(at)[0]
    by_name = {t["name"]: t for t in curves["data"]}
    assert {"test", "train", "within country (test)"} <= set(by_name)
    line = by_name["within country (test)"]
    curve = within.curve().sort_values("layer")
    assert np.allclose(arr(line["x"]), curve["layer"])
    assert np.allclose(arr(line["y"]), curve["r2"])
    assert line["yaxis"] == "y"  # on the R² panel, beside the overall curve
    # its band: the upper edge and the lower one filled up to it
    band = [t for t in curves["data"] if t["name"] == "within country 95% interval"]
    assert len(band) == 2 and band[1]["fill"] == "tonexty"
    assert np.allclose(arr(band[0]["y"]), curve["hi"]) and np.allclose(
        arr(band[1]["y"]), curve["lo"]
    )
    star = by_name["within country: layer chosen on training rows"]
    assert list(arr(star["x"])) == [within.layer]
    names_only = [n for n in by_name if n.startswith("within country: names only (")]
    assert names_only and within.test_r2("name_only").compact() in names_only[0]
    # the caption says what the target is, which grouping and the chosen layer's numbers
    text = _captions(at)
    assert "each entity's position (lat, lon) minus its country's training mean" in text
    assert f"the {within.n_groups:,} countries with at least 5 training rows" in text
    assert f"At layer {within.layer}, chosen on training rows: test R² " in text
    assert within.test_r2().compact() in text
    assert not any("not built yet" in i for i in texts(at, "info"))


def test_layers_page_says_when_the_within_probe_is_not_built(within_env: Path) -> None:
    res = _result(within_env, "gemma3-270m", "world_places")
    assert load_within(res) is None
    at = make_app({"model": "gemma3-270m"}).run()
    at.switch_page("pages/layers.py").run()
    no_exceptions(at)
    notes = [i for i in texts(at, "info") if "not built yet" in i]
    assert len(notes) == 1
    assert "Within-country probe" in notes[0] and "python -m core.results.within " in notes[0]
    assert str(res.path) in notes[0]
    assert not any("within" in t["name"] for t in charts(at)[0]["data"])


# -------------------------------------------------------------------- maps
def _between_caption(at) -> str:  # type: ignore[no-untyped-def]
    found = [c for c in texts(at, "caption") if c.startswith("Between ")]
    assert len(found) == 1, texts(at, "caption")
    return found[0]


def test_world_map_caption_states_the_share_between_countries(within_env: Path) -> None:
    res = _result(within_env, "smollm2-135m", "world_places")
    assert (Path(str(res.path)) / BETWEEN_WITHIN).is_file()  # stored beside the probe
    at = make_app().run()
    no_exceptions(at)
    layer = int(at.query_params["layer"])
    split = decomposition_of(res, layer, "country")
    assert split is not None
    caption = _between_caption(at)
    assert caption.startswith("Between countries: putting every test entity at its country's")
    assert pct(split["group_share"]) in caption
    assert f"R²_within is {split['r2_within'].compact()}" in caption
    assert split["within_corr"].compact() in caption
    assert f"layer {layer}'s test R² ({split['r2'].compact()})" in caption
    # another layer, other numbers
    at.select_slider(key=widget_key("layer")).set_value(0).run()
    no_exceptions(at)
    first = decomposition_of(res, 0, "country")
    assert first is not None and first["r2_within"].point != split["r2_within"].point
    assert f"R²_within is {first['r2_within'].compact()}" in _between_caption(at)


def test_caption_is_computed_from_predictions_without_a_stored_split(within_env: Path) -> None:
    res = _result(within_env, "gemma3-270m", "world_places")
    folder = Path(str(res.path))
    assert not (folder / BETWEEN_WITHIN).is_file() and not (folder / WITHIN).is_file()
    at = make_app({"model": "gemma3-270m"}).run()
    no_exceptions(at)
    layer = int(at.query_params["layer"])
    # what a stored table would hold (the same seeded resamples)
    split = decomposition_at(decomposition_table(res), "country", "probe", layer)
    assert split is not None
    caption = _between_caption(at)
    assert pct(split["group_share"]) in caption
    assert f"R²_within is {split['r2_within'].compact()}" in caption


def test_within_view_plots_offsets_from_the_groups_centres(within_env: Path) -> None:
    res = _result(within_env, "smollm2-135m", "world_places")
    at = make_app().run()
    no_exceptions(at)
    layer = int(at.query_params["layer"])
    assert "Within countries" in texts(at, "subheader")
    view = charts(at)[1]
    points = [t for t in view["data"] if t.get("mode") == "markers"]
    expected = group_offsets(res, layer, "country")
    assert expected is not None and len(expected)
    for target, axis in (("lat", "x"), ("lon", "x2")):
        panel = [t for t in points if t["xaxis"] == axis]
        xs = np.concatenate([arr(t["x"]) for t in panel])
        ys = np.concatenate([arr(t["y"]) for t in panel])
        assert len(xs) == len(expected)
        assert np.allclose(np.sort(xs), np.sort(expected[f"true_{target}"]))
        assert np.allclose(np.sort(ys), np.sort(expected[f"pred_{target}"]))
    diagonal = [t for t in view["data"] if t["name"] == "y = x (placed exactly)"]
    assert len(diagonal) == 2
    text = _captions(at)
    split = decomposition_of(res, layer, "country")
    assert split is not None
    assert f"Here R²_within is {split['r2_within'].compact()}" in text
    # the view follows the layer slider
    at.select_slider(key=widget_key("layer")).set_value(0).run()
    moved = [t for t in charts(at)[1]["data"] if t.get("mode") == "markers"]
    at0 = group_offsets(res, 0, "country")
    assert at0 is not None
    ys0 = np.concatenate([arr(t["y"]) for t in moved if t["xaxis"] == "x"])
    assert np.allclose(np.sort(ys0), np.sort(at0["pred_lat"]))


@pytest.mark.parametrize(
    ("dataset", "one", "many"),
    [("us_places", "state", "states"), ("nyc_places", "borough", "boroughs")],
)
def test_us_and_nyc_split_by_state_and_borough(
    within_env: Path, dataset: str, one: str, many: str
) -> None:
    res = _result(within_env, "smollm2-135m", dataset)
    at = make_app({"dataset": dataset}).run()
    no_exceptions(at)
    layer = int(at.query_params["layer"])
    split = decomposition_of(res, layer, one)
    assert split is not None
    caption = _between_caption(at)
    assert caption.startswith(f"Between {many}: ")
    assert f"Within a {one}, R²_within is {split['r2_within'].compact()}" in caption
    assert f"Within {many}" in texts(at, "subheader")
    assert len(charts(at)) == 2
    # and the Layers page's within curve is the state / borough probe's
    at.switch_page("pages/layers.py").run()
    no_exceptions(at)
    assert any(t["name"] == f"within {one} (test)" for t in charts(at)[0]["data"])
    assert f"minus its {one}'s training mean" in _captions(at)
