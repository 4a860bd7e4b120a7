"""Connecting to a Ray cluster, or starting a local one in this process."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

log = logging.getLogger(__name__)

LOCAL = "local"  # `--ray` with no address and no RAY_ADDRESS: a Ray started in-process


def resolve_address(address: str | None) -> str:
    """The cluster to join: `address`, else $RAY_ADDRESS, else LOCAL."""
    if address:
        return address
    return os.environ.get("RAY_ADDRESS") or LOCAL


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[str]:
    """Yield the address joined; a Ray this call started is shut down on exit, one
    already initialised (a test's, a notebook's) is used and left running."""
    import ray

    if ray.is_initialized():
        yield "existing"
        return
    target = resolve_address(address)
    if target == LOCAL:
        # no dashboard: it costs seconds and a port, and nothing here reads it
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False)
    else:
        # the driver's RAY_ADDRESS would otherwise win over an explicit --ray ADDRESS
        ray.init(address=target)
    log.info("ray: %s, resources %s", target, ray.cluster_resources())
    try:
        yield target
    finally:
        ray.shutdown()
