"""Many users at once: 8 browser sessions against one server on 127.0.0.1 for 60 s.

One headless Chromium holds 8 separate browser contexts (8 Streamlit sessions);
each moves the layer slider, types names into the live probe (hostile ones
among them) and switches pages, as fast as the server answers, for
``SPACETIME_SOAK_SECONDS`` (default 60). Then:

* no page shows an exception or an error panel, no page script error, no
  ``<script>`` / ``onerror`` typed as a name ever ran, no request left 127.0.0.1,
  the server log has no traceback;
* the model was loaded once (``SPACETIME_LOAD_COUNTER``: core.ui.live appends a line
  per load);
* the server's memory (RSS, sampled every 0.25 s with psutil) stays under a bound;
* every action's rerun finishes within ``STUCK_MS`` (a stuck session fails, naming the
  session and its last action; response times are printed, not asserted).

The figures are printed (``pytest -s``) and quoted in docs/reliability.md. The
server runs the tiny random stand-in model
(``SPACETIME_FAKE_MODEL=tests.support.tiny:tiny_model``) on synthetic results, as in
tests/e2e.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_streamlit, stop_streamlit
from tests.support.synthetic import demo_cache


def run_in_fresh_loop(coro: Any) -> Any:
    """asyncio.run in a thread of its own: the e2e tests' sync Playwright keeps an event
    loop running in the main thread for the whole session, where asyncio.run refuses."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = 8
SOAK_SECONDS = float(os.environ.get("SPACETIME_SOAK_SECONDS", "60"))
PEAK_RSS_LIMIT = 1_500 * 2**20  # bytes; measured peak is in docs/reliability.md
TIMEOUT = 30_000
# An action whose rerun has not finished after this long is a stuck session, not a slow
# one: under 8 sessions on 2 cores the slowest action took 17-31 s before the server's
# per-rerun garbage collection was frozen out, 10-23 s after (docs/reliability.md).
STUCK_MS = 90_000
SEED = 7
PWN = "() => window.__pwned === undefined"
HOSTILE_NAMES = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    "<svg onload=window.__pwned=1>",
    "القاهرة",
    "🗼 Tōkyō",
    '"><b>bold</b>',
]
# every geographic map on the page has drawn its land outlines
MAPS_DRAWN = (
    "() => [...document.querySelectorAll('.js-plotly-plot .geo')]"
    ".every(g => g.querySelectorAll('.layer path').length > 10)"
)
PAGES = {"Maps": "maps", "Live probe": "live_probe", "Layers": "layers", "Timelines": "timelines"}


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path
    load_counter: Path
    rss: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is missing: apt-get install -y chromium")
    tmp = tmp_path_factory.mktemp("many-users")
    root = tmp / "cache"
    demo_cache(root, n=300, n_layers=6, d_model=32)
    counter = tmp / "model-loads.txt"
    log_path = tmp / "streamlit.log"
    proc, base = start_streamlit(root, log_path, {"SPACETIME_LOAD_COUNTER": str(counter)})
    srv = Server(base=base, proc=proc, log=log_path, load_counter=counter)
    stop = threading.Event()

    def sample() -> None:
        ps = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                srv.rss.append(
                    ps.memory_info().rss
                    + sum(c.memory_info().rss for c in ps.children(recursive=True))
                )
            except psutil.Error:
                return
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    yield srv
    stop.set()
    sampler.join()
    stop_streamlit(proc)


@dataclass
class Session:
    index: int
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    actions: dict[str, int] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    last: str = "page load"
    known_races: int = 0
    races_redrawn: int = 0


def known_plotly_race(exc: Any) -> bool:
    """plotly.js's geo code finishes drawing (after fetching its outline file) into a chart
    that a newer figure or a page change already replaced: a TypeError in the browser
    console and nothing shown. Seen after page changes and, once reruns got faster,
    after a layer change or a probed name within a second of a tab's first map.
    Third-party (plotly.js inside Streamlit's chart element); counted and reported, not
    failed, as long as the maps shown next draw their outlines (``check``)."""
    return (
        "_scrollZoom" in str(exc)
        and "updateFx" in (exc.stack or "")
        and "PlotlyChart" in (exc.stack or "")
    )


