"""AppTest of the Research page: analyses drawn when present, the analyze command when not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.common.config import SteerConfig
from core.results.probe_results import ProbeResults
from core.steer.evaluate import evaluate_steering, save_steering, steering_dir
from tests.app.conftest import make_app
from tests.app.test_pages import charts, no_exceptions, texts
from tests.support.synthetic import demo_cache, synthetic_analysis
from tests.support.tiny import tiny_model

WORLD = "smollm2-135m__world_places__empty__synthetic"


@pytest.fixture(scope="module")
def research_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("research-cache")
    demo_cache(root, n=200, n_layers=4, d_model=16)
    world = ProbeResults.load(root / "results" / WORLD)
    synthetic_analysis(root, world)
    # a real steering run of the stand-in model on the synthetic world results
    summary, examples, facts = evaluate_steering(
        tiny_model(n_layers=4, d_model=16), world, "", SteerConfig(strengths=(1.0, 4.0), n=6)
    )
    save_steering(
        steering_dir(root, WORLD), summary, examples, {**facts, "command": "python -m core steer"}
    )
    return root


@pytest.fixture
def research_env(research_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SPACETIME_CACHE", str(research_root))
    monkeypatch.setenv("SPACETIME_FAKE_MODEL", "tests.support.tiny:tiny_model")
    yield research_root


def names(spec: dict) -> set[str]:  # type: ignore[type-arg]
    return {str(t.get("name")) for t in spec["data"]}


def test_research_page_with_analyses(research_env: Path) -> None:
    at = make_app().run()
    at.switch_page("pages/research.py").run()
    no_exceptions(at)
    assert texts(at, "title") == ["Research"]
    specs = charts(at)
    controls = specs[0]
    assert {
        "linear probe",
        "MLP probe",
        "shuffled targets",
        "name only (char n-grams)",
        "train mean",
        "random-init model",
    } <= names(controls)
    assert any(s["layout"].get("barmode") == "group" for s in specs)  # hold-out bars
    holdout_map = next(
        s
        for s in specs
        if "train mean" in names(s) and any(t.get("type") == "scattergeo" for t in s["data"])
    )
    assert any(t.get("marker", {}).get("symbol") == "star" for t in holdout_map["data"])
    assert any(t.get("type") == "heatmap" for s in specs for t in s["data"])  # prompt transfer
    anim = specs[-1]
    assert (
        len(anim["frames"]) == 4
        and anim["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    )
    assert "prompt coords" in names(next(s for s in specs if "prompt empty" in names(s)))
    # the hold-out block and neuron selectors drive their figures
    blocks = at.selectbox(key="r_block").options
    at.selectbox(key="r_block").set_value(blocks[-1]).run()
    no_exceptions(at)
    assert any(
        str(blocks[-1]) in (s["layout"].get("title", {}).get("text") or "") for s in charts(at)
    )
    neurons = at.selectbox(key="r_neuron").options
    at.selectbox(key="r_neuron").set_value(neurons[1]).run()
    no_exceptions(at)
    assert any(
        f"Neuron {neurons[1]} " in (s["layout"].get("title", {}).get("text") or "")
        for s in charts(at)
    )
    assert not [e for e in at.code if "analyze" in str(e.value)]
    # each analysis is read beside the paper's Llama-2-7B figure
    beside = [c.value for c in at.caption if str(c.value).startswith("Beside the paper:")]
    assert any("linear → MLP" in c and "paper 0.881 → 0.897" in c for c in beside), beside
    assert any("Block hold-out" in c and "paper 0.071 → 0.170" in c for c in beside), beside
    assert any("same prompt → another prompt" in c for c in beside), beside
    # steering: success against strength, along the probe and the random control
    steer = next(
        s for s in specs if "strength" in str(s["layout"].get("xaxis", {}).get("title", ""))
    )
    assert {"layer 1: probe", "layer 1: random", "layer 2: probe"} <= names(steer)
    lines = [t for t in steer["data"] if t.get("mode") == "lines+markers"]
    assert lines and all(t["error_y"]["type"] == "data" for t in lines)  # Wilson intervals
    # the pre-registered cell's headline, never the best cell
    assert any("re-registered cell" in str(c.value) for c in at.caption)
    assert not any(str(c.value).startswith("Best push") for c in at.caption)


def test_research_page_without_analyses_shows_command(research_env: Path) -> None:
    at = make_app({"dataset": "us_places"}).run()
    at.switch_page("pages/research.py").run()
    no_exceptions(at)
    commands = [str(e.value) for e in at.code]
    assert (
        "python -m core analyze --model smollm2-135m --dataset us_places --prompt empty" in commands
    )
    assert charts(at)  # the animation works from the results alone
    assert any(
        "python -m core steer --model smollm2-135m --dataset us_places" in str(c.value)
        for c in at.caption
    )


def test_research_page_empty_cache(empty_env: Path) -> None:
    at = make_app().run()
    at.switch_page("pages/research.py").run()
    no_exceptions(at)
    assert any("python -m core build" in str(e.value) for e in at.code)
