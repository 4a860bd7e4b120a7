"""Several dashboard sessions probe names at once with one shared model.

Activations are read with forward hooks on the shared model's blocks; each hook
must act only for the thread that registered it, or two sessions probing at the
same time read each other's batches (IndexError, or silently wrong values).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from core.extract.activations import last_token_activations
from core.ui import live
from tests.support.tiny import tiny_model

TEXTS = [
    ["Kyoto"],
    ["Lake Titicaca", "Rome"],
    ["Ulaanbaatar, Mongolia"],
    ["A", "Bb", "Ccc"],
    ["São Paulo"],
    ["Reykjavík"],
]


def test_concurrent_forward_passes_on_one_model_match_serial() -> None:
    model = tiny_model(n_layers=6, d_model=32)
    expected = [last_token_activations(model, texts) for texts in TEXTS]
    errors: list[str] = []
    wrong: list[int] = []
    start = threading.Barrier(len(TEXTS))

    def probe(i: int) -> None:
        start.wait()
        for _ in range(40):
            try:
                got = last_token_activations(model, TEXTS[i], layers=[1, 3, 5])
            except Exception as exc:  # what a session would show as a traceback
                errors.append(repr(exc))
                continue
            if not np.array_equal(got, expected[i][[1, 3, 5]]):
                wrong.append(i)

    threads = [threading.Thread(target=probe, args=(i,)) for i in range(len(TEXTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and wrong == []
    assert all(not block._forward_hooks for block in model.blocks)  # nothing left registered


def test_load_counter_records_each_model_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = tmp_path / "loads.txt"
    monkeypatch.setenv(live.FAKE_MODEL_ENV, "tests.support.tiny:tiny_model")
    monkeypatch.setenv(live.LOAD_COUNTER_ENV, str(counter))
    live.load_probe_model("smollm2-135m", n_layers=2, d_model=16)
    live.load_probe_model("smollm2-135m@random", n_layers=2, d_model=16)
    lines = counter.read_text().splitlines()
    assert [line.split()[1:3] for line in lines] == [
        ["smollm2-135m", "fake"],
        ["smollm2-135m@random", "fake"],
    ]
    monkeypatch.delenv(live.LOAD_COUNTER_ENV)
    live.load_probe_model("smollm2-135m", n_layers=2, d_model=16)
    assert len(counter.read_text().splitlines()) == 2  # unset: nothing written