_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d ", re.MULTILINE)
_DISCONNECT_RACE = (
    "starlette.websockets.WebSocketDisconnected: "
    'Cannot call "send" once a close message has been sent.'
)


def known_disconnect_race(record: str) -> bool:
    """Streamlit's websocket endpoint, when a browser disconnects mid-receive, takes
    starlette's RuntimeError for a text frame and closes the socket a second time: a
    server-log traceback entirely inside streamlit/starlette, after the session is gone.
    Third-party; counted and reported, not failed. Any frame of ours fails the test."""
    lines = [line for line in record.strip().splitlines() if line.strip()]
    return (
        bool(lines)
        and lines[-1].strip() == _DISCONNECT_RACE
        and "starlette_websocket.py" in record
        and "_websocket_endpoint" in record
        and not any(mark in record for mark in ("/core/", "/pages/", "dashboard.py"))
    )


def server_log_problems(log: str) -> tuple[list[str], int]:
    """(log records with a traceback or exception, known disconnect races skipped; their count)."""
    starts = [m.start() for m in _LOG_RECORD.finditer(log)] or [0]
    records = [log[: starts[0]]] + [
        log[a:b] for a, b in zip(starts, starts[1:] + [len(log)], strict=True)
    ]
    problems, known = [], 0
    for record in records:
        if "Traceback" not in record and "Exception" not in record:
            continue
        if known_disconnect_race(record):
            known += 1
        else:
            problems.append(record)
    return problems, known


def page_error(session: Session, exc: Any) -> None:
    if known_plotly_race(exc):
        session.known_races += 1
    else:
        session.problems.append(
            f"session {session.index} during {session.last}: "
            f"page error {exc} {(exc.stack or '')[:600]}"
        )


async def settle(tab: Any, session: Session) -> None:
    """Wait until the script run a change triggered has finished."""
    await tab.wait_for_timeout(150)  # the rerun request reaches the server
    try:
        await tab.wait_for_selector(
            '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=STUCK_MS
        )
    except PlaywrightTimeout:
        raise AssertionError(
            f"session {session.index} after {session.last}: "
            f"the rerun had not finished {STUCK_MS / 1000:.0f} s later (page {tab.url})"
        ) from None


async def check(tab: Any, session: Session, what: str) -> None:
    exceptions = await tab.locator('[data-testid="stException"]').all_inner_texts()
    errors = await tab.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    status = await tab.locator('[data-testid="stConnectionStatus"]').all_inner_texts()
    for kind, texts in (("exception", exceptions), ("error panel", errors), ("connection", status)):
        for text in texts:
            session.problems.append(f"session {session.index} after {what}: {kind}: {text[:200]}")
    if not await tab.evaluate(PWN):
        session.problems.append(f"session {session.index} after {what}: a typed script ran")
    if (
        session.known_races > session.races_redrawn
        and await tab.locator(".js-plotly-plot .geo").count()
    ):
        try:
            await tab.wait_for_function(MAPS_DRAWN, timeout=TIMEOUT)
        except PlaywrightTimeout:
            session.problems.append(
                f"session {session.index} after {what}: "
                "a map stayed without outlines after the plotly.js race"
            )
        session.races_redrawn = session.known_races


