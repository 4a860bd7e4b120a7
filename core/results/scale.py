"""Scale within one family: two sizes of one model family on identical rows.

The paper's scale claim (bigger models of one family carry sharper maps and timelines)
can only be read within a family: across families the tokenizer, training data,
quantisation and tuning differ as well as the size. A *scale pair* is two trained
results of one family, on the same dataset, prompt and rows (the same entities in the
same split). Its gain is the larger model's test R² minus the smaller's, each at the
layer its own training rows choose, with a paired bootstrap interval over the shared test
entities; beside it, the same difference between the two random-init controls, because
a wider architecture alone can read more from the names' tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.probe.bootstrap import (
    N_BOOT,
    Interval,
    Verdict,
    point_and_samples,
    r2_samples,
    verdict_above,
)
from core.results.probe_results import ProbeResults

# "135m", "270M", "7b", "1.5B" as a separate token of a model name
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([mb])(?![a-z0-9])", re.IGNORECASE)
_SCALE = {"m": 1e6, "b": 1e9}
CODER_MARK = "†"
CODER_NOTE = f"{CODER_MARK} a coder model (tuned on code), not a general one"


def name_size(name: str) -> float | None:
    """Parameter count written in a model name ("smollm2-135m", "Llama-2-7b-hf"), if any."""
    hit = _SIZE.search(name.rsplit("/", 1)[-1])
    if hit is None:
        return None
    return float(hit.group(1)) * _SCALE[hit.group(2).lower()]


def _registered(model: str) -> Any:
    """The model's registry entry (`core.extract.models.MODELS`), if it has one."""
    try:  # the registry imports no torch at module level
        from core.extract.models import MODELS
    except ImportError:
        return None
    return MODELS.get(model)


def family_of(model: str) -> str:
    """The family a model belongs to: its registered family, else its name without the
    size token ("Llama-2-7b-hf" -> "Llama-2-hf")."""
    source = _registered(model)
    if source is not None and source.family:
        return str(source.family)
    stem = _SIZE.sub("", model.rsplit("/", 1)[-1])
    return re.sub(r"[-_.]{2,}", "-", stem).strip("-_.") or model


def is_coder(model: str) -> bool:
    """Whether a registered model was tuned on code (its comparisons say so)."""
    source = _registered(model)
    return bool(source is not None and source.tuned_on_code)


def family_label(model: str) -> str:
    """The family as tables show it, with the coder mark where it applies."""
    return family_of(model) + (CODER_MARK if is_coder(model) else "")


def _spec(res: ProbeResults) -> dict[str, object]:
    return dict(res.manifest.get("spec", {}) or {})


def is_control(res: ProbeResults) -> bool:
    return bool(_spec(res).get("random_init"))


def same_rows(a: ProbeResults, b: ProbeResults) -> bool:
    """The same dataset content, prompt, entities (in order) and train/test split."""
    if (a.dataset, a.prompt) != (b.dataset, b.prompt):
        return False
    if a.manifest.get("dataset_hash") != b.manifest.get("dataset_hash"):
        return False
    if len(a.entities) != len(b.entities):
        return False
    return bool(
        (a.entities["name"].to_numpy() == b.entities["name"].to_numpy()).all()
        and (a.entities["is_test"].to_numpy() == b.entities["is_test"].to_numpy()).all()
    )


@dataclass(frozen=True)
class ScalePair:
    """Two sizes of one family on identical rows, with their random-init controls."""

    small: ProbeResults
    large: ProbeResults
    small_control: ProbeResults | None
    large_control: ProbeResults | None

    @property
    def family(self) -> str:
        return family_of(self.large.model)

    @property
    def dataset(self) -> str:
        return self.large.dataset

    @property
    def label(self) -> str:
        return f"{self.large.model} − {self.small.model}"


@dataclass(frozen=True)
class ScaleGain:
    """The pair's differences in test R², each with its paired 95% interval."""

    pair: ScalePair
    gain: Interval  # large − small, trained
    control_gain: Interval | None  # large − small, random init
    beyond_control: Interval | None  # gain − control gain
    n_test: int

    @property
    def verdict(self) -> Verdict:
        """Holds when the trained gain and the gain beyond the controls both lie above 0;
        does not hold when either lies below 0; inconclusive otherwise."""
        parts = [verdict_above(self.gain)]
        if self.beyond_control is not None:
            parts.append(verdict_above(self.beyond_control))
        if all(p == "holds" for p in parts):
            return "holds"
        if any(p == "does not hold" for p in parts):
            return "does not hold"
        return "inconclusive"


def _trained(results: Iterable[ProbeResults]) -> list[ProbeResults]:
    return [r for r in results if not is_control(r) and r.probe_target == "latlon"]


