"""Safety: no unsafe deserialisation in the project's code, remote code off by
default, and no cache key (or planted symlink) can lead outside the cache root."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.common.cache import ARTIFACT_KINDS, artifact_dir, validate_key

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "core", ROOT / "pages", ROOT / "bench", ROOT / "dashboard.py"]

# pattern -> why it is unsafe
FORBIDDEN = {
    r"\bpickle\b": "pickle runs code while loading",
    r"\bcloudpickle\b|\bdill\b|\bjoblib\b|\bmarshal\b": (
        "pickle-like formats run code while loading"
    ),
    r"torch\.load\b": "torch.load unpickles",
    r"allow_pickle\s*=\s*True": "numpy pickles object arrays",
    r"read_pickle": "pandas pickles",
    r"trust_remote_code\s*=\s*True": "runs a model repository's own code",
    r"yaml\.(unsafe_)?load\(": "yaml.load builds arbitrary objects",
}
# (file relative to the project, pattern) -> why this one occurrence is fine
ALLOWED: dict[tuple[str, str], str] = {}


def python_files() -> list[Path]:
    files: list[Path] = []
    for source in SOURCES:
        files += [source] if source.is_file() else sorted(source.rglob("*.py"))
    return files


def test_no_unsafe_deserialisation_in_project_code() -> None:
    files = python_files()
    assert len(files) > 20, files  # the walk found the code
    found = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for pattern, why in FORBIDDEN.items():
                if re.search(pattern, line) and (rel, pattern) not in ALLOWED:
                    found.append(f"{rel}:{lineno}: {line.strip()}  ({why})")
    assert found == []


def test_the_scan_would_catch_them() -> None:
    lines = [
        "import pickle",
        "x = torch.load(path)",
        "np.load(p, allow_pickle=True)",
        "f(trust_remote_code=True)",
    ]
    for line in lines:
        assert any(re.search(pattern, line) for pattern in FORBIDDEN), line


def test_trust_remote_code_is_off_unless_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import inspect

    import transformers

    from core import cli
    from core.common.config import BuildConfig
    from core.extract import models
    from tests.support.tiny import tiny_model

    assert inspect.signature(models.load_model).parameters["trust_remote_code"].default is False
    assert BuildConfig("m", "d").trust_remote_code is False

    def parsed(*argv: str) -> bool:
        args = cli._parser().parse_args(["build", "--dataset", "x", *argv])
        return bool(cli.build_config(args, Path(".")).trust_remote_code)

    assert parsed() is False
    assert parsed("--trust-remote-code") is True

    calls: list[tuple[str, Any]] = []
    tiny = tiny_model()

    def fake(kind: str, value: Any) -> Any:
        def from_pretrained(*args: Any, **kwargs: Any) -> Any:
            calls.append((kind, kwargs.get("trust_remote_code", "not passed")))
            return value

        return from_pretrained

    monkeypatch.setattr(models, "resolve_model_path", lambda *a, **k: (tmp_path, "files:test"))
    monkeypatch.setattr(
        transformers.AutoTokenizer, "from_pretrained", fake("tokenizer", tiny.tokenizer)
    )
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM, "from_pretrained", fake("model", tiny.model)
    )
    monkeypatch.setattr(
        transformers.AutoConfig, "from_pretrained", fake("config", tiny.model.config)
    )

    models.load_model("some/hub-model", device="cpu")
    assert calls == [("tokenizer", False), ("model", False)]
    calls.clear()
    models.load_model("some/hub-model", device="cpu", random_init=True)
    assert calls == [("tokenizer", False), ("config", False)]
    calls.clear()
    models.load_model("some/hub-model", device="cpu", trust_remote_code=True)
    assert calls == [("tokenizer", True), ("model", True)]


@settings(max_examples=500, deadline=None)
@given(
    key=st.one_of(st.text(max_size=250), st.from_regex(r"[A-Za-z0-9._/\\-]{1,40}", fullmatch=True)),
    kind=st.sampled_from(ARTIFACT_KINDS),
)
def test_no_key_escapes_the_cache_root(
    tmp_path_factory: pytest.TempPathFactory, key: str, kind: str
) -> None:
    root = tmp_path_factory.getbasetemp() / "keys-root"
    try:
        path = artifact_dir(root, kind, key)
    except ValueError:
        return
    assert path.parent == (root / kind).resolve()
    assert path.name == key == validate_key(key)


def test_a_planted_symlink_does_not_lead_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "cache", tmp_path / "outside"
    (root / "results").mkdir(parents=True)
    outside.mkdir()
    (root / "results" / "planted").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="escapes"):
        artifact_dir(root, "results", "planted")
