"""AppTest of the Live probe page sharing its model: the per-session probe cap and a full
model queue each end in a clear note, never a stuck page or an exception; names already
probed by anyone show without the model (core/ui/fair_share.py, pages/_live.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.ui import fair_share as fair
from tests.app.conftest import make_app


@pytest.fixture
def fresh_share(monkeypatch: pytest.MonkeyPatch) -> fair.WorkQueue:
    """A fresh process-wide queue and prediction store for each test."""
    queue = fair.WorkQueue(workers=1, max_waiting=4)
    monkeypatch.setattr(fair, "MODEL_QUEUE", queue)
    monkeypatch.setattr(fair, "PREDICTIONS", fair.PredictionStore())
    return queue


def _drawn(at) -> set[str]:  # type: ignore[no-untyped-def]
    import json

    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {t["name"].split(":")[0] for t in spec["data"] if ": layer " in t.get("name", "")}


def _warnings(at) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(str(w.value) for w in at.warning)


def test_the_probe_cap_holds_back_names_past_it_with_a_note(
    demo_env: Path, fresh_share: fair.WorkQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fair.RATE_ENV, "3")
    at = make_app({"names": "Alpha\nBravo\nCharlie\nDelta\nEcho"}).run()
    at.switch_page("pages/live_probe.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Probe limit: this session ran 0 names" in _warnings(at)
    assert "2 names not run yet" in _warnings(at)
    assert _drawn(at) == {"Alpha", "Bravo", "Charlie"}
    assert fresh_share.stats().served == 3

    at.text_area[0].set_value("Alpha\nBravo").run()  # already probed: no model, no cap
    assert not at.exception
    assert "Probe limit" not in _warnings(at)
    assert _drawn(at) == {"Alpha", "Bravo"}

    at.text_area[0].set_value("Foxtrot").run()  # nothing shown at all: the page stops
    assert not at.exception
    assert "Probe limit: this session ran 3 names" in _warnings(at)
    assert not at.get("plotly_chart")
    assert fresh_share.stats().served == 3


def test_a_full_queue_says_so_and_runs_nothing(
    demo_env: Path, fresh_share: fair.WorkQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = fair.WorkQueue(workers=1, max_waiting=0)
    monkeypatch.setattr(fair, "MODEL_QUEUE", full)
    release, entered = threading.Event(), threading.Event()

    def other_visitor() -> None:
        with full.turn():
            entered.set()
            release.wait(30)

    holder = threading.Thread(target=other_visitor)
    holder.start()
    entered.wait(5)
    try:
        at = make_app({"names": "Kyoto"}).run()
        at.switch_page("pages/live_probe.py").run()
    finally:
        release.set()
        holder.join(5)
    assert not at.exception, [e.value for e in at.exception]
    assert "The live probe is busy: 1 name is ahead of you" in _warnings(at)
    assert not at.get("plotly_chart")
    assert full.stats().refused == 1

    at.run()  # the other visitor is done: the name runs, and it cost no probe before
    assert not at.exception
    assert _drawn(at) == {"Kyoto"}
    assert "busy" not in _warnings(at)
