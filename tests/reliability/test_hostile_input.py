"""Hostile input: typed names, URL query values and CSV files.

* Typed names (empty, blank, 10,000 characters, control characters, right-to-left
  text, emoji, HTML/script, Markdown) reach the live probe without an exception,
  are cleaned and capped, and are shown as text; the model never reads more than
  ``core.ui.live.MAX_TOKENS`` tokens per name.
* URL values (unknown model/dataset, layer out of range, path-like values) fall
  back with a visible note; an audit hook records every file the dashboard opens,
  lists, creates or deletes while serving them: nothing outside the cache root,
  the project and the Python installation is touched, nothing is written outside
  the cache root and the temp folder.
* Property-based tests (hypothesis) for the URL-state parser and the CSV loader.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import streamlit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data.schema import DatasetError
from core.data.user_csv import load_user_csv
from core.ui import live
from core.ui import view_state as vs
from tests.app.conftest import make_app
from tests.support.tiny import tiny_model

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["pages/maps.py", "pages/timelines.py", "pages/layers.py", "pages/live_probe.py"]

# name typed -> the names the page probes (after cleaning)
TYPED: dict[str, tuple[str, ...]] = {
    "": (),
    "   \n\t  \n": (),
    "x" * 10_000: ("x" * vs.MAX_NAME_CHARS,),
    "Kyo\x00to\x1b[31m\x07\x7f": ("Kyoto[31m",),
    "القاهرة\n\u202eevil\u202c": ("القاهرة", "\u202eevil\u202c"),
    "🗼 Tōkyō 👩\u200d👩\u200d👧": ("🗼 Tōkyō 👩\u200d👩\u200d👧",),
    "<script>window.pwned=1</script>": ("<script>window.pwned=1</script>",),
    '<img src=x onerror="alert(1)">': ('<img src=x onerror="alert(1)">',),
    "**bold** [link](javascript:alert(1))": ("**bold** [link](javascript:alert(1))",),
}


@pytest.fixture
def app_env(demo_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPACETIME_CACHE", str(demo_root))
    monkeypatch.setenv("SPACETIME_FAKE_MODEL", "tests.support.tiny:tiny_model")
    return demo_root


@pytest.mark.parametrize("typed", list(TYPED), ids=[f"typed{i}" for i in range(len(TYPED))])
def test_typed_names_are_cleaned_capped_and_shown_as_text(app_env: Path, typed: str) -> None:
    at = make_app({"dataset": "world_places"}).run()
    at.switch_page("pages/live_probe.py").run()
    if len(typed) > vs.MAX_NAMES_CHARS:
        # a browser's text area stops at max_chars; a client that sends more anyway is ignored
        at.text_area(key="w_names").input(typed).run()
        assert not at.exception  # ignored: the page shows its example as if nothing was typed
        assert any(str(c.value).startswith("An example:") for c in at.caption)
        typed = typed[: vs.MAX_NAMES_CHARS]
    at.text_area(key="w_names").input(typed).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    expected = TYPED[typed if typed in TYPED else "x" * 10_000]
    charts = at.get("plotly_chart")
    if not expected and not typed.strip():  # nothing typed: the example is probed
        assert len(charts) == 1
        assert any(str(c.value).startswith("An example:") for c in at.caption)
        return
    if not expected:
        assert not charts
        assert any("Type a name" in str(c.value) for c in at.caption)
        return
    assert len(charts) == 1
    table = at.dataframe[0].value
    assert tuple(dict.fromkeys(table["name"])) == expected  # the raw text, as text
    assert all(len(name) <= vs.MAX_NAME_CHARS for name in table["name"])
    spec = charts[0].proto.spec
    assert "<script" not in spec and "<img" not in spec  # markup is escaped in the figure


def test_names_from_the_url_are_capped_too(app_env: Path) -> None:
    at = make_app({"names": "\n".join(["y" * 500] * 3 + [f"n{i}" for i in range(30)])}).run()
    notes = [str(i.value) for i in at.info]  # shown on the first run, with the link's values
    assert any("cut to" in n for n in notes) and any("Only the first" in n for n in notes)
    at.switch_page("pages/live_probe.py").run()
    assert not at.exception
    names = list(dict.fromkeys(at.dataframe[0].value["name"]))
    assert names == ["y" * vs.MAX_NAME_CHARS] + [f"n{i}" for i in range(vs.MAX_NAMES - 1)]
    at = make_app({"names": "z" * 10_000}).run()  # the whole value is capped before parsing
    at.switch_page("pages/live_probe.py").run()
    assert not at.exception
    assert list(dict.fromkeys(at.dataframe[0].value["name"])) == ["z" * vs.MAX_NAME_CHARS]


def test_live_probe_reads_a_bounded_number_of_tokens(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However long the name, the model reads at most MAX_TOKENS tokens, ending with the name's."""
    import core.extract.activations

    seen: list[list[int]] = []
    real = core.extract.activations.forward_batch

    def spy(loaded: Any, token_ids: list[list[int]], *args: Any, **kwargs: Any) -> np.ndarray:
        seen.extend(token_ids)
        return real(loaded, token_ids, *args, **kwargs)

    monkeypatch.setattr(core.extract.activations, "forward_batch", spy)
    streamlit.cache_data.clear()
    name = "Q" * 10_000  # the character tokenizer of the test model: one token per character
    at = make_app({"names": name}).run()
    at.switch_page("pages/live_probe.py").run()
    assert not at.exception and at.get("plotly_chart")
    assert seen and max(len(ids) for ids in seen) == live.MAX_TOKENS
    # directly, with a long prompt prefix as well: the name's last token is the one kept
    model = tiny_model()
    seen.clear()
    acts = live.name_activations(model, live.probe_texts("p" * 500, ["Kyoto" * 100]), [0, 1, 2])
    assert acts.shape == (3, 1, model.d_model) and np.isfinite(acts).all()
    assert len(seen[0]) == live.MAX_TOKENS and seen[0][-1] == model.tokenizer.convert_tokens_to_ids(
        "o"
    )