async def user(browser: Any, base: str, session: Session, clock: Clock) -> None:
    rng = random.Random(SEED * 100 + session.index)
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    tab = await context.new_page()
    tab.on("request", lambda request: session.requests.append(request.url))
    tab.on("pageerror", lambda exc: page_error(session, exc))
    page = "live_probe" if session.index % 2 == 0 else "maps"
    await tab.goto(f"{base}/{page}?model=smollm2-135m&dataset=world_places")
    await tab.get_by_role("heading", level=1).wait_for(timeout=TIMEOUT)
    await settle(tab, session)
    await clock.arrive()
    while time.monotonic() < clock.stop_at:
        slider = tab.locator('[data-testid="stSlider"] input[type="range"]')
        box = tab.locator('[data-testid="stTextArea"] textarea')
        choices = (
            ["page"]
            + ["layer"] * 2 * min(1, await slider.count())
            + ["probe"] * 3 * min(1, await box.count())
        )
        action = rng.choice(choices)
        session.last = f"{action} on {page}"
        began = time.monotonic()
        if action == "layer":
            await slider.first.focus()
            await tab.keyboard.press(rng.choice(["ArrowLeft", "ArrowRight", "Home", "End"]))
        elif action == "probe":
            name = (
                rng.choice(HOSTILE_NAMES)
                if rng.random() < 0.3
                else f"Place {session.index}-{rng.randrange(10**6)}"
            )
            await box.fill(name)
            await box.press("Control+Enter")
            session.names.add(name)
        else:
            title = rng.choice([t for t, p in PAGES.items() if p != page])
            await tab.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
            page = PAGES[title]
            await tab.get_by_role("heading", name=title, level=1).wait_for(timeout=STUCK_MS)
        await settle(tab, session)
        session.latencies.append(time.monotonic() - began)
        session.actions[action] = session.actions.get(action, 0) + 1
        await check(tab, session, action)
    await context.close()


async def soak(base: str) -> list[Session]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        sessions = [Session(i) for i in range(SESSIONS)]
        clock = Clock()
        tasks = [asyncio.create_task(user(browser, base, s, clock)) for s in sessions]
        await clock.all_ready(SESSIONS, tasks)  # every page is open before the minute starts
        await asyncio.gather(*tasks)
        await browser.close()
    return sessions


class Clock:
    """Starts the soak once every session has its page open; then ends it SOAK_SECONDS later."""

    def __init__(self) -> None:
        self.ready = 0
        self.go = asyncio.Event()
        self.stop_at = float("inf")

    async def arrive(self) -> None:
        self.ready += 1
        await self.go.wait()

    async def all_ready(self, n: int, tasks: list[asyncio.Task[None]]) -> None:
        while self.ready < n and not any(t.done() for t in tasks):  # a failed start ends it
            await asyncio.sleep(0.05)
        self.stop_at = time.monotonic() + SOAK_SECONDS
        self.go.set()


def test_eight_sessions_for_a_minute(server: Server) -> None:
    started, cpu = time.monotonic(), psutil.Process(server.proc.pid).cpu_times()
    sessions = run_in_fresh_loop(soak(server.base))
    wall = time.monotonic() - started
    after = psutil.Process(server.proc.pid).cpu_times()
    server_cpu = after.user + after.system - cpu.user - cpu.system

    problems = [p for s in sessions for p in s.problems]
    foreign = [
        u
        for s in sessions
        for u in s.requests
        if urlparse(u).scheme not in ("data", "blob", "about")
        and urlparse(u).hostname != "127.0.0.1"
    ]
    loads = server.load_counter.read_text().splitlines() if server.load_counter.exists() else []
    log_problems, disconnect_races = server_log_problems(server.log.read_text())
    peak = max(server.rss)
    latencies = sorted(x for s in sessions for x in s.latencies)
    actions: dict[str, int] = {}
    for s in sessions:
        for k, v in s.actions.items():
            actions[k] = actions.get(k, 0) + v
    print(
        f"\n{SESSIONS} sessions, {SOAK_SECONDS:.0f} s of actions ({wall:.0f} s with page loads): "
        f"{sum(actions.values())} actions {actions}, "
        f"per session {[sum(s.actions.values()) for s in sessions]}; "
        f"{len(set().union(*(s.names for s in sessions)))} distinct names probed; "
        f"latency median {statistics.median(latencies):.2f} s, "
        f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.2f} s, "
        f"max {latencies[-1]:.2f} s; server CPU {server_cpu:.0f} s; model loads {len(loads)}; "
        f"server RSS at start {server.rss[0] / 2**20:.0f} MiB, "
        f"peak {peak / 2**20:.0f} MiB; problems {len(problems)}; "
        f"plotly.js outline-fetch races (console only) {sum(s.known_races for s in sessions)}; "
        f"Streamlit websocket disconnect races (server log only) {disconnect_races}"
    )
    assert problems == [], "\n".join(problems)
    assert foreign == []
    for s in sessions:
        assert sum(s.actions.values()) >= 5, f"session {s.index} hardly ran: {s.actions}"
    assert len(loads) == 1, loads
    assert log_problems == [], "\n".join(log_problems)[-3000:]
    assert peak < PEAK_RSS_LIMIT


