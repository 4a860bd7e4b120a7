"""The dashboard's view state and its URL query string: parse, validate, serialise.

Pure functions: a query mapping goes in with the choices that exist (an
:class:`Options`), a :class:`ViewState` and a list of human-readable notes come
out. Every value is matched against the offered choices, so an unknown or
out-of-range value (a stale link, a hand-edited URL, a path) falls back to a
default with a note, and no value is ever used as a file path.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from core.results.probe_results import best_layer_of

if TYPE_CHECKING:
    import pandas as pd

SPLITS: tuple[str, ...] = ("test", "train", "all")
RESIDUAL_BINS: tuple[str, ...] = ("decade", "century")
POINT_CAPS: tuple[str, ...] = ("5000", "20000", "all")
DEFAULT_POINTS = "5000"
LAYER_METRICS: tuple[str, ...] = ("r2", "proximity_error")
# the Compare page's depth slider moves in steps of 0.01, enough to reach every layer
# of a model with up to 100 (tests/viz/test_compare_figures.py checks 80)
DEPTH_DECIMALS = 2

MAX_VALUE_CHARS = 200
MAX_NAMES = 10
MAX_NAME_CHARS = 80
MAX_NAMES_CHARS = MAX_NAMES * (MAX_NAME_CHARS + 1)

# field name -> URL key
QUERY_KEYS: dict[str, str] = {
    "model": "model",
    "dataset": "dataset",
    "prompt": "prompt",
    "layer": "layer",
    "split": "split",
    "color": "color",
    "segments": "seg",
    "presentation": "pres",
    "residuals_by": "by",
    "compare": "cmp",
    "compare_metric": "metric",
    "names": "names",
    "points": "pts",
    "compare_left": "left",
    "compare_right": "right",
    "compare_depth": "depth",
}
_FIELD_OF = {v: k for k, v in QUERY_KEYS.items()}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ViewState:
    """Everything a copied link should reopen."""

    model: str = ""
    dataset: str = ""
    prompt: str = ""
    layer: int | None = None
    split: str = "test"
    color: str = ""  # colour/group column; "" = the dataset's default
    segments: bool = False
    presentation: bool = False
    residuals_by: str = "decade"
    compare: tuple[str, ...] = ()  # model ids on the layers page; () = every model
    compare_metric: str = "r2"
    names: tuple[str, ...] = ()
    points: str = DEFAULT_POINTS
    # the Compare page: model ids ("" = the default pair) and normalised depth
    # (layer + 1) / number of layers (None = the left model's chosen layer)
    compare_left: str = ""
    compare_right: str = ""
    compare_depth: float | None = None

    def with_(self, **changes: object) -> ViewState:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def max_points(self) -> int | None:
        return None if self.points == "all" else int(self.points)


class Options(Protocol):
    """The choices that exist right now (from the results catalog and dataset registry)."""

    def models(self) -> Sequence[str]: ...

    def datasets(self, model: str) -> Sequence[str]: ...

    def prompts(self, model: str, dataset: str) -> Sequence[str]: ...

    def layers(self, model: str, dataset: str, prompt: str) -> Sequence[int]: ...

    def metrics(self, model: str, dataset: str, prompt: str) -> pd.DataFrame | None:
        """The results' metrics table (None when there are none to read)."""
        ...

    def groups(self, model: str, dataset: str, prompt: str) -> Sequence[str]: ...

    def compare_models(self, dataset: str, prompt: str) -> Sequence[str]: ...


@dataclass
class Defaults:
    model: str = "smollm2-135m"
    dataset: str = "world_places"
    prompt: str = "empty"


@dataclass
class Resolution:
    state: ViewState
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ parsing
def clean_text(value: object, limit: int = MAX_VALUE_CHARS, keep_newlines: bool = False) -> str:
    """A string with control characters removed, normalised and capped in length."""
    text = unicodedata.normalize("NFC", str(value))
    if keep_newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = "\n".join(_CONTROL.sub("", line) for line in text.split("\n"))
    else:
        text = _CONTROL.sub("", text.replace("\n", " ").replace("\t", " "))
    return text[:limit]


