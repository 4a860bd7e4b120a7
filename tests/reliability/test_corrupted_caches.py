"""Truncated, altered or missing cache files are caught by the manifest checksums.

Reading with verification names the broken file and the command that rebuilds
it; running that command replaces the broken artifact with a byte-identical one;
the dashboard shows an error panel (never a traceback) and verifies each results
folder once per server process, again only after one of its files changes.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.common.cache import MANIFEST, CacheError, artifact_file, list_artifacts, read_manifest
from core.common.config import BuildConfig
from core.extract.store import ActivationStore
from core.results.build import build
from core.results.probe_results import FILES, ProbeResults
from tests.app.conftest import make_app
from tests.conftest import single_torch_thread, synthetic_places
from tests.support.interrupt import stop_after
from tests.support.tiny import tiny_model

COMMAND = "python -m core build --model tiny-llama --dataset synthetic_places"
REAL_COMMAND = "python -m core build --model smollm2-135m --dataset world_places --prompt empty"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # same size: only the checksum can tell
    path.write_bytes(bytes(data))


def delete(path: Path) -> None:
    path.unlink()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": truncate,
    "altered": flip_last_byte,
    "deleted": delete,
}


def build_tiny(root: Path) -> ProbeResults:
    return build(
        BuildConfig(
            model="tiny-llama", dataset=synthetic_places(120), max_batch_size=16, cache_root=root
        ),
        loaded=tiny_model(),
        command=COMMAND,
    )


def file_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of an artifact, the shared ones it lists included."""
    names = {p.name for p in folder.iterdir() if p.name != MANIFEST}
    shared = read_manifest(folder).get("shared_files", {}) if (folder / MANIFEST).is_file() else {}
    manifest = {"shared_files": shared}
    return {
        name: artifact_file(folder, manifest, name).read_bytes()
        for name in sorted(names | set(shared))
    }


@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_the_module() -> Iterator[None]:
    """Module-wide (so `built` below runs under it too): rebuilds are compared byte for byte."""
    with single_torch_thread():
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built")
    build_tiny(root)
    return root


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("name", FILES)
def test_damaged_results_file_is_named_with_the_rebuild_command(
    built: Path, tmp_path: Path, name: str, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "cache"
    shutil.copytree(built, root)
    ((folder, _),) = list_artifacts(root, "results")
    original = file_bytes(folder)
    DAMAGE[damage](artifact_file(folder, read_manifest(folder), name))
    with pytest.raises(CacheError) as info:
        ProbeResults.load(folder, verify=True)
    message = str(info.value)
    assert name in message and f"rebuild with: {COMMAND}" in message
    # the command it names repairs it: the broken folder is replaced, byte for byte
    with caplog.at_level(logging.WARNING, logger="core.results.build"):
        build_tiny(root)
    assert any(name in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
    assert file_bytes(folder) == original
    ProbeResults.load(folder, verify=True)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_activations_are_named_and_rebuilt(
    built: Path, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "cache"
    shutil.copytree(built, root)
    ((folder, _),) = list_artifacts(root, "activations")
    original = file_bytes(folder)
    DAMAGE[damage](folder / "layer_001.npy")
    with pytest.raises(CacheError, match=rf"layer_001\.npy.*rebuild with: {COMMAND}"):
        ActivationStore(folder, verify=True)
    for results, _ in list_artifacts(root, "results"):
        shutil.rmtree(results)  # so the build needs the activations again
    with caplog.at_level(logging.WARNING, logger="core.extract.store"):
        build_tiny(root)
    assert any(
        "layer_001.npy" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records
    )
    assert file_bytes(folder) == original


def test_unreadable_manifest_is_rebuilt(built: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    shutil.copytree(built, root)
    ((folder, _),) = list_artifacts(root, "results")
    original = file_bytes(folder)
    (folder / MANIFEST).write_text('{"artifact": "res')
    assert list_artifacts(root, "results") == []  # never listed as finished
    build_tiny(root)
    assert file_bytes(folder) == original
    assert read_manifest(folder)["command"] == COMMAND


def test_unreadable_batch_plan_restarts_the_partial_build(tmp_path: Path) -> None:
    from core.common.config import ActivationSpec
    from core.extract.store import build_activations, find_partial

    places, tiny = synthetic_places(120), tiny_model()
    spec = ActivationSpec(model="tiny-llama", dataset=places.name, max_batch_size=8)
    reference = build_activations(spec, places, tiny, tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        build_activations(spec, places, tiny, tmp_path / "cache", progress=stop_after(2))
    (find_partial(tmp_path / "cache")[0] / "plan.json").write_text('{"key": "tiny')  # torn write
    resumed = build_activations(spec, places, tiny, tmp_path / "cache")
    assert file_bytes(resumed.folder) == file_bytes(reference.folder)


# ---------------------------------------------------------------- dashboard
WORLD = "smollm2-135m__world_places__empty__synthetic"
SELECTION = {"model": "smollm2-135m", "dataset": "world_places", "prompt": "empty"}


@pytest.fixture
def app_cache(demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    shutil.copytree(demo_root, root)
    manifest_path = root / "results" / WORLD / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["command"] = REAL_COMMAND  # what a real build records
    manifest_path.write_text(json.dumps(manifest))
    monkeypatch.setenv("SPACETIME_CACHE", str(root))
    monkeypatch.setenv("SPACETIME_FAKE_MODEL", "tests.support.tiny:tiny_model")
    return root


def error_texts(at: Any) -> list[str]:
    return [str(e.value) for e in at.error]


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("predictions.npy", "truncated"),
        ("coef.npy", "altered"),
        ("metrics.parquet", "deleted"),
        ("entities.parquet", "altered"),
    ],
)
@pytest.mark.parametrize("page", ["pages/maps.py", "pages/layers.py", "pages/live_probe.py"])
def test_dashboard_shows_an_error_panel_naming_file_and_command(
    app_cache: Path, name: str, damage: str, page: str
) -> None:
    folder = app_cache / "results" / WORLD
    DAMAGE[damage](artifact_file(folder, read_manifest(folder), name))  # entities: the shared table
    at = make_app({**SELECTION, "names": "Kyoto"}).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    (error,) = error_texts(at)
    assert name in error and REAL_COMMAND in error
    assert REAL_COMMAND in [c.value for c in at.code]
    assert not at.get("plotly_chart")


def test_dashboard_verifies_once_and_again_after_a_change(
    app_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pages import _loaders

    calls: list[str] = []
    real = _loaders.verify_files

    def counting(folder: Path, manifest: dict[str, Any], hint: str = "") -> None:
        calls.append(Path(folder).name)
        real(folder, manifest, hint)

    monkeypatch.setattr(_loaders, "verify_files", counting)
    at = make_app(SELECTION).run()
    at.select_slider(key="w_layer").set_value(2).run()
    at.switch_page("pages/layers.py").run()
    assert not at.exception and not at.error
    assert calls.count(WORLD) == 1  # three runs, one verification
    flip_last_byte(app_cache / "results" / WORLD / "alphas.npy")  # new mtime: verified again
    at.run()
    assert calls.count(WORLD) == 2
    assert not at.exception
    (error,) = error_texts(at)
    assert "alphas.npy" in error and "checksum" in error and REAL_COMMAND in error
