"""`make run` serves on this machine only unless asked, with Streamlit's XSRF and CORS
protection on (issue 33).

The command under test is the one `make run` would run (`make -n run`, so the Makefile's
own variables decide it). Two checks read its effective server config:

* streamlit's own command line and config loading (the repo's `.streamlit/config.toml`,
  the flags, streamlit's precedence rules) run in a subprocess with the server start
  replaced by a dump of the options;
* the real server, started briefly with that command on a free port, is asked which
  address it listens on (psutil), whether it answers a foreign origin's CORS request and
  whether it sets its XSRF cookie.

`HOST=127.0.0.2` stands in for the sharing switch in the live check (a different address,
still private to this machine); `HOST=0.0.0.0` is checked through the config only.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("server.address", "server.port", "server.enableXsrfProtection", "server.enableCORS")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def make_run_command(**variables: str) -> list[str]:
    """The streamlit command line `make run` runs with these make variables."""
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "run", *(f"{k}={v}" for k, v in variables.items())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    lines = [line for line in out.splitlines() if " -m streamlit run " in line]
    assert len(lines) == 1, out
    return shlex.split(lines[0])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    return {**env, **extra}


DUMP = (
    f"KEYS = {KEYS!r}\n"
    + """
import json, sys
from streamlit import config
from streamlit.web import bootstrap, cli

def dump(*args, **kwargs):
    print("CONFIG " + json.dumps({k: config.get_option(k) for k in KEYS}))

bootstrap.run = dump
cli.main(args=sys.argv[1:], prog_name="streamlit", standalone_mode=False)
"""
)


def effective_config(command: list[str]) -> dict[str, Any]:
    """What streamlit resolves for `command` (python -m streamlit run ...), from the repo root."""
    streamlit_args = command[command.index("streamlit") + 1 :]
    out = subprocess.run(
        [sys.executable, "-c", DUMP, *streamlit_args],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("CONFIG "))
    config: dict[str, Any] = json.loads(line.removeprefix("CONFIG "))
    return config


def serving_problems(config: dict[str, Any], shared: bool = False) -> list[str]:
    problems = []
    if not shared and config["server.address"] not in LOOPBACK:
        problems.append(f"listens on {config['server.address']!r} without the switch")
    if config["server.enableXsrfProtection"] is not True:
        problems.append("XSRF protection is off")
    if config["server.enableCORS"] is not True:
        problems.append("CORS protection is off")
    return problems


def test_make_run_serves_on_loopback_with_both_protections_on() -> None:
    command = make_run_command()
    config = effective_config(command)
    assert serving_problems(config) == [], config
    assert config["server.address"] == "127.0.0.1"


def test_the_host_switch_changes_the_address_and_keeps_the_protections() -> None:
    config = effective_config(make_run_command(HOST="0.0.0.0"))
    assert config["server.address"] == "0.0.0.0"
    assert serving_problems(config, shared=True) == []
    assert serving_problems(config) == ["listens on '0.0.0.0' without the switch"]


def test_plain_streamlit_run_from_the_repo_also_stays_on_loopback() -> None:
    """The README's other command (`streamlit run dashboard.py`, no flags) reads the repo's
    .streamlit/config.toml."""
    config = effective_config([sys.executable, "-m", "streamlit", "run", "dashboard.py"])
    assert serving_problems(config) == [], config


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--server.address", "0.0.0.0"], "listens on '0.0.0.0' without the switch"),
        (["--server.enableXsrfProtection", "false"], "XSRF protection is off"),
        (["--server.enableCORS", "false"], "CORS protection is off"),
    ],
)
def test_the_check_catches_each_unsafe_setting(flags: list[str], problem: str) -> None:
    config = effective_config([*make_run_command(), *flags])
    assert problem in serving_problems(config)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(**variables: str) -> tuple[psutil.Process, str, int]:
        host = variables.get("HOST", "127.0.0.1")
        port = _free_port(host)
        command = make_run_command(PORT=str(port), **variables)
        log = (tmp_path / f"streamlit-{port}.log").open("wb")
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_clean_env(SPACETIME_CACHE=str(tmp_path / "cache")),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        base = f"http://{host}:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        return psutil.Process(proc.pid), base, port
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"streamlit did not start: {command}")
            time.sleep(0.3)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _listening(process: psutil.Process, port: int) -> set[str]:
    return {
        c.laddr.ip
        for c in process.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def _refused(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) != 0


def test_the_running_server_binds_loopback_and_keeps_cors_and_xsrf(served: Any) -> None:
    process, base, port = served()
    assert _listening(process, port) == {"127.0.0.1"}

    foreign = urllib.request.Request(
        f"{base}/_stcore/health", headers={"Origin": "http://attacker.example"}
    )
    with urllib.request.urlopen(foreign, timeout=5) as resp:
        allowed = resp.headers.get("Access-Control-Allow-Origin")
        cookies = resp.headers.get_all("Set-Cookie") or []
    assert allowed not in ("*", "http://attacker.example"), allowed  # CORS on
    assert any(c.startswith("_streamlit_xsrf=") for c in cookies), cookies  # XSRF on

    upload = urllib.request.Request(  # a state-changing request without the XSRF token
        f"{base}/_stcore/upload_file/some-session/some-file", data=b"x", method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(upload, timeout=5)
    assert refused.value.code == 403


def test_the_switch_moves_the_running_server_to_the_asked_address(served: Any) -> None:
    process, _, port = served(HOST="127.0.0.2")
    assert _listening(process, port) == {"127.0.0.2"}
    assert _refused("127.0.0.1", port)