def shown(value: object, limit: int = 40) -> str:
    """A user-supplied value as it may appear in a note: plain characters only, short."""
    text = re.sub(r"[^A-Za-z0-9 ._:+@,-]", "?", clean_text(value, 400))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_query(params: Mapping[str, object]) -> dict[str, str]:
    """Known keys of a query mapping as field -> cleaned string (lists: last value)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        fld = _FIELD_OF.get(str(key))
        if fld is None:
            continue
        if isinstance(value, (list, tuple)):
            if not value:
                continue
            value = value[-1]
        if fld == "names":
            out[fld] = clean_text(value, MAX_NAMES_CHARS * 2, keep_newlines=True)
        else:
            out[fld] = clean_text(value).strip()
    return out


def parse_names(text: str) -> tuple[tuple[str, ...], list[str]]:
    """One name per line: trimmed, de-duplicated, at most MAX_NAMES of MAX_NAME_CHARS each."""
    notes: list[str] = []
    names: list[str] = []
    truncated = False
    for line in clean_text(text, MAX_NAMES_CHARS * 2, keep_newlines=True).split("\n"):
        name = " ".join(line.split())
        if not name:
            continue
        if len(name) > MAX_NAME_CHARS:
            name = name[:MAX_NAME_CHARS].rstrip()
            truncated = True
        if name not in names:
            names.append(name)
    if truncated:
        notes.append(f"Names are cut to {MAX_NAME_CHARS} characters.")
    if len(names) > MAX_NAMES:
        notes.append(f"Only the first {MAX_NAMES} names are probed ({len(names)} given).")
        names = names[:MAX_NAMES]
    return tuple(names), notes


def parse_bool(value: str | None, default: bool) -> bool | None:
    """True/False, the default for a missing value, None when unreadable."""
    if value is None:
        return default
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def parse_int(value: str | None) -> int | None:
    if value is None or not re.fullmatch(r"-?\d{1,6}", value.strip()):
        return None
    return int(value.strip())


def parse_depth(value: str | None) -> float | None:
    """A normalised depth in [0, 1], rounded to DEPTH_DECIMALS; None when unreadable."""
    if value is None or not re.fullmatch(r"[0-9.]{1,24}", value.strip()):
        return None
    try:
        depth = float(value.strip())
    except ValueError:
        return None
    if not 0.0 <= depth <= 1.0:
        return None
    return round(depth, DEPTH_DECIMALS)


def format_depth(depth: float) -> str:
    """The URL form of a depth: at most DEPTH_DECIMALS decimals, no trailing zeros."""
    return f"{depth:.{DEPTH_DECIMALS}f}".rstrip("0").rstrip(".")


def _pick(
    value: str | None, choices: Sequence[str], default: str, label: str, notes: list[str]
) -> str:
    if value is not None and value in choices:
        return value
    fallback = default if (default in choices or not choices) else choices[0]
    if value is not None and value != "":
        notes.append(
            f"{label} {shown(value)!r} is not available here; showing {shown(fallback)!r}."
        )
    return fallback


# ---------------------------------------------------------------- resolving
def resolve(
    raw: Mapping[str, str], options: Options, defaults: Defaults | None = None
) -> Resolution:
    """Validate raw field values (from :func:`read_query` or widgets) against `options`."""
    defaults = defaults or Defaults()
    notes: list[str] = []

    models = list(options.models())
    model = _pick(raw.get("model"), models, defaults.model, "Model", notes)
    datasets = list(options.datasets(model))
    dataset = _pick(raw.get("dataset"), datasets, defaults.dataset, "Dataset", notes)
    prompts = list(options.prompts(model, dataset))
    prompt = _pick(raw.get("prompt"), prompts, defaults.prompt, "Prompt", notes)

    layers = [int(v) for v in options.layers(model, dataset, prompt)]
    layer: int | None = None
    if layers:
        default_layer = best_layer_of(options.metrics(model, dataset, prompt), layers)
        asked = raw.get("layer")
        parsed = parse_int(asked) if asked is not None else None
        if parsed is not None and parsed in layers:
            layer = parsed
        else:
            layer = default_layer
            if asked not in (None, ""):
                notes.append(
                    f"Layer {shown(asked)!r} is not in these results "
                    f"(layers {layers[0]}–{layers[-1]}); showing layer {layer}."
                )

    split = _pick(raw.get("split"), SPLITS, "test", "Split", notes)
    groups = list(options.groups(model, dataset, prompt))
    color = raw.get("color", "")
    if color and color not in groups:
        notes.append(f"Colour column {shown(color)!r} is not in this dataset; using the default.")
        color = ""

    flags: dict[str, bool] = {}
    for fld, label, default in (
        ("segments", "Segments", False),
        ("presentation", "Presentation", False),
    ):
        parsed_bool = parse_bool(raw.get(fld), default)
        if parsed_bool is None:
            notes.append(
                f"{label} value {shown(raw.get(fld))!r} is not on/off; "
                f"using {'on' if default else 'off'}."
            )
            parsed_bool = default
        flags[fld] = parsed_bool

    residuals_by = _pick(
        raw.get("residuals_by"), RESIDUAL_BINS, "decade", "Residual binning", notes
    )
    compare_metric = _pick(
        raw.get("compare_metric"), LAYER_METRICS, "r2", "Comparison metric", notes
    )
    points = _pick(raw.get("points"), POINT_CAPS, DEFAULT_POINTS, "Point cap", notes)

    compare: tuple[str, ...] = ()
    if raw.get("compare"):
        offered = list(options.compare_models(dataset, prompt))
        asked_models = [m for m in raw["compare"].split(",") if m]
        kept = tuple(dict.fromkeys(m for m in asked_models if m in offered))
        dropped = [m for m in asked_models if m not in offered]
        if dropped:
            notes.append(
                "No results to compare for "
                + ", ".join(repr(shown(m)) for m in dropped[:5])
                + "; left out."
            )
        compare = kept

    # the Compare page's pair: kept only where it has results for this dataset and prompt
    pair: dict[str, str] = {"compare_left": "", "compare_right": ""}
    pair_offered: list[str] | None = None
    for fld, label in (("compare_left", "Left model"), ("compare_right", "Right model")):
        asked_model = raw.get(fld, "")
        if not asked_model:
            continue
        if pair_offered is None:
            pair_offered = list(options.compare_models(dataset, prompt))
        if asked_model in pair_offered:
            pair[fld] = asked_model
        else:
            notes.append(
                f"{label} {shown(asked_model)!r} has no results for this dataset and prompt; "
                "showing the default."
            )

    compare_depth: float | None = None
    if raw.get("compare_depth"):
        compare_depth = parse_depth(raw["compare_depth"])
        if compare_depth is None:
            notes.append(
                f"Depth {shown(raw['compare_depth'])!r} is not a number from 0 to 1; "
                "showing the left model's chosen layer."
            )

    names: tuple[str, ...] = ()
    if raw.get("names"):
        names, name_notes = parse_names(raw["names"])
        notes += name_notes

    state = ViewState(
        model=model,
        dataset=dataset,
        prompt=prompt,
        layer=layer,
        split=split,
        color=color,
        segments=flags["segments"],
        presentation=flags["presentation"],
        residuals_by=residuals_by,
        compare=compare,
        compare_metric=compare_metric,
        names=names,
        points=points,
        compare_left=pair["compare_left"],
        compare_right=pair["compare_right"],
        compare_depth=compare_depth,
    )
    return Resolution(state=state, notes=notes)


# -------------------------------------------------------------- serialising
def to_fields(state: ViewState) -> dict[str, str]:
    """Every field as a string (the inverse of what :func:`resolve` reads)."""
    return {
        "model": state.model,
        "dataset": state.dataset,
        "prompt": state.prompt,
        "layer": "" if state.layer is None else str(state.layer),
        "split": state.split,
        "color": state.color,
        "segments": "1" if state.segments else "0",
        "presentation": "1" if state.presentation else "0",
        "residuals_by": state.residuals_by,
        "compare": ",".join(state.compare),
        "compare_metric": state.compare_metric,
        "names": "\n".join(state.names),
        "points": state.points,
        "compare_left": state.compare_left,
        "compare_right": state.compare_right,
        "compare_depth": "" if state.compare_depth is None else format_depth(state.compare_depth),
    }


_OPTIONAL_DEFAULTS = {
    "color": "",
    "segments": "0",
    "presentation": "0",
    "residuals_by": "decade",
    "compare": "",
    "compare_metric": "r2",
    "names": "",
    "points": DEFAULT_POINTS,
    "compare_left": "",
    "compare_right": "",
    "compare_depth": "",
}


def to_query(state: ViewState) -> dict[str, str]:
    """URL query parameters: the selection always, other fields only when not default."""
    out: dict[str, str] = {}
    for fld, value in to_fields(state).items():
        if fld in _OPTIONAL_DEFAULTS and value == _OPTIONAL_DEFAULTS[fld]:
            continue
        if fld == "layer" and value == "":
            continue
        out[QUERY_KEYS[fld]] = value
    return out


def query_string(state: ViewState) -> str:
    """The query string of a state (for links), percent-encoded."""
    from urllib.parse import urlencode

    return urlencode(to_query(state))