MARKUP_NAMES = ["<script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=1">']
INJECTED = """() => ({
  pwned: window.__pwned !== undefined,
  scripts: [...document.querySelectorAll('script')]\
.filter(s => s.textContent.includes('__pwned')).length,
  images: document.querySelectorAll('img[src="x"]').length,
  legend: [...document.querySelectorAll('.js-plotly-plot .legendtext')].map(e => e.textContent),
})"""


def test_typed_markup_is_shown_as_text_and_never_runs(server: Server) -> None:
    async def run() -> dict[str, Any]:
        from playwright.async_api import async_playwright

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            tab = await (await browser.new_context()).new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            await tab.goto(f"{server.base}/live_probe?model=smollm2-135m&dataset=world_places")
            await tab.get_by_role("heading", name="Live probe", level=1).wait_for(timeout=TIMEOUT)
            box = tab.locator('[data-testid="stTextArea"] textarea')
            await box.fill("\n".join(MARKUP_NAMES))
            await box.press("Control+Enter")
            await tab.wait_for_function(
                "() => [...document.querySelectorAll('.js-plotly-plot .legendtext')]"
                ".some(e => e.textContent.includes('onerror'))",
                timeout=TIMEOUT,
            )
            await tab.wait_for_timeout(1000)  # time for anything injected to run
            found: dict[str, Any] = await tab.evaluate(INJECTED)
            found["errors"] = errors
            found["url"] = tab.url
            await browser.close()
            return found

    found = run_in_fresh_loop(run())
    assert found["pwned"] is False and found["scripts"] == 0 and found["images"] == 0, found
    assert found["errors"] == []
    for name in MARKUP_NAMES:  # shown, as text, in the legend
        assert f"{name}: layer 5" in found["legend"], found["legend"]
    assert "names=%3Cscript%3E" in found["url"]  # and kept, encoded, in the shareable URL


def test_only_the_known_streamlit_disconnect_race_is_let_through() -> None:
    race = (
        "2026-11-26 10:00:00.000 Exception in ASGI application\n"
        "Traceback (most recent call last):\n"
        '  File "/v/streamlit/web/server/starlette/starlette_websocket.py", line 516, '
        "in _websocket_endpoint\n"
        "    data = await websocket.receive_bytes()\n"
        f"{_DISCONNECT_RACE}\n"
    )
    ours = race.replace(
        "/v/streamlit/web/server/starlette/starlette_websocket.py", "/repo/pages/maps.py"
    )
    other = race.replace(_DISCONNECT_RACE, "ValueError: bad layer")
    plain = "2026-11-26 10:00:01.000 Exception: something else\n"
    assert server_log_problems("2026-11-26 10:00:00.000 started\n" + race) == ([], 1)
    for bad in (ours, other, plain, "Traceback (most recent call last):\nKeyError: 'x'\n"):
        problems, _ = server_log_problems(race + bad)
        assert len(problems) == 1 and bad in problems[0], (
            bad
        )  # untimestamped text joins the record before it