def control_on_rows(res: ProbeResults, results: Iterable[ProbeResults]) -> ProbeResults | None:
    """The random-init control of `res` built on exactly its rows, if any."""
    return next(
        (
            r
            for r in results
            if is_control(r)
            and r.model == res.model
            and r.probe_target == res.probe_target
            and same_rows(r, res)
        ),
        None,
    )


def scale_pairs(results: Sequence[ProbeResults]) -> list[ScalePair]:
    """Every (smaller, larger) pair of one family on identical rows, smaller first; sizes
    from the names (a pair needs both)."""
    trained = [r for r in _trained(results) if name_size(r.model) is not None]
    pairs = []
    for i, a in enumerate(trained):
        for b in trained[i + 1 :]:
            if a.model == b.model or family_of(a.model) != family_of(b.model):
                continue
            if not same_rows(a, b):
                continue
            small, large = sorted((a, b), key=lambda r: name_size(r.model) or 0.0)
            pairs.append(
                ScalePair(
                    small, large, control_on_rows(small, results), control_on_rows(large, results)
                )
            )
    pairs.sort(key=lambda p: (p.dataset, p.family, p.label))
    return pairs


def _prediction(res: ProbeResults, rows: np.ndarray) -> np.ndarray:
    layer = res.best_layer()
    return np.asarray(res.predictions[res.layer_position(layer)], dtype=np.float64)[rows]


def scale_gain(pair: ScalePair, n_boot: int = N_BOOT) -> ScaleGain:
    """The trained gain, the controls' gain and their difference, all on one set of
    resamples of the shared test entities (each model at its own train-chosen layer)."""
    test = pair.large.entities["is_test"].to_numpy(dtype=bool)
    y = pair.large.entities[list(pair.large.target_names)].to_numpy(dtype=np.float64)[test]
    members = [pair.large, pair.small]
    with_controls = pair.small_control is not None and pair.large_control is not None
    if with_controls:
        assert pair.large_control is not None and pair.small_control is not None
        members += [pair.large_control, pair.small_control]
    stacked = np.stack([_prediction(r, test) for r in members])  # [M, n, T]

    def pick(column: int) -> Interval:
        def stat(counts: np.ndarray) -> np.ndarray:
            r2 = r2_samples(y, stacked, counts)  # [B, M]
            gains = np.stack([r2[:, 0] - r2[:, 1]], axis=1)
            if with_controls:
                control = r2[:, 2] - r2[:, 3]
                gains = np.stack([gains[:, 0], control, gains[:, 0] - control], axis=1)
            return gains[:, column]

        return point_and_samples(stat, len(y), n_boot)

    return ScaleGain(
        pair,
        gain=pick(0),
        control_gain=pick(1) if with_controls else None,
        beyond_control=pick(2) if with_controls else None,
        n_test=int(test.sum()),
    )


def scale_table(results: Sequence[ProbeResults], n_boot: int = N_BOOT) -> pd.DataFrame:
    """Per scale pair: the rows it is read on, the trained gain, the random-init gain,
    the gain beyond the controls (each ``point [95% interval]``) and the verdict."""
    rows = []
    for pair in scale_pairs(results):
        g = scale_gain(pair, n_boot)
        rows.append(
            {
                "dataset": pair.dataset,
                "family": family_label(pair.large.model),
                "larger − smaller": pair.label,
                "rows (test)": f"{len(pair.large.entities):,} ({g.n_test:,})",
                "test R² gain": g.gain.fmt(signed=True),
                "random-init gain": g.control_gain.fmt(signed=True) if g.control_gain else "",
                "gain beyond random init": (
                    g.beyond_control.fmt(signed=True) if g.beyond_control else ""
                ),
                "verdict": g.verdict,
            }
        )
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).set_index(["dataset", "family"])


def shared_sample(results: Sequence[ProbeResults], dataset: str) -> list[ProbeResults]:
    """The trained results of `dataset` on the rows the most models share (then the
    most rows): one per model, so models compare on identical entities."""
    trained = [r for r in _trained(results) if r.dataset == dataset and r.prompt == "empty"]
    groups: list[list[ProbeResults]] = []
    for res in sorted(trained, key=lambda r: (r.model, -len(r.entities))):
        for group in groups:
            if same_rows(group[0], res):
                if res.model not in {g.model for g in group}:
                    group.append(res)
                break
        else:
            groups.append([res])
    if not groups:
        return []
    best = max(groups, key=lambda g: (len(g), len(g[0].entities)))
    return sorted(best, key=lambda r: (family_of(r.model), name_size(r.model) or 0.0))
