"""Results discovery: what the dashboard can offer, and the build commands it prints."""

from __future__ import annotations

from pathlib import Path

from core.results import catalog as cat
from tests.support.synthetic import save_synthetic, space_entities, synthetic_results


def _save(
    root: Path, n: int, key: str, random_init: bool = False, model: str = "smollm2-135m"
) -> None:
    res = synthetic_results(
        space_entities(n, "world"), "space", 3, 8, model=model, random_init=random_init
    )
    save_synthetic(root, res, key=key)


def test_discover_and_pick_the_largest(tmp_path: Path) -> None:
    _save(tmp_path, 40, "small")
    _save(tmp_path, 80, "large")
    _save(tmp_path, 40, "control", random_init=True)
    _save(tmp_path, 40, "other", model="gemma3-270m")
    (tmp_path / "results" / "junk").mkdir()
    (tmp_path / "results" / "junk" / "manifest.json").write_text("{not json")
    catalog = cat.discover(tmp_path)
    assert len(catalog) == 4
    assert catalog.models() == ["gemma3-270m", "smollm2-135m", "smollm2-135m@random"]
    best = catalog.find("smollm2-135m", "world_places", "empty")
    assert best is not None and best.key == "large" and best.n_entities == 80
    assert [e.model_id for e in catalog.compare("world_places", "empty")] == [
        "gemma3-270m",
        "smollm2-135m",
        "smollm2-135m@random",
    ]
    assert catalog.find("smollm2-135m", "nyc_places", "empty") is None


def test_signature_changes_when_results_are_rewritten(tmp_path: Path) -> None:
    assert cat.signature(tmp_path) == ()
    _save(tmp_path, 30, "a")
    first = cat.signature(tmp_path)
    _save(tmp_path, 31, "a")
    assert cat.signature(tmp_path) != first


def test_model_ids_and_build_commands() -> None:
    assert cat.split_model_id(cat.model_id("gemma3-270m", True)) == ("gemma3-270m", True)
    assert cat.model_label("smollm2-135m@random") == "smollm2-135m (random init)"
    assert cat.build_command("smollm2-135m@random", "us_places", "coords") == (
        "python -m core build --model smollm2-135m --dataset us_places --prompt coords "
        "--random-init"
    )
    assert (
        cat.build_command("my model", "x.csv", None)
        == "python -m core build --model 'my model' --dataset x.csv"
    )
    assert cat.known_models()[0] == cat.DEFAULT_MODEL
