"""Live probing refuses probes that cannot read the loaded model's activations."""

from __future__ import annotations

import dataclasses

from core.common.config import BuildConfig
from core.results.build import build
from core.ui.live import incompatibility
from tests.support.tiny import tiny_model


def test_probes_need_the_start_token_they_were_fitted_with(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    results = build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    assert incompatibility(tiny, results) is None
    other = dataclasses.replace(tiny, start_token="<unk>")
    problem = incompatibility(other, results)
    assert problem is not None and "'<s>'" in problem and "'<unk>'" in problem
    assert "d_model" in str(incompatibility(tiny_model(d_model=16), results))
