"""The tiny stand-in model, slowed to a fixed time per forward pass (a test hook).

``SPACETIME_FAKE_MODEL=tests.reliability.slow_model:slow_tiny_model`` with
``SPACETIME_FAKE_DELAY=<seconds>`` (default 0.3): each forward pass first sleeps that long,
as a real model's pass takes time, so the live probe's model queue has turns to order.
"""

from __future__ import annotations

import os
import time
from typing import Any

from core.extract.models import LoadedModel
from tests.support.tiny import tiny_model

DELAY_ENV = "SPACETIME_FAKE_DELAY"


def slow_tiny_model(n_layers: int, d_model: int, seed: int = 0) -> LoadedModel:
    loaded = tiny_model(n_layers=n_layers, d_model=d_model, seed=seed)
    delay = float(os.environ.get(DELAY_ENV, "0.3"))

    def wait(module: Any, args: Any) -> None:
        time.sleep(delay)

    loaded.blocks[0].register_forward_pre_hook(wait)
    return loaded
