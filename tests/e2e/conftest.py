"""A real Streamlit server on 127.0.0.1 over a tmp cache, and headless Debian Chromium.

The server gets synthetic results (tests.support.synthetic.demo_cache) and
SPACETIME_FAKE_MODEL=tests.support.tiny:tiny_model, so the live probe runs a tiny random
model built in code (tests.support.tiny) instead of real weights. Every request a page
makes is recorded; tests assert none leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.support.synthetic import demo_cache

ROOT = Path(__file__).resolve().parents[2]
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
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_streamlit(
    root: Path, log_path: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `streamlit run dashboard.py` on a free loopback port over the cache `root`
    (fake model on); returns the process and its base URL once /_stcore/health answers."""
    port = _free_port()
    env = {
        **os.environ,
        "SPACETIME_CACHE": str(root),
        "SPACETIME_FAKE_MODEL": "tests.support.tiny:tiny_model",
        **(extra_env or {}),
    }
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "dashboard.py",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--server.fileWatcherType",
                "none",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, base
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"streamlit did not start; see {log_path}")
        time.sleep(0.3)


def stop_streamlit(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("e2e-cache")
    demo_cache(root, n=300, n_layers=6, d_model=32)
    proc, base = start_streamlit(root, tmp_path_factory.mktemp("e2e-log") / "streamlit.log")
    yield base
    stop_streamlit(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(
            "Debian chromium is missing: apt-get install -y chromium (never `playwright install`)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chrome = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chrome
        chrome.close()


class Requests(list[str]):
    def foreign(self) -> list[str]:
        """Requests to anything but 127.0.0.1 (data:/blob: URLs are not network requests)."""
        out = []
        for url in self:
            parsed = urlparse(url)
            if parsed.scheme in ("data", "blob", "about"):
                continue
            if parsed.hostname != "127.0.0.1":
                out.append(url)
        return out


@pytest.fixture
def page(browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    requests = Requests()
    tab.on("request", lambda request: requests.append(request.url))
    tab.requests = requests  # type: ignore[attr-defined]
    yield tab
    context.close()
    assert requests, "the page made no requests at all?"
    assert requests.foreign() == [], f"requests left 127.0.0.1: {requests.foreign()}"


def screenshot(tab, name: str) -> Path:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path
