"""Sharing the live probe's model among visitors (no Streamlit here).

One server process serves every visitor from one model. Three pieces keep one visitor
from starving the others:

- :class:`WorkQueue`: a bounded, first-come first-served queue for model work, one
  ticket per name. A visitor submitting ten names takes ten turns, each behind whoever
  was already waiting, so a single name typed meanwhile waits for at most the names
  that were ahead of it (one per other visitor), never for another visitor's whole
  list. While a ticket waits, the page is told how many are ahead of it; when
  ``max_waiting`` tickets already wait, the next is refused at once
  (:class:`QueueFull`) instead of hanging.
- :class:`RateCap`: at most ``limit`` names through the model per session in any
  ``window`` seconds (a sliding window); names already computed cost nothing.
- :class:`PredictionStore`: the computed predictions, process-wide and bounded (least
  recently used out), so a name any visitor already probed costs no model time and
  never queues.

Settings come from the environment (read once at import):
``SPACETIME_PROBE_WORKERS`` (names through the model at once; default: half the CPU
cores, at least 1, at most 4), ``SPACETIME_PROBE_QUEUE`` (tickets that may wait;
default 16), ``SPACETIME_PROBES_PER_MINUTE`` (per session; default 60, 0 = no cap).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

WORKERS_ENV = "SPACETIME_PROBE_WORKERS"
QUEUE_ENV = "SPACETIME_PROBE_QUEUE"
RATE_ENV = "SPACETIME_PROBES_PER_MINUTE"
DEFAULT_QUEUE = 16
DEFAULT_RATE = 60
RATE_WINDOW_S = 60.0
POLL_S = 0.2  # how often a waiting ticket re-reads its position (also woken on release)


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        log.warning("%s=%r is not an integer; using %d", name, raw, default)
        return default
    if value < minimum:
        log.warning("%s=%d is below %d; using %d", name, value, minimum, minimum)
        return minimum
    return value


def default_workers() -> int:
    return _env_int(WORKERS_ENV, max(1, min(4, (os.cpu_count() or 2) // 2)), 1)


class QueueFull(Exception):
    """The queue already holds ``max_waiting`` waiting tickets."""

    def __init__(self, ahead: int) -> None:
        super().__init__(f"the live probe is busy: {ahead} names ahead of you")
        self.ahead = ahead


@dataclass(frozen=True)
class QueueStats:
    running: int
    waiting: int
    served: int
    refused: int
    longest_wait_s: float


class WorkQueue:
    """At most `workers` tickets run at once; up to `max_waiting` more wait in arrival order."""

    def __init__(self, workers: int = 1, max_waiting: int = DEFAULT_QUEUE) -> None:
        if workers < 1 or max_waiting < 0:
            raise ValueError(f"workers={workers}, max_waiting={max_waiting}")
        self.workers = workers
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._waiting: deque[int] = deque()
        self._running = 0
        self._next = 0
        self._served = 0
        self._refused = 0
        self._longest_wait = 0.0

    def ahead(self) -> int:
        """How many tickets a newcomer would have ahead of it (running + waiting)."""
        with self._cond:
            return self._running + len(self._waiting)

    def stats(self) -> QueueStats:
        with self._cond:
            return QueueStats(
                self._running, len(self._waiting), self._served, self._refused, self._longest_wait
            )

    @contextlib.contextmanager
    def turn(self, on_wait: Callable[[int], object] | None = None) -> Iterator[None]:
        """Wait for this ticket's turn, then hold a worker slot for the block.

        `on_wait(ahead)` is called (outside the lock, from the waiting thread) whenever
        the number of tickets ahead changes while waiting; it may raise (a page that is
        being rerun), which gives the ticket up. Raises :class:`QueueFull` at once when
        `max_waiting` tickets already wait."""
        began = time.monotonic()
        with self._cond:
            if self._running < self.workers and not self._waiting:
                self._running += 1  # free slot, nobody waiting: straight in
                ticket = None
            elif len(self._waiting) >= self.max_waiting:
                self._refused += 1
                raise QueueFull(self._running + len(self._waiting))
            else:
                ticket = self._next
                self._next += 1
                self._waiting.append(ticket)
        if ticket is not None:
            self._wait(ticket, on_wait)
        with self._cond:
            self._longest_wait = max(self._longest_wait, time.monotonic() - began)
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._served += 1
                self._cond.notify_all()

    def _wait(self, ticket: int, on_wait: Callable[[int], object] | None) -> None:
        reported: int | None = None
        try:
            while True:
                with self._cond:
                    position = self._waiting.index(ticket)
                    if position == 0 and self._running < self.workers:
                        self._waiting.popleft()
                        self._running += 1
                        if self._waiting:
                            self._cond.notify_all()  # the next may fit a free slot too
                        return
                    ahead = position + self._running
                    if ahead == reported or on_wait is None:
                        self._cond.wait(POLL_S)
                        continue
                reported = ahead
                on_wait(ahead)
        except BaseException:
            with self._cond:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._cond.notify_all()
            raise


@dataclass(frozen=True)
class RateDecision:
    allowed: int  # how many of the asked names may run now
    used: int  # names this session ran in the window before this call
    retry_after_s: float  # until the oldest counted name leaves the window (0: not capped)


class RateCap:
    """At most `limit` names per `window` seconds for one session (0: no cap). Not
    shared: keep one per session (e.g. in its session state)."""

    def __init__(self, limit: int = DEFAULT_RATE, window: float = RATE_WINDOW_S) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self, n: int, now: float | None = None) -> RateDecision:
        """Count up to `n` names now; returns how many were allowed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and self._times[0] <= now - self.window:
                self._times.popleft()
            used = len(self._times)
            if self.limit <= 0:
                return RateDecision(n, used, 0.0)
            allowed = max(0, min(n, self.limit - used))
            self._times.extend([now] * allowed)
            retry = 0.0
            if allowed < n and self._times:
                retry = max(0.0, self._times[0] + self.window - now)
            return RateDecision(allowed, used, retry)

    def refund(self, n: int) -> None:
        """Give back the last `n` names counted (they never reached the model)."""
        with self._lock:
            for _ in range(min(n, len(self._times))):
                self._times.pop()


def rate_limit() -> int:
    return _env_int(RATE_ENV, DEFAULT_RATE, 0)


class PredictionStore:
    """A process-wide, thread-safe, least-recently-used store of computed values."""

    def __init__(self, max_entries: int = 512) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


# The server's own instances (one per process: every session of a Streamlit server
# shares them).
MODEL_QUEUE = WorkQueue(default_workers(), _env_int(QUEUE_ENV, DEFAULT_QUEUE, 0))
PREDICTIONS = PredictionStore()


def busy_message(ahead: int) -> str:
    noun = "name" if ahead == 1 else "names"
    return (
        f"Busy: {ahead} {noun} ahead of you in the queue for the model "
        "(other visitors are probing too); yours run in turn, one name at a time."
    )


def full_message(ahead: int) -> str:
    verb = "name is" if ahead == 1 else "names are"
    return (
        f"The live probe is busy: {ahead} {verb} ahead of you, the most the queue "
        "holds. Nothing of yours was run; try again in a few seconds."
    )


def capped_message(cap: RateCap, decision: RateDecision, not_run: int) -> str:
    noun = "name" if not_run == 1 else "names"
    return (
        f"Probe limit: this session ran {decision.used} names through the model in the "
        f"last {cap.window:.0f} s, the most one visitor may ({cap.limit} a minute, so "
        f"the others get their turn); {not_run} {noun} not run yet. Try again in "
        f"{max(1, round(decision.retry_after_s))} s. Names already probed show at once."
    )
