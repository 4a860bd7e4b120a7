"""Model conversion: two callers at once convert a GGUF only once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from core.extract import models


def test_concurrent_conversions_convert_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` converts in the background while a live probe may ask for the same model:
    the second caller waits for the first conversion and reuses it."""
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"not really a gguf")
    monkeypatch.setenv("SPACETIME_CACHE", str(tmp_path / "default"))
    calls: list[str] = []

    def fake_convert(gguf_path, digest, folder, name, progress):  # type: ignore[no-untyped-def]
        calls.append(threading.current_thread().name)
        time.sleep(0.5)  # long enough for the other caller to arrive meanwhile
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "manifest.json").write_text("{}")
        return folder

    monkeypatch.setattr(models, "_convert", fake_convert)
    found: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: found.append(models.convert_gguf(gguf, tmp_path / "cache", "tiny")),
            name=f"caller-{i}",
        )
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(calls) == 1 and len(found) == 2 and found[0] == found[1]
