"""The live probe's model queue, probe cap and prediction store (core/ui/fair_share.py),
without a server: arrival order, the bound on a single name's wait behind a visitor
submitting ten names again and again, refusals when full, and the sliding-window cap."""

from __future__ import annotations

import threading
import time

import pytest

from core.ui import fair_share as fair

WORK_S = 0.05  # one name's model time in these tests


def _hold(queue: fair.WorkQueue, release: threading.Event, entered: threading.Event) -> None:
    with queue.turn():
        entered.set()
        release.wait(10)


def test_waiting_tickets_enter_in_arrival_order_and_hear_how_many_are_ahead() -> None:
    queue = fair.WorkQueue(workers=1, max_waiting=8)
    release, entered = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(queue, release, entered))
    holder.start()
    entered.wait(5)
    order: list[int] = []
    heard: dict[int, list[int]] = {i: [] for i in range(4)}

    def visitor(i: int) -> None:
        with queue.turn(on_wait=heard[i].append):
            order.append(i)

    threads = []
    for i in range(4):
        threads.append(threading.Thread(target=visitor, args=(i,)))
        threads[-1].start()
        while queue.stats().waiting < i + 1:  # each is queued before the next arrives
            time.sleep(0.005)
    assert queue.ahead() == 5  # 1 running + 4 waiting
    release.set()
    for t in [holder, *threads]:
        t.join(5)
    assert order == [0, 1, 2, 3]
    for i in range(4):  # first told the running one and those before it, then fewer
        assert heard[i][0] == i + 1, heard
        assert heard[i] == sorted(heard[i], reverse=True)
    stats = queue.stats()
    assert (stats.running, stats.waiting, stats.served, stats.refused) == (0, 0, 5, 0)


def test_a_full_queue_refuses_at_once_saying_how_many_are_ahead() -> None:
    queue = fair.WorkQueue(workers=1, max_waiting=1)
    release, entered = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(queue, release, entered))
    holder.start()
    entered.wait(5)
    waiter = threading.Thread(target=lambda: queue.turn().__enter__())
    waiter.start()
    while queue.stats().waiting < 1:
        time.sleep(0.005)
    began = time.monotonic()
    with pytest.raises(fair.QueueFull) as refused, queue.turn():
        pass
    assert time.monotonic() - began < 0.5  # no hanging
    assert refused.value.ahead == 2
    assert "2 names are ahead of you" in fair.full_message(refused.value.ahead)
    release.set()
    holder.join(5)
    waiter.join(5)
    assert queue.stats().refused == 1


def test_a_ticket_given_up_while_waiting_leaves_the_queue() -> None:
    queue = fair.WorkQueue(workers=1, max_waiting=4)
    release, entered = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(queue, release, entered))
    holder.start()
    entered.wait(5)

    class Rerun(Exception):
        pass

    def leave(ahead: int) -> None:
        raise Rerun  # what a Streamlit page being rerun raises from its next st call

    with pytest.raises(Rerun), queue.turn(on_wait=leave):
        pass
    assert queue.stats().waiting == 0
    release.set()
    holder.join(5)
    with queue.turn():  # the slot is free again
        assert queue.stats().running == 1
    assert queue.stats().running == 0


def _hog(queue: fair.WorkQueue, stop: threading.Event, names: list[int]) -> None:
    """A visitor submitting the maximum ten names again and again (one ticket per name,
    as pages/_live.py takes them)."""
    while not stop.is_set():
        for _ in range(10):
            with queue.turn():
                time.sleep(WORK_S)
            names.append(1)


@pytest.mark.parametrize("hogs", [1, 3])
def test_a_single_name_waits_for_at_most_one_name_per_visitor_ahead(hogs: int) -> None:
    """The bound: with `hogs` visitors each submitting ten names back to back on one
    worker, a single name typed meanwhile starts within `hogs` names' model time (plus
    scheduling slack), not after anyone's whole list (10 x WORK_S)."""
    queue = fair.WorkQueue(workers=1, max_waiting=16)
    stop = threading.Event()
    done: list[int] = []
    threads = [threading.Thread(target=_hog, args=(queue, stop, done)) for _ in range(hogs)]
    for t in threads:
        t.start()
    time.sleep(3 * WORK_S)
    waits = []
    for _ in range(8):
        began = time.monotonic()
        with queue.turn():
            waits.append(time.monotonic() - began)
            time.sleep(WORK_S)
        time.sleep(WORK_S / 2)
    stop.set()
    for t in threads:
        t.join(5)
    bound = hogs * WORK_S + 0.1
    print(f"\n{hogs} hog(s): single-name waits {[round(w, 3) for w in waits]} s, bound {bound} s")
    assert len(done) >= 8  # the hogs did run meanwhile
    assert max(waits) <= bound, waits
    assert max(waits) < 10 * WORK_S


def test_the_cap_counts_names_in_a_sliding_window_and_refunds_unrun_ones() -> None:
    cap = fair.RateCap(limit=5, window=60)
    assert cap.take(3, now=0).allowed == 3
    second = cap.take(4, now=10)
    assert (second.allowed, second.used) == (2, 3)
    assert second.retry_after_s == pytest.approx(50)  # the first three leave at t = 60
    assert cap.take(1, now=59).allowed == 0
    cap.refund(1)  # one of the last two never reached the model
    assert cap.take(2, now=59).allowed == 1
    assert cap.take(5, now=60.5).allowed == 3  # the first three are out of the window
    assert "5 a minute" in fair.capped_message(cap, second, 2)
    unlimited = fair.RateCap(limit=0)
    assert unlimited.take(10**6).allowed == 10**6


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fair.RATE_ENV, "7")
    monkeypatch.setenv(fair.WORKERS_ENV, "3")
    assert fair.rate_limit() == 7 and fair.default_workers() == 3
    monkeypatch.setenv(fair.RATE_ENV, "lots")
    monkeypatch.setenv(fair.WORKERS_ENV, "0")
    assert fair.rate_limit() == fair.DEFAULT_RATE and fair.default_workers() == 1
    with pytest.raises(ValueError):
        fair.WorkQueue(workers=0)


def test_the_store_keeps_the_most_recently_used() -> None:
    store = fair.PredictionStore(max_entries=2)
    store.put("a", 1)
    store.put("b", 2)
    assert store.get("a") == 1  # a is now the most recent
    store.put("c", 3)
    assert store.get("b") is None and store.get("a") == 1 and store.get("c") == 3
    assert len(store) == 2
