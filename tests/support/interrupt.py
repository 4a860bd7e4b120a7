"""Progress callbacks that stop a build part-way, as Ctrl-C would."""

from __future__ import annotations

from collections.abc import Callable


def stop_after(calls: int) -> Callable[..., None]:
    """A progress callback raising KeyboardInterrupt on its `calls`-th call.

    The store reports once per written batch and the probe fit once per layer, so
    ``stop_after(3)`` keeps three batches (or layers) and loses the rest of the run.
    """
    seen = 0

    def progress(*_args: object) -> None:
        nonlocal seen
        seen += 1
        if seen >= calls:
            raise KeyboardInterrupt(f"stopped after {seen} progress reports (test hook)")

    return progress
