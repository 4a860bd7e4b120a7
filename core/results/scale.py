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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.probe.bootstrap import (
    N_BOOT,
    Interval,
    Verdict,
    point_and_samples,
    r2_samples,
    verdict_beats,
)
from core.results.index import ResultSet
from core.results.meta import family_of as family_of  # re-exported
from core.results.meta import name_size as name_size  # re-exported
from core.results.meta import registered_model
from core.results.probe_results import ProbeResults

CODER_MARK = "†"
CODER_NOTE = f"{CODER_MARK} a coder model (tuned on code), not a general one"


def is_coder(model: str) -> bool:
    """Whether a registered model was tuned on code (its comparisons say so)."""
    source = registered_model(model)
    return bool(source is not None and source.tuned_on_code)


def family_label(model: str) -> str:
    """The family as tables show it, with the coder mark where it applies."""
    return family_of(model) + (CODER_MARK if is_coder(model) else "")


@dataclass(frozen=True)
class ScalePair:
    """Two sizes of one family on identical rows, with their random-init controls."""

    small: ProbeResults
    large: ProbeResults
    small_control: ProbeResults | None
    large_control: ProbeResults | None

    @classmethod
    def of(
        cls, small: ProbeResults, large: ProbeResults, index: ResultSet[ProbeResults]
    ) -> ScalePair:
        """The pair with each size's random-init control on its rows (the index's)."""
        return cls(small, large, index.control_of(small), index.control_of(large))

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
    # why the pair cannot be compared ("" when it can): see `pair_problem`
    problem: str = ""

    @property
    def verdict(self) -> Verdict:
        """ "not comparable" unless the smaller model beats its own controls; then holds
        when the trained gain and the gain beyond the controls both beat 0 (the one
        equivalence margin, `verdict_beats`), does not hold when either does not, and is
        inconclusive otherwise."""
        if self.problem:
            return "not comparable"
        parts = [verdict_beats(self.gain)]
        if self.beyond_control is not None:
            parts.append(verdict_beats(self.beyond_control))
        if all(p == "holds" for p in parts):
            return "holds"
        if any(p == "does not hold" for p in parts):
            return "does not hold"
        return "inconclusive"


def with_controls(results: Sequence[ProbeResults]) -> list[ScalePair]:
    """The index's scale pairs of `results` (:meth:`ResultSet.scale_pairs`: one family,
    different sizes, identical rows), each with its random-init controls."""
    index = ResultSet(results)
    return [ScalePair.of(small, large, index) for small, large in index.scale_pairs()]


def _r2_gap(y: np.ndarray, stacked: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """R² of stacked[0] minus R² of stacked[1] on each resample (paired)."""

    def stat(counts: np.ndarray) -> np.ndarray:
        r2 = r2_samples(y, stacked, counts)
        return np.asarray(r2[:, 0] - r2[:, 1])

    return stat


def pair_problem(pair: ScalePair, n_boot: int = N_BOOT) -> str:
    """Why a scale pair cannot be compared ("" when it can): a gain over a smaller model
    that reads nothing beyond its controls says nothing about scale, so the smaller
    model must beat its own name-only ridge and its random-init control first; and
    without the larger model's control the gain beyond random init is unknown."""
    small = pair.small
    names = small.baseline_prediction("name_only")
    if names is None:  # results built before baselines were stored: refit on their rows
        from core.probe.baselines import baseline_predictions

        names = baseline_predictions(
            small.entities, tuple(small.target_names), names=("name_only",)
        ).get("name_only")
    control = pair.small_control
    if names is None or control is None:
        missing = "name-only predictions" if names is None else "random-init control on its rows"
        return f"{small.model} has no {missing}"
    test = small.test_mask
    y = small.truth()[test]
    mine = _prediction(small, test)
    failed = []
    for label, other in (
        ("name-only", np.asarray(names, dtype=np.float64)[test]),
        ("random init", _prediction(control, test)),
    ):
        diff = point_and_samples(_r2_gap(y, np.stack([mine, other])), len(y), n_boot)
        if verdict_beats(diff) != "holds":
            failed.append(f"{small.model} − its {label} {diff.fmt(signed=True)}")
    if failed:
        return "the smaller model does not beat its own controls (" + "; ".join(failed) + ")"
    if pair.large_control is None:
        return f"{pair.large.model} has no random-init control on its rows"
    return ""


def _prediction(res: ProbeResults, rows: np.ndarray) -> np.ndarray:
    layer = res.best_layer()
    return np.asarray(res.predictions[res.layer_position(layer)], dtype=np.float64)[rows]


def scale_gain(pair: ScalePair, n_boot: int = N_BOOT) -> ScaleGain:
    """The trained gain, the controls' gain and their difference, all on one set of
    resamples of the shared test entities (each model at its own train-chosen layer)."""
    test = pair.large.test_mask
    y = pair.large.truth()[test]
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
        problem=pair_problem(pair, n_boot),
    )


def _start(res: ProbeResults) -> str:
    return f"`{(res.meta.start_token or '?').replace('|', chr(92) + '|')}`"


def scale_table(results: Sequence[ProbeResults], n_boot: int = N_BOOT) -> pd.DataFrame:
    """Per scale pair: the rows it is read on, the trained gain, the random-init gain,
    the gain beyond the controls (each ``point [95% interval]``) and the verdict."""
    rows = []
    for pair in with_controls(results):
        g = scale_gain(pair, n_boot)
        rows.append(
            {
                "dataset": pair.dataset,
                "family": family_label(pair.large.model),
                "larger − smaller": pair.label,
                "rows (test)": f"{len(pair.large.entities):,} ({g.n_test:,})",
                "start tokens": f"{_start(pair.large)} / {_start(pair.small)}",
                "test R² gain": g.gain.fmt(signed=True),
                "random-init gain": g.control_gain.fmt(signed=True) if g.control_gain else "",
                "gain beyond random init": (
                    g.beyond_control.fmt(signed=True) if g.beyond_control else ""
                ),
                "verdict": g.verdict + (f" ({g.problem})" if g.problem else ""),
            }
        )
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).set_index(["dataset", "family"])