# --------------------------------------------------------------- URL values
HOSTILE_QUERY = {
    "model": "../../etc/passwd",
    "dataset": "/etc/passwd",
    "prompt": "..%2F..%2Fetc%2Fshadow",
    "layer": "../../../1",
    "split": "<script>",
    "color": "/etc/shadow",
    "seg": "maybe",
    "cmp": "../x,/etc/passwd",
    "pts": "1e99",
    "names": "../../etc/passwd",
}
READ_EVENTS = {"open", "os.listdir", "os.scandir", "glob.glob"}
WRITE_EVENTS = {
    "os.mkdir",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "shutil.rmtree",
    "os.truncate",
    "os.chmod",
}
_RECORDING: list[list[tuple[str, str, bool]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _RECORDING or (event not in READ_EVENTS and event not in WRITE_EVENTS):
        return
    target = args[0] if args else None
    if not isinstance(target, (str, bytes, os.PathLike)):
        return  # file descriptors
    path = os.path.abspath(os.fsdecode(target))
    writing = event in WRITE_EVENTS
    if event == "open" and len(args) > 1 and isinstance(args[1], str):
        writing = any(ch in args[1] for ch in "wax+")
    _RECORDING[-1].append((event, path, writing))


_HOOKED: list[bool] = []


def record_file_access() -> list[tuple[str, str, bool]]:
    if not _HOOKED:
        sys.addaudithook(_audit)  # cannot be removed; it is idle while nothing records
        _HOOKED.append(True)
    events: list[tuple[str, str, bool]] = []
    _RECORDING.append(events)
    return events


def inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def test_hostile_url_values_touch_nothing_outside_the_cache_root(app_env: Path) -> None:
    # warm up (imports, first loads) so that what is recorded is the request itself
    for page in PAGES:
        make_app({"names": "Kyoto"}).run().switch_page(page).run()
    events = record_file_access()
    try:
        for page in PAGES:
            at = make_app(HOSTILE_QUERY).run()
            notes = [str(i.value) for i in at.info]
            at.switch_page(page).run()
            assert not at.exception, [e.value for e in at.exception]
            assert len(notes) >= 6, notes  # every bad value is named in a note
            assert all("/" not in n.replace("on/off", "") and "<" not in n for n in notes), notes
            assert at.query_params["model"] != HOSTILE_QUERY["model"]
    finally:
        _RECORDING.clear()
    cache = os.path.realpath(app_env)
    assert events, "the audit hook recorded nothing"
    assert violations(events, cache) == []
    assert [p for _, p, _ in events if p.startswith(cache + "/results/")], (
        "the pages read no results at all?"
    )
    # the check itself catches what it is meant to
    assert (
        violations([("open", "/etc/passwd", False), ("os.mkdir", str(ROOT / "x"), True)], cache)
        != []
    )


def violations(events: Sequence[tuple[str, str, bool]], cache: str) -> list[str]:
    """Accesses outside the cache root, the project and the Python installation (writes:
    outside the cache root and the temp folder)."""
    readable = [
        cache,
        str(ROOT),
        os.path.realpath(sys.prefix),
        os.path.realpath(sys.base_prefix),
        "/proc",
        "/sys",
        "/dev",
        "/usr",
    ]
    writable = [cache, os.path.realpath(tempfile.gettempdir())]
    bad = []
    for event, path, writing in events:
        real = os.path.realpath(path)
        if "passwd" in path or "shadow" in path or not inside(real, readable + writable):
            bad.append(f"{event} {path}")
        elif writing and not inside(real, writable):
            bad.append(f"{event} (write) {path}")
    return bad


# ------------------------------------------------------ URL-state properties
class Offered:
    """Options over a fixed little catalog; records every value it is asked about."""

    MODELS = ("smollm2-135m", "gemma3-270m", "smollm2-135m@random")
    DATASETS = ("world_places", "us_places", "historical_figures")
    PROMPTS = ("empty", "coords")
    LAYERS = (0, 1, 2, 3, 4, 5)
    GROUPS = ("continent", "country")

    def __init__(self) -> None:
        self.asked: list[str] = []

    def models(self) -> Sequence[str]:
        return self.MODELS

    def datasets(self, model: str) -> Sequence[str]:
        self.asked.append(model)
        return self.DATASETS

    def prompts(self, model: str, dataset: str) -> Sequence[str]:
        self.asked += [model, dataset]
        return self.PROMPTS

    def layers(self, model: str, dataset: str, prompt: str) -> Sequence[int]:
        self.asked += [model, dataset, prompt]
        return self.LAYERS

    def metrics(self, model: str, dataset: str, prompt: str) -> pd.DataFrame | None:
        self.asked += [model, dataset, prompt]
        return None  # no results to read: the last layer (5) is the default

    def groups(self, model: str, dataset: str, prompt: str) -> Sequence[str]:
        self.asked += [model, dataset, prompt]
        return self.GROUPS

    def compare_models(self, dataset: str, prompt: str) -> Sequence[str]:
        self.asked += [dataset, prompt]
        return self.MODELS


PATHS = st.sampled_from(
    [
        "../../etc/passwd",
        "/etc/shadow",
        "..",
        "~/.ssh/id_rsa",
        "C:\\Windows\\win.ini",
        "%2e%2e%2f",
        "file:///etc/passwd",
    ]
)
VALUES = st.one_of(
    st.text(max_size=300),
    PATHS,
    st.sampled_from([*Offered.MODELS, *Offered.DATASETS, "5", "-1", "99", "all", "on"]),
)
QUERIES = st.dictionaries(
    st.one_of(st.sampled_from(sorted(vs.QUERY_KEYS.values())), st.text(max_size=10)),
    st.one_of(VALUES, st.lists(VALUES, max_size=3)),
    max_size=16,
)
UNSAFE_IN_NOTES = set("<>[]`*\\/\n\r\t\x00")


@settings(max_examples=300, deadline=None)
@given(query=QUERIES)
def test_any_query_resolves_to_offered_values(query: dict[str, Any]) -> None:
    options = Offered()
    resolution = vs.resolve(vs.read_query(query), options)
    state = resolution.state
    assert (
        state.model in Offered.MODELS
        and state.dataset in Offered.DATASETS
        and state.prompt in Offered.PROMPTS
    )
    assert state.layer in Offered.LAYERS
    assert state.split in vs.SPLITS and state.points in vs.POINT_CAPS
    assert state.residuals_by in vs.RESIDUAL_BINS and state.compare_metric in vs.LAYER_METRICS
    assert state.color in ("", *Offered.GROUPS)
    assert set(state.compare) <= set(Offered.MODELS)
    assert len(state.names) <= vs.MAX_NAMES
    for name in state.names:
        assert 0 < len(name) <= vs.MAX_NAME_CHARS and name == name.strip()
        assert not any(ord(c) < 32 or ord(c) == 127 for c in name)
    # only offered values are ever passed on (no user string reaches a lookup, let alone a path)
    offered = {*Offered.MODELS, *Offered.DATASETS, *Offered.PROMPTS}
    assert set(options.asked) <= offered
    for note in resolution.notes:
        assert not (set(note.replace("on/off", "")) & UNSAFE_IN_NOTES), note
        assert len(note) < 400


@settings(max_examples=300, deadline=None)
@given(query=QUERIES)
def test_resolved_state_round_trips_through_the_url(query: dict[str, Any]) -> None:
    """A link copied from any resolved view reopens exactly that view, without notes."""
    state = vs.resolve(vs.read_query(query), Offered()).state
    again = vs.resolve(vs.read_query(vs.to_query(state)), Offered())
    assert again.state == state
    assert again.notes == []


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=3000))
def test_parse_names_is_idempotent_and_bounded(text: str) -> None:
    names, _ = vs.parse_names(text)
    assert len(names) <= vs.MAX_NAMES and len(set(names)) == len(names)
    assert vs.parse_names("\n".join(names))[0] == names


# -------------------------------------------------------- CSV, fuzzed bytes
CSV_ALPHABET = st.sampled_from(
    list('name,lat,lon,year,date\n"\r;\t 0123456789.-+eE_NaN\x00\xff') + ["é", "🗼", "\ufeff"]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=400),
        st.lists(CSV_ALPHABET, max_size=400)
        .map("".join)
        .map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.lists(CSV_ALPHABET, max_size=300).map(
            lambda cs: ("name,lat,lon\n" + "".join(cs)).encode()
        ),
    )
)
def test_any_bytes_load_or_fail_with_a_message_naming_the_file(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(body)
    try:
        data = load_user_csv(path)
    except DatasetError as exc:
        assert str(exc).startswith(str(path)), str(exc)
        return
    assert len(data) > 0
    frame = data.frame
    if data.kind == "space":
        assert frame["lat"].between(-90, 90).all() and frame["lon"].between(-180, 180).all()
    else:
        assert np.isfinite(frame["year"]).all()
    assert frame["name"].is_unique
