"""One local Ray for every cluster test: no dashboard, shut down at the end.

It declares 4 logical CPUs on this 2-core machine so that a module's pool of two
1-CPU workers and a test's own pool (the fault test) can be scheduled at once; each
worker still runs one torch thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    # log_to_driver off: the workers' own logs would interleave with pytest's output
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
