"""AppTest fixtures: a tmp cache root with small synthetic results, and the
steady-state page routing of a running server.

``streamlit run`` treats a ``pages/`` folder beside the entry script as a v1
multipage app until the first ``st.navigation`` call of the process; AppTest
re-creates that state before every run, which would make reruns execute a page
without dashboard.py. The fixture below pins the flag to what a server has after
its first run (False), so every run goes through dashboard.py as it does live.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from tests.support.synthetic import demo_cache

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard.py"


@pytest.fixture(autouse=True)
def _navigation_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("app-cache")
    demo_cache(root, n=300, n_layers=6, d_model=32)
    return root


@pytest.fixture
def demo_env(demo_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SPACETIME_CACHE", str(demo_root))
    monkeypatch.setenv("SPACETIME_FAKE_MODEL", "tests.support.tiny:tiny_model")
    yield demo_root


@pytest.fixture
def empty_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "empty-cache"
    root.mkdir()
    monkeypatch.setenv("SPACETIME_CACHE", str(root))
    return root


def make_app(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(DASHBOARD), default_timeout=60)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at
