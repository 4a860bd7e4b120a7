"""The AppTest fixtures of tests/app (tmp synthetic cache, steady-state page routing)."""

from tests.app.conftest import _navigation_routing, demo_root  # noqa: F401
