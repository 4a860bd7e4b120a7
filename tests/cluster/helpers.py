"""Model loaders for Ray workers (imported by the worker processes, so kept small)."""

from __future__ import annotations

import os
import signal
from typing import Any

from core.extract.models import LoadedModel
from tests.support.tiny import tiny_model


def tiny_replica() -> LoadedModel:
    return tiny_model()


def dying_replica(marker: str, on_forward: int) -> LoadedModel:
    """The tiny model, in a worker that SIGKILLs itself during its `on_forward`-th forward
    pass, if no worker has yet (the marker file is created once, atomically): a worker
    killed mid-batch, with the batch half computed."""
    loaded = tiny_model()
    calls = 0

    def maybe_die(_module: Any, _args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls != on_forward:
            return
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)

    loaded.blocks[1].register_forward_pre_hook(maybe_die)  # after block 0 has run
    return loaded
