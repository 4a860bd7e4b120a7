"""The paper's claims, tested on the shipped results: ``python -m core findings``.

Each claim gets, per shipped (dataset, model), a verdict that the data could have
contradicted: "holds", "does not hold", "inconclusive" (the 95% interval of its statistic
straddles the threshold, or the test cannot be trusted, with the reason) or "not tested"
(an artifact nobody shipped yet; the command that would test it). Every interval is a
paired percentile bootstrap over test entities (`core.probe.bootstrap`: seeded,
`N_BOOT` resamples, from the stored predictions): the compared predictors are scored on
the same resampled entities. The thresholds are stated with each claim.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.analysis.run import ARTIFACT, AnalysisResults, analysis_dir, analyze_command
from core.common.cache import CacheError
from core.common.config import AnalysisConfig
from core.common.depth import depth_of
from core.probe.bootstrap import (
    MARGIN,
    N_BOOT,
    Interval,
    Verdict,
    band_position,
    mean_samples,
    point_and_samples,
    r2_samples,
    resample_counts,
    verdict_above,
    verdict_beats,
    verdict_below,
    verdict_share,
)
from core.results import scale
from core.results.index import ResultSet
from core.results.probe_results import ProbeResults
from core.results.shipped import DEMO_DATASETS, _is_check_slice, shipped_names

log = logging.getLogger(__name__)

RISE = 0.05  # test R² gained from the first block to its best by mid-depth for "rises"
PLATEAU = 0.05  # at most this much more after mid-depth for "then plateaus"
LINEAR_GAP = 0.05  # MLP minus ridge test R² within ±this: "about equal"
PROMPT_DROP = 0.10  # mean own-prompt minus other-prompt test R² below this: "robust"
MIN_OWN_R2 = 0.10  # an own-prompt R² whose interval reaches below this: nothing to be robust about
CHANCE = 0.5  # proximity error of a guess (shown for reference)
VERDICTS: tuple[Verdict, ...] = (
    "holds",
    "does not hold",
    "inconclusive",
    "fragile",
    "not testable",
    "not comparable",
    "not tested",
)
CHANGES_TITLE = "Verdicts changed since the previous docs/findings.md"


@dataclass(frozen=True)
class Finding:
    dataset: str
    model: str
    verdict: Verdict
    evidence: str  # the reference numbers
    statistic: str = ""  # what the verdict is read from, with its 95% interval
    why: str = ""  # one phrase: why this verdict under the rule
    scope: str = ""  # the block family (block claim only)

    @property
    def holds(self) -> bool | None:
        """True / False for holds / does not hold; None when inconclusive or not tested."""
        return {"holds": True, "does not hold": False}.get(self.verdict)


Rule = Callable[[ProbeResults, "Context"], list[Finding]]


@dataclass(frozen=True)
class Claim:
    title: str
    rule: str
    test: Rule


@dataclass(frozen=True)
class Context:
    """What a claim may look at besides the result itself."""

    results: tuple[ProbeResults, ...]
    cache_root: Path | None
    shipped_only: bool = True  # read only the analyses `cache/analysis/SHIPPED` lists
    n_boot: int = N_BOOT
    _memo: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, compare=False)
    index: ResultSet[ProbeResults] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", ResultSet(self.results))

    def control_of(self, res: ProbeResults) -> ProbeResults | None:
        """The random-init control on exactly the probe's rows (the index's; None when
        there is none, never one on other rows)."""
        return self.index.control_of(res)

    def analysis_of(self, res: ProbeResults) -> AnalysisResults | None:
        if self.cache_root is None:
            return None
        folder = analysis_dir(self.cache_root, str(res.manifest.get("key", "")))
        listed = shipped_names(self.cache_root, ARTIFACT) if self.shipped_only else None
        if not (folder / "manifest.json").is_file() or (
            self.shipped_only and folder.name not in (listed or set())
        ):
            return None
        try:
            return AnalysisResults.load(folder)
        except CacheError as exc:
            log.warning("%s", exc)
            return None

    def baseline_prediction(self, res: ProbeResults, name: str) -> np.ndarray | None:
        """A baseline's predictions [n, T] for every entity: stored with the results when
        they carry them, else refitted here on the results' entities and split."""
        stored = getattr(res, "baseline_prediction", None)
        if callable(stored):
            value = stored(name)
            if value is not None:
                return np.asarray(value, dtype=np.float64)
        # every result on the same rows has the same entities and split: one refit for all
        meta = res.meta
        key = (f"{meta.dataset_hash}/{meta.rows_key}", name)
        if key not in self._memo:
            from core.probe.baselines import baseline_predictions

            preds = baseline_predictions(res.entities, tuple(res.target_names), names=(name,))
            if name not in preds:
                return None
            self._memo[key] = np.asarray(preds[name], dtype=np.float64)
        return self._memo[key]


# ----------------------------------------------------------------------------- helpers
def _truth(res: ProbeResults) -> tuple[np.ndarray, np.ndarray]:
    return res.truth(), res.test_mask


def _found(
    res: ProbeResults,
    verdict: Verdict,
    evidence: str,
    statistic: str = "",
    why: str = "",
    scope: str = "",
) -> list[Finding]:
    return [Finding(res.dataset, res.model, verdict, evidence, statistic, why, scope)]


def _not_tested(res: ProbeResults, evidence: str, scope: str = "") -> list[Finding]:
    return _found(res, "not tested", evidence, why=evidence, scope=scope)


def _analyze(res: ProbeResults, transfer: bool = False) -> str:
    limit = res.meta.limit
    options = AnalysisConfig(transfer_prompts=("all",) if transfer else ())
    return analyze_command(res.model, res.dataset, limit=limit, options=options)


def _r2_diff(y: np.ndarray, a: np.ndarray, b: np.ndarray, n_boot: int) -> Interval:
    """R²(a) − R²(b) on the same rows, paired (one set of resamples)."""
    stacked = np.stack([a, b])
    return point_and_samples(
        lambda c: np.diff(r2_samples(y, stacked, c)[:, ::-1], axis=1)[:, 0], len(y), n_boot
    )


def _r2_of(y: np.ndarray, pred: np.ndarray, n_boot: int) -> Interval:
    return point_and_samples(lambda c: r2_samples(y, pred, c), len(y), n_boot)


def _mean_of(values: np.ndarray, n_boot: int) -> Interval:
    """The mean of per-entity values (a paired difference) with its interval."""
    return point_and_samples(lambda c: mean_samples(values, c), len(values), n_boot)


def _why_above(name: str, diff: Interval, threshold: float = 0.0) -> str:
    where = {
        "holds": "above",
        "does not hold": "below",
        "inconclusive": "straddles",
        "not tested": "undefined",
    }[verdict_above(diff, threshold)]
    return f"{name} {diff.fmt(signed=True)} {where} {threshold:g}"


def _combine(verdicts: Sequence[Verdict]) -> Verdict:
    """All must hold; one that fails fails the claim; else inconclusive."""
    if any(v == "not tested" for v in verdicts):
        return "not tested"
    if all(v == "holds" for v in verdicts):
        return "holds"
    if any(v == "does not hold" for v in verdicts):
        return "does not hold"
    return "inconclusive"


def _keys(frame: pd.DataFrame, targets: Sequence[str]) -> pd.Series:
    """An entity's identity across builds: its name and (rounded) targets."""
    parts = [frame["name"].astype(str)] + [frame[t].round(4).astype(str) for t in targets]
    key = parts[0]
    for part in parts[1:]:
        key = key + "|" + part
    return key


def _why_beats(name: str, diff: Interval, lower: bool = False) -> str:
    """Why a "beats" difference reads as it does under :func:`verdict_beats`."""
    verdict = verdict_beats(diff, MARGIN, lower)
    inside = diff.lo >= -MARGIN and diff.hi <= MARGIN
    where = {
        "holds": "below 0" if lower else "above 0",
        "does not hold": f"inside ±{MARGIN:g} (no advantage)"
        if inside
        else ("above 0" if lower else "below 0"),
        "inconclusive": "straddles 0",
        "not tested": "undefined",
    }.get(verdict, "")
    return f"{name} {diff.fmt(signed=True)} {where}"


def _jackknife(stat: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    """`stat` with each of n entities left out in turn: [n] (chunks of rows of counts)."""
    out = []
    for start in range(0, n, 512):
        stop = min(n, start + 512)
        counts = np.ones((stop - start, n))
        counts[np.arange(stop - start), np.arange(start, stop)] = 0.0
        out.append(np.asarray(stat(counts), dtype=np.float64).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0)


def _influence(
    verdict: Verdict,
    stat: Callable[[np.ndarray], np.ndarray],
    n: int,
    judge: Callable[[np.ndarray], Verdict],
    labels: Sequence[str],
) -> tuple[Verdict, str]:
    """The influence check of a definite verdict: the test entity whose removal moves the
    statistic most is dropped and the verdict judged again (`judge(keep)`); a verdict that
    changes reads "fragile" and names the entity. Returns (verdict, note)."""
    if verdict not in ("holds", "does not hold") or n < 3:
        return verdict, ""
    full = float(np.asarray(stat(np.ones((1, n))), dtype=np.float64).reshape(-1)[0])
    moved = np.abs(_jackknife(stat, n) - full)
    if not np.isfinite(moved).any():
        return verdict, ""
    i = int(np.nanargmax(moved))
    keep = np.ones(n, dtype=bool)
    keep[i] = False
    again = judge(keep)
    name = str(labels[i]) if i < len(labels) else f"row {i}"
    if len(name) > 60:
        name = name[:57] + "..."
    if again != verdict:
        return "fragile", f"fragile: without {name!r} it reads {again}"
    return verdict, ""


def _test_names(res: ProbeResults, rows: np.ndarray | None = None) -> list[str]:
    names = res.entities["name"].astype(str).to_numpy()
    return list(names[rows] if rows is not None else names[res.entities["is_test"].to_numpy(bool)])


def _analysis_names(res: ProbeResults, targets: np.ndarray, test: np.ndarray) -> list[str]:
    """The names of an analysis's test rows (its rows are the result's first rows)."""
    n = len(targets)
    if n <= len(res.entities):
        y = res.entities[list(res.target_names)].to_numpy(dtype=np.float64)[:n]
        if np.allclose(y, np.asarray(targets, dtype=np.float64), equal_nan=True):
            return list(res.entities["name"].astype(str).to_numpy()[:n][test])
    return [f"test row {i}" for i in range(int(test.sum()))]


def _analysis_name_only(
    res: ProbeResults, targets: np.ndarray, is_test: np.ndarray
) -> np.ndarray | None:
    """The name-only ridge refitted on an analysis's rows and split (None when the rows
    are not the result's first rows)."""
    n = len(targets)
    if n > len(res.entities):
        return None
    y = res.entities[list(res.target_names)].to_numpy(dtype=np.float64)[:n]
    if not np.allclose(y, np.asarray(targets, dtype=np.float64), equal_nan=True):
        return None
    from core.probe.baselines import name_only_predictions

    texts = list(res.entities["text"].astype(str).to_numpy()[:n])
    return name_only_predictions(texts, y, np.asarray(is_test, dtype=bool), res.probe_spec())


# ------------------------------------------------------------------------------ claims
def beats_controls(res: ProbeResults, ctx: Context) -> list[Finding]:
    """Probe test R² at the train-chosen layer minus (a) the name-only ridge on the same
    test entities and (b) the random-init control at its own train-chosen layer, on the
    test entities both share (matched by name and targets); each read with the one
    equivalence margin (`MARGIN`), then the influence check."""
    layer = res.best_layer()
    y, test = _truth(res)
    probe = np.asarray(res.predictions[res.layer_position(layer)], dtype=np.float64)
    names = ctx.baseline_prediction(res, "name_only")
    control = ctx.control_of(res)
    if names is None or control is None:
        why = (
            "no name-only predictions were built"
            if names is None
            else f"random-init control {ctx.index.missing_control(res)}"
        )
        return _not_tested(res, f"test R² {res.metric_at(layer):.2f}; {why}")
    r2 = _r2_of(y[test], probe[test], ctx.n_boot)
    # the random-init control, matched on the test entities both builds hold out
    c_layer = control.best_layer()
    c_y, c_test = _truth(control)
    mine = pd.Series(np.flatnonzero(test), index=_keys(res.entities, res.target_names)[test])
    theirs = pd.Series(
        np.flatnonzero(c_test), index=_keys(control.entities, control.target_names)[c_test]
    )
    mine = mine[~mine.index.duplicated(keep=False)]
    theirs = theirs[~theirs.index.duplicated(keep=False)]
    shared = mine.index.intersection(theirs.index)
    if len(shared) < 10:
        return _not_tested(
            res, f"the random-init control shares {len(shared)} test entities with the probe"
        )
    rows, c_rows = mine[shared].to_numpy(), theirs[shared].to_numpy()
    c_pred = np.asarray(control.predictions[control.layer_position(c_layer)], dtype=np.float64)
    test_rows = np.flatnonzero(test)
    shared_at = np.isin(test_rows, rows)  # which test rows the control shares
    order = np.argsort(rows)
    rows, c_rows = rows[order], c_rows[order]

    def diffs(keep: np.ndarray) -> tuple[Interval, Interval]:
        t = test_rows[keep]
        k = np.isin(rows, t)
        return (
            _r2_diff(y[t], probe[t], names[t], ctx.n_boot),
            _r2_diff(y[rows[k]], probe[rows[k]], c_pred[c_rows[k]], ctx.n_boot),
        )

    def judge(keep: np.ndarray) -> Verdict:
        return _combine([verdict_beats(d) for d in diffs(keep)])

    vs_names, vs_random = diffs(np.ones(len(test_rows), dtype=bool))
    random_r2 = float(r2_samples(c_y[c_rows], c_pred[c_rows], np.ones((1, len(c_rows))))[0])
    n, n_c = len(res.entities), len(control.entities)
    same = n_c == n and len(shared) == int(test.sum())
    rows_note = (
        f"random init on the same {n:,} entities"
        if same
        else f"random init built on {n_c:,} of the probe's {n:,} entities: compared on the "
        f"{len(shared):,} test entities both hold out (of {int(test.sum()):,})"
    )
    verdict = judge(np.ones(len(test_rows), dtype=bool))
    # the influence check, on the difference nearer to failing (vs the names on every
    # test row; vs random init on the shared ones, the others left at weight 0)
    binding_names = vs_names.lo <= vs_random.lo
    pair = np.stack([probe[test], names[test]])
    c_full = np.zeros_like(probe[test])
    c_full[shared_at] = c_pred[c_rows]
    pair_r = np.stack([probe[test], c_full])
    weight = shared_at.astype(np.float64)

    def stat(counts: np.ndarray) -> np.ndarray:
        if binding_names:
            r = r2_samples(y[test], pair, counts)
        else:
            r = r2_samples(y[test], pair_r, counts * weight[None, :])
        return r[:, 0] - r[:, 1]

    verdict, note = _influence(verdict, stat, len(test_rows), judge, _test_names(res))
    why = "; ".join(
        _why_beats(name, diff)
        for name, diff in (("probe − name-only", vs_names), ("probe − random init", vs_random))
        if verdict in ("holds", "fragile") or verdict_beats(diff) != "holds"
    )
    return _found(
        res,
        verdict,
        f"probe {r2.fmt()} at L{layer}; name-only {res.baseline('name_only'):.2f}; "
        f"random init {random_r2:.2f} at L{c_layer} ({rows_note})",
        f"− name-only {vs_names.fmt(signed=True)}; − random init {vs_random.fmt(signed=True)}",
        "; ".join(p for p in (note, why) if p),
    )


def rises_then_plateaus(res: ProbeResults, ctx: Context) -> list[Finding]:
    """On each bootstrap resample of the test entities, the test R² curve over depth:
    rise = best by half depth − first block, later gain = best overall − best by half
    depth, later fall = best by half depth − worst after it; the share of resamples with
    rise ≥ RISE, gain ≤ PLATEAU and fall ≤ PLATEAU (a plateau is flat both ways)."""
    y, test = _truth(res)
    depth = depth_of(np.asarray(res.layers), res.n_model_layers)
    if len(depth) < 3 or not (depth <= 0.5).any():
        return _not_tested(res, "fewer than three layers, or none by half depth")
    preds = np.asarray(res.predictions, dtype=np.float64)[:, test]
    first = int(np.argmin(depth))
    early = depth <= 0.5
    late = ~early

    def parts(
        counts: np.ndarray, keep: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        yy, pp = (y[test], preds) if keep is None else (y[test][keep], preds[:, keep])
        curve = r2_samples(yy, pp, counts)  # [B, L]
        mid = curve[:, early].max(axis=1)
        fall = mid - curve[:, late].min(axis=1) if late.any() else np.zeros(len(curve))
        return mid - curve[:, first], curve.max(axis=1) - mid, fall, curve

    def share_of(keep: np.ndarray | None) -> float:
        n = int(test.sum()) if keep is None else int(keep.sum())
        rise_s, gain_s, fall_s, _ = parts(resample_counts(n, ctx.n_boot), keep)
        return float(np.mean((rise_s >= RISE) & (gain_s <= PLATEAU) & (fall_s <= PLATEAU)))

    n_test = int(test.sum())
    rise_full, gain_full, fall_full, curve_full = parts(np.ones((1, n_test)))
    rise_s, gain_s, fall_s, _ = parts(resample_counts(n_test, ctx.n_boot))
    from core.probe.bootstrap import interval

    rise, gain = interval(rise_full[0], rise_s), interval(gain_full[0], gain_s)
    fall = interval(fall_full[0], fall_s)
    share = float(np.mean((rise_s >= RISE) & (gain_s <= PLATEAU) & (fall_s <= PLATEAU)))
    verdict = verdict_share(share)

    def slack(counts: np.ndarray) -> np.ndarray:  # > 0 where every condition is met
        r, g, f, _ = parts(counts)
        return np.minimum.reduce([r - RISE, PLATEAU - g, PLATEAU - f])

    verdict, note = _influence(
        verdict, slack, n_test, lambda keep: verdict_share(share_of(keep)), _test_names(res)
    )
    c = curve_full[0]
    why = (
        f"{share:.0%} of {ctx.n_boot:,} resamples rise ≥ {RISE}, then gain ≤ {PLATEAU} "
        f"and fall ≤ {PLATEAU}"
    )
    return _found(
        res,
        verdict,
        f"first block {c[first]:.2f}, best by mid-depth {c[early].max():.2f}, "
        f"best {c.max():.2f} at depth {depth[int(np.argmax(c))]:.2f}"
        + (f", worst after mid-depth {c[late].min():.2f}" if late.any() else ""),
        f"rise {rise.fmt(signed=True)}; later gain {gain.fmt(signed=True)}; later fall "
        f"{fall.fmt(signed=True)}; {share:.0%} of resamples agree",
        "; ".join(p for p in (note, why) if p),
    )


def linear_like_mlp(res: ProbeResults, ctx: Context) -> list[Finding]:
    """MLP minus ridge test R² (both fitted on the analysis's training rows, the MLP's
    weight decay and width tuned by CV there), paired on the analysis's test entities;
    not testable until the ridge beats the name-only ridge refitted on the same rows."""
    analysis = ctx.analysis_of(res)
    if analysis is None:
        return _not_tested(res, f"not tested: `{_analyze(res)}`")
    if analysis.mlp_pred is None or analysis.ridge_pred is None or analysis.targets is None:
        return _not_tested(
            res, f"not tested: the analysis predates per-entity MLP predictions: `{_analyze(res)}`"
        )
    layers = analysis.mlp_layers
    layer = res.best_layer()
    if layer not in layers:
        layer = int(analysis.manifest.get("mlp_cv_layer", layers[-1]))
    pos = layers.index(layer)
    test = np.asarray(analysis.is_test, dtype=bool)
    targets = np.asarray(analysis.targets)
    y = targets[test]
    mlp = np.asarray(analysis.mlp_pred[pos], dtype=np.float64)[test]
    ridge = np.asarray(analysis.ridge_pred[pos], dtype=np.float64)[test]
    diff = _r2_diff(y, mlp, ridge, ctx.n_boot)
    r_ridge, r_mlp = _r2_of(y, ridge, ctx.n_boot), _r2_of(y, mlp, ctx.n_boot)
    m = analysis.manifest
    edges = [
        f"{what} at the {edge} edge of its grid"
        for what, edge in (
            ("weight decay", m.get("mlp_alpha_edge")),
            ("width", m.get("mlp_width_edge")),
        )
        if edge
    ]
    tuned = f"MLP decay {m.get('mlp_weight_decay', float('nan')):g}, width {m.get('mlp_hidden')}"
    tuned += f" ({'; '.join(edges)}*)" if edges else ""
    evidence = (
        f"ridge {r_ridge.fmt()}, MLP {r_mlp.fmt()} at L{layer}; {tuned}; "
        f"{int(test.sum()):,} test of {len(test):,} entities"
    )
    statistic = f"MLP − ridge {diff.fmt(signed=True)}"
    # the information floor: nothing to compare until the ridge reads more than the names
    names_all = _analysis_name_only(res, targets, test)
    if names_all is None:
        return _found(
            res,
            "not testable",
            evidence,
            statistic,
            "no name-only ridge on the analysis's rows to show the ridge reads anything",
        )
    names = names_all[test]
    floor = _r2_diff(y, ridge, names, ctx.n_boot)
    if r_ridge.lo <= 0 or verdict_beats(floor) != "holds":
        return _found(
            res,
            "not testable",
            evidence + f"; name-only {_r2_of(y, names, ctx.n_boot).fmt()} on the same rows",
            statistic + f"; ridge − name-only {floor.fmt(signed=True)}",
            "the ridge does not beat the name-only ridge ("
            + _why_beats("ridge − name-only", floor)
            + "): nothing to compare",
        )

    def judge(keep: np.ndarray) -> Verdict:
        return _mlp_verdict(_r2_diff(y[keep], mlp[keep], ridge[keep], ctx.n_boot), edges)[0]

    verdict, why = _mlp_verdict(diff, edges)
    stacked = np.stack([mlp, ridge])
    verdict, note = _influence(
        verdict,
        lambda c: np.diff(r2_samples(y, stacked, c)[:, ::-1], axis=1)[:, 0],
        len(y),
        judge,
        _analysis_names(res, targets, test),
    )
    return _found(
        res,
        verdict,
        evidence,
        statistic + f"; ridge − name-only {floor.fmt(signed=True)}",
        "; ".join(p for p in (note, why) if p),
    )


def _mlp_verdict(diff: Interval, edges: Sequence[str]) -> tuple[Verdict, str]:
    position = band_position(diff, LINEAR_GAP)
    verdict: Verdict
    if position == "inside":
        verdict, why = "holds", f"about equal: the interval lies inside ±{LINEAR_GAP}"
        if edges:
            verdict = "inconclusive"
            why += f", but the MLP's {' and '.join(edges)} (it may be under-tuned)"
    elif position == "above":
        verdict = "does not hold"
        why = f"MLP clearly better (> +{LINEAR_GAP}): nonlinear information"
    elif position == "below":
        verdict, why = "inconclusive", "ridge better (the MLP may be under-trained)"
    else:
        verdict, why = "inconclusive", f"the interval straddles ±{LINEAR_GAP}"
    return verdict, why


def generalises_across_blocks(res: ProbeResults, ctx: Context) -> list[Finding]:
    """Per block family: the probe's held-out proximity error (each block predicted by a
    probe fitted without it; mean over the family's block entities) minus that of the
    name-only ridge and of the training-mean constant, each fitted without the block; and
    the held-out − nominal gap on the blocks' test rows."""
    analysis = ctx.analysis_of(res)
    if analysis is None or analysis.holdout.empty:
        return _not_tested(res, f"not tested: `{_analyze(res)}`")
    if analysis.holdout_errors is None or not analysis.holdout_columns:
        return _not_tested(
            res,
            f"not tested: the analysis predates the held-out references: `{_analyze(res)}`",
        )
    kinds = list(analysis.manifest.get("holdout_error_kinds", []))
    layer = analysis.holdout_layers[0]
    out: list[Finding] = []
    for c, column in enumerate(analysis.holdout_columns):
        err = {k: np.asarray(analysis.holdout_errors[0, c, i], float) for i, k in enumerate(kinds)}
        rows = np.isfinite(err["probe"])
        if rows.sum() < 10:
            out += _not_tested(res, f"fewer than 10 block entities of {column}", column)
            continue
        probe, names, const = (err[k][rows] for k in ("probe", "name_only", "train_mean"))
        n_rows = int(rows.sum())
        vs_names = _mean_of(probe - names, ctx.n_boot)
        vs_const = _mean_of(probe - const, ctx.n_boot)
        nominal_rows = rows & np.isfinite(err["nominal"])
        gap_text = "no test rows in the blocks"
        if nominal_rows.sum() >= 2:
            gap = _mean_of(err["probe"][nominal_rows] - err["nominal"][nominal_rows], ctx.n_boot)
            gap_text = (
                f"nominal {float(err['nominal'][nominal_rows].mean()):.2f}, held-out − nominal "
                f"{gap.fmt(signed=True)} on the blocks' {int(nominal_rows.sum()):,} test rows"
            )

        def block_verdict(keep: np.ndarray, p=probe, nm=names, k=const) -> Verdict:
            return _combine(
                [
                    verdict_beats(_mean_of(p[keep] - nm[keep], ctx.n_boot), lower=True),
                    verdict_beats(_mean_of(p[keep] - k[keep], ctx.n_boot), lower=True),
                ]
            )

        verdict = _combine(
            [verdict_beats(vs_names, lower=True), verdict_beats(vs_const, lower=True)]
        )
        gaps = probe - (names if vs_names.hi >= vs_const.hi else const)

        def gap_mean(counts: np.ndarray, v: np.ndarray = gaps) -> np.ndarray:
            return mean_samples(v, counts)

        verdict, note = _influence(
            verdict,
            gap_mean,
            n_rows,
            block_verdict,
            [f"block entity {i}" for i in range(n_rows)],
        )
        reasons = [note] if note else []
        for name, diff in (("name-only", vs_names), ("train mean", vs_const)):
            v = verdict_beats(diff, lower=True)
            if verdict in ("holds", "fragile") or v != "holds":
                inside = diff.lo >= -MARGIN and diff.hi <= MARGIN
                word = {
                    "holds": "beats",
                    "does not hold": f"is no better (within ±{MARGIN:g}) than"
                    if inside
                    else "loses to",
                }.get(v, "ties with")
                reasons.append(f"{word} the {name} ({diff.fmt(signed=True)})")
        n_blocks = int((analysis.holdout["column"] == column).sum())
        out += _found(
            res,
            verdict,
            f"held-out {float(probe.mean()):.2f} vs name-only {float(names.mean()):.2f}, "
            f"train mean {float(const.mean()):.2f} (chance {CHANCE}); {gap_text}; "
            f"{n_rows:,} entities in {n_blocks} blocks, L{layer}",
            f"− name-only {vs_names.fmt(signed=True)}; − train mean {vs_const.fmt(signed=True)}",
            "held-out error " + ", ".join(reasons),
            column,
        )
    return out


def robust_to_prompts(res: ProbeResults, ctx: Context) -> list[Finding]:
    """The paper's test: the probe trained on one prompt read on every other prompt
    (the transfer matrix's off-diagonal) against the same probe on its own prompt; the
    statistic is the mean drop over the off-diagonal pairs."""
    analysis = ctx.analysis_of(res)
    command = _analyze(res, transfer=True)
    if analysis is None or analysis.transfer.empty:
        return _not_tested(res, f"not tested: no cross-prompt transfer shipped (`{command}`)")
    if analysis.transfer_pred is None or analysis.targets is None:
        return _not_tested(
            res, f"not tested: the analysis predates per-entity transfer predictions (`{command}`)"
        )
    prompts = analysis.prompts
    n_p = len(prompts)
    if n_p < 2:
        return _not_tested(res, f"not tested: one prompt (`{command}`)")
    test = np.asarray(analysis.is_test, dtype=bool)
    y = np.asarray(analysis.targets)[test]
    preds = np.asarray(analysis.transfer_pred[0], dtype=np.float64)  # [P, P, n_test, T]
    flat = preds.reshape(n_p * n_p, *preds.shape[2:])
    off = ~np.eye(n_p, dtype=bool)

    def cells(counts: np.ndarray) -> np.ndarray:
        return r2_samples(y, flat, counts).reshape(len(counts), n_p, n_p)

    def drop(counts: np.ndarray) -> np.ndarray:
        r2 = cells(counts)
        own = np.diagonal(r2, axis1=1, axis2=2)  # [B, P]
        return (own[:, :, None] - r2)[:, off].mean(axis=1)

    def own_mean(counts: np.ndarray) -> np.ndarray:
        return np.diagonal(cells(counts), axis1=1, axis2=2).mean(axis=1)

    def other_mean(counts: np.ndarray) -> np.ndarray:
        return cells(counts)[:, off].mean(axis=1)

    n = len(y)
    d = point_and_samples(drop, n, ctx.n_boot)
    own = point_and_samples(own_mean, n, ctx.n_boot)
    other = point_and_samples(other_mean, n, ctx.n_boot)
    full = cells(np.ones((1, n)))[0]
    shown = ", ".join(f"{p} {full[i, i]:.2f}" for i, p in enumerate(prompts))
    verdict: Verdict
    if own.lo < MIN_OWN_R2:
        verdict = "inconclusive"
        why = f"own-prompt R² {own.fmt()} reaches below {MIN_OWN_R2}: nothing to be robust about"
    else:
        verdict = verdict_below(d, PROMPT_DROP)
        why = {
            "holds": f"the drop's interval lies below {PROMPT_DROP}",
            "does not hold": f"the drop's interval lies above {PROMPT_DROP}",
        }.get(verdict, f"the drop's interval straddles {PROMPT_DROP}")
    if verdict in ("holds", "does not hold"):

        def judge(keep: np.ndarray) -> Verdict:
            def dropped(counts: np.ndarray) -> np.ndarray:
                full_counts = np.zeros((len(counts), n))
                full_counts[:, keep] = counts
                return drop(full_counts)

            return verdict_below(
                point_and_samples(dropped, int(keep.sum()), ctx.n_boot), PROMPT_DROP
            )

        names = _analysis_names(res, np.asarray(analysis.targets), test)
        verdict, note = _influence(verdict, drop, n, judge, names)
        why = "; ".join(p for p in (note, why) if p)
    layer = int(analysis.manifest.get("transfer_layers", [analysis.transfer["layer"].iloc[0]])[0])
    return _found(
        res,
        verdict,
        f"own prompt {own.fmt()} ({shown}); other prompts {other.fmt()}; "
        f"{n_p * (n_p - 1)} off-diagonal pairs at L{layer}, {n:,} test entities",
        f"drop {d.fmt(signed=True)}",
        why,
    )


def sharper_with_scale(res: ProbeResults, ctx: Context) -> list[Finding]:
    """Within one family only, on identical rows: the larger model's test R² minus the
    smaller's (each at its own train-chosen layer), and that gain minus the same
    difference between their random-init controls (`core.results.scale`). One finding per
    pair, reported on the larger model's row."""
    out: list[Finding] = []
    for pair in scale.with_controls(ctx.results):
        if pair.large is not res:
            continue
        g = scale.scale_gain(pair, ctx.n_boot)
        model = f"{pair.large.model} vs {pair.small.model}"
        small_r2 = pair.small.metric_at(pair.small.best_layer())
        large_r2 = res.metric_at(res.best_layer())
        evidence = (
            f"{pair.small.model} {small_r2:.2f} at L{pair.small.best_layer()}, "
            f"{res.model} {large_r2:.2f} at L{res.best_layer()}; same {len(res.entities):,} "
            f"rows ({g.n_test:,} test); {scale.family_label(res.model)}"
        )
        if g.beyond_control is None or g.control_gain is None:
            statistic = f"gain {g.gain.fmt(signed=True)}; no random-init controls on these rows"
        else:
            statistic = (
                f"gain {g.gain.fmt(signed=True)}; random-init gain "
                f"{g.control_gain.fmt(signed=True)}; beyond random init "
                f"{g.beyond_control.fmt(signed=True)}"
            )
        if g.problem:
            why = f"not comparable: {g.problem}"
            out.append(Finding(res.dataset, model, "not comparable", evidence, statistic, why))
            continue
        verdict = g.verdict
        verdict, note = _scale_influence(pair, verdict, ctx)
        why = _why_beats("gain", g.gain)
        if g.beyond_control is not None:
            why += "; " + _why_beats("beyond random init", g.beyond_control)
        why = "; ".join(p for p in (note, why) if p)
        out.append(Finding(res.dataset, model, verdict, evidence, statistic, why))
    return out


def _scale_influence(pair: scale.ScalePair, verdict: Verdict, ctx: Context) -> tuple[Verdict, str]:
    """The influence check of a scale verdict, on the trained gain."""
    y, test = _truth(pair.large)
    members = [pair.large, pair.small]
    if pair.small_control is not None and pair.large_control is not None:
        members += [pair.large_control, pair.small_control]
    stacked = np.stack(
        [np.asarray(r.predictions[r.layer_position(r.best_layer())], float)[test] for r in members]
    )
    yt = y[test]

    def gains(counts: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        yy, pp = (yt, stacked) if keep is None else (yt[keep], stacked[:, keep])
        r = r2_samples(yy, pp, counts)
        gain = r[:, 0] - r[:, 1]
        return (
            np.stack([gain, gain - (r[:, 2] - r[:, 3])], 1) if len(members) == 4 else gain[:, None]
        )

    def judge(keep: np.ndarray) -> Verdict:
        n = int(keep.sum())

        def column(k: int) -> Callable[[np.ndarray], np.ndarray]:
            return lambda c: gains(c, keep)[:, k]

        g = [
            point_and_samples(column(k), n, ctx.n_boot)
            for k in range(gains(np.ones((1, n)), keep).shape[1])
        ]
        return _combine([verdict_beats(x) for x in g])

    return _influence(verdict, lambda c: gains(c)[:, 0], len(yt), judge, _test_names(pair.large))


def _within_verdict(r2: Interval, diff: Interval) -> Verdict:
    """Holds when the within-group probe's interval lies above 0 and above its name-only
    control; does not hold when it lies below either, or within ±MARGIN of the control."""
    names = verdict_beats(diff)
    if not np.isfinite(r2.lo) or names == "not tested":
        return "not tested"
    if r2.hi < 0 or names == "does not hold":
        return "does not hold"
    if r2.lo > 0 and names == "holds":
        return "holds"
    return "inconclusive"


def places_within_groups(res: ProbeResults, ctx: Context) -> list[Finding]:
    """The within-group probe (target: value minus its group's training mean; the layer
    chosen on training rows) against 0 and against the name-only ridge on the same target
    and rows, paired; beside it the random-init control's within-group probe and the
    overall probe's between / within split."""
    from core.results.within import decomposition_of, load_within

    within = load_within(res)
    command = "python -m core.results.within (with the result's activation cache)"
    if within is None:
        return _not_tested(res, f"not built: the within-group probe needs activations: `{command}`")
    y, test = _truth(res)
    rows = within.rows & test
    z = within.offset[rows]
    probe, names = within.predictions[0][rows], within.predictions[1][rows]
    if len(z) < 10:
        return _not_tested(res, f"{len(z)} test rows in groups seen in training")

    def parts(keep: np.ndarray) -> tuple[Interval, Interval]:
        return (
            _r2_of(z[keep], probe[keep], ctx.n_boot),
            _r2_diff(z[keep], probe[keep], names[keep], ctx.n_boot),
        )

    every = np.ones(len(z), dtype=bool)
    r2, diff = parts(every)
    names_r2 = _r2_of(z, names, ctx.n_boot)
    verdict = _within_verdict(r2, diff)
    stacked = np.stack([probe, names])
    binding_zero = r2.lo <= diff.lo

    def stat(counts: np.ndarray) -> np.ndarray:
        r = r2_samples(z, stacked, counts)
        return r[:, 0] if binding_zero else r[:, 0] - r[:, 1]

    verdict, note = _influence(
        verdict,
        stat,
        len(z),
        lambda keep: _within_verdict(*parts(keep)),
        _test_names(res, np.flatnonzero(rows)),
    )
    control = ctx.control_of(res)
    c_within = load_within(control) if control is not None else None
    c_text = (
        f"random init {c_within.test_r2().fmt()} at L{c_within.layer}"
        if c_within is not None
        else "random init not built"
    )
    group = within.grouping
    split = decomposition_of(res, res.best_layer(), group, ctx.n_boot)
    split_text = ""
    if split is not None:
        share = split["group_share"]
        share_text = (
            f"{share.point:.0%} [{share.lo:.0%}, {share.hi:.0%}]"
            if np.isfinite(share.point)
            else "n/a (R² ≤ 0)"
        )
        split_text = (
            f"; overall probe at L{res.best_layer()}: R²_within {split['r2_within'].fmt()}, "
            f"within-{group} correlation {split['within_corr'].fmt()}, {group}s explain "
            f"{share_text} of its R²"
        )
    why = (
        f"within-{group} R² {r2.fmt()}"
        + (" above 0" if r2.lo > 0 else (" below 0" if r2.hi < 0 else " straddles 0"))
        + "; "
        + _why_beats("− name-only", diff)
    )
    return _found(
        res,
        verdict,
        f"within-{group} probe {r2.fmt()} at L{within.layer}; name-only {names_r2.fmt()}; "
        f"{c_text}; {within.n_groups} {group}s, {len(z):,} test rows" + split_text,
        f"within-{group} R² {r2.fmt()}; − name-only {diff.fmt(signed=True)}",
        "; ".join(p for p in (note, why) if p),
    )


# Said once, under every claim's rule in docs/findings.md.
BEATS = (
    f"“A beats B” holds when the 95% interval of A − B lies above 0 and not wholly inside "
    f"±{MARGIN} (the one equivalence margin), and does not hold when it lies below 0 or "
    f"wholly inside ±{MARGIN} (no advantage)"
)
INFLUENCE = (
    "every holds / does not hold is checked by dropping the test entity that moves its "
    "statistic most and judging again: a verdict that changes reads fragile, naming it"
)

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "The probe beats the name-only and random-init controls",
        "the probe's test R² (layer chosen on training rows) beats the character n-gram "
        "ridge on the names and the same architecture with random weights (at its own "
        "train-chosen layer, on the test entities both hold out); holds when both beat, "
        "does not hold when either does not",
        beats_controls,
    ),
    Claim(
        "Quality rises to mid-depth, then plateaus",
        f"on each bootstrap resample of the test entities, test R² rises at least {RISE} "
        f"from the first block to its best by half depth, then neither gains more than "
        f"{PLATEAU} nor falls more than {PLATEAU} below that best at any later layer; holds "
        "when at least 95% of the resamples agree, does not hold when at most 5% do",
        rises_then_plateaus,
    ),
    Claim(
        "A linear probe does about as well as an MLP",
        f"not testable until the ridge's test R² lies above 0 and beats the name-only ridge "
        f"refitted on the analysis's rows; then MLP (weight decay and width tuned by CV on "
        f"training rows until inside their grids) minus ridge test R²: holds when its 95% "
        f"interval lies inside ±{LINEAR_GAP}; does not hold when it lies above "
        f"+{LINEAR_GAP} (nonlinear information); ridge clearly better (below "
        f"−{LINEAR_GAP}) or an MLP tuned at a grid edge reads inconclusive",
        linear_like_mlp,
    ),
    Claim(
        "The representation generalises across held-out blocks",
        "per block family, the probe's held-out proximity error (each block predicted by a "
        "probe fitted without it) against that of the name-only ridge and of the "
        "training-mean constant, each fitted without the block and ranked against the same "
        "predictions: holds when it beats both (lower error), does not hold when it does "
        "not beat either; the held-out − nominal gap is reported beside it",
        generalises_across_blocks,
    ),
    Claim(
        "The representation is robust to the prompt",
        f"the probe trained on one prompt read on each other prompt (the transfer matrix's "
        f"off-diagonal) against the same probe on its own prompt: holds when the 95% "
        f"interval of the mean drop lies below {PROMPT_DROP}, does not hold when above; "
        f"inconclusive when it straddles {PROMPT_DROP} or when the own-prompt R²'s interval "
        f"reaches below {MIN_OWN_R2}",
        robust_to_prompts,
    ),
    Claim(
        "A bigger model of the same family represents space and time better",
        "within one family only, on identical rows, and only when the smaller model beats "
        "its own name-only and random-init controls (else not comparable, with the "
        "reason): the larger model's test R² beats the smaller's (each at the layer its "
        "training rows choose), and that gain beats the same difference between their "
        "random-init controls; holds when both beat, does not hold when either does not",
        sharper_with_scale,
    ),
    Claim(
        "The model places entities within their group",
        "the within-group probe (target: the entity's value minus its group's training "
        "mean — country, state or borough; era for people and events, decade for films — "
        "groups with enough training rows, the ridge and layer choice of the probes) on "
        "test rows of groups seen in training: holds when its test R²'s 95% interval lies "
        "above 0 and it beats its name-only control on the same target and rows; does not "
        "hold when the interval lies below 0 or it does not beat the control; the overall "
        "probe's within-group R², correlation and the share of its R² the groups explain "
        "are shown beside it",
        places_within_groups,
    ),
)


def findings(
    results: Sequence[ProbeResults], cache_root: Path | None = None, n_boot: int = N_BOOT
) -> dict[str, list[Finding]]:
    """Claim title -> findings per shipped trained (dataset, model) (per block family for
    the block claim)."""
    ctx = Context(tuple(results), cache_root, n_boot=n_boot)
    probes = [
        r
        for r in results
        if not r.meta.random_init
        and not _is_check_slice(r)
        and r.prompt == "empty"
        and r.probe_target == "latlon"
    ]
    order = {d: i for i, d in enumerate(DEMO_DATASETS)}
    probes.sort(key=lambda r: (order.get(r.dataset, len(order)), r.dataset, r.model))
    out: dict[str, list[Finding]] = {}
    for claim in CLAIMS:
        out[claim.title] = [f for r in probes for f in claim.test(r, ctx)]
    return out


# ------------------------------------------------------------------------------ markdown
PreviousKey = tuple[str, str, str, str]  # claim title, dataset, model, scope


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def previous_verdicts(text: str) -> dict[PreviousKey, str]:
    """(claim, dataset, model, block family) -> verdict, read from a findings file's
    tables; its own changes section, when present, gives back the verdicts it compared
    with ("" for a row that was not listed), so a rewrite keeps reporting what changed
    since that earlier file rather than since itself."""
    verdicts: dict[PreviousKey, str] = {}
    carried: dict[PreviousKey, str] = {}
    title, header = "", None
    for line in text.splitlines():
        if line.startswith("## "):
            title, header = line[3:].strip(), None
            continue
        if not line.startswith("|"):
            header = None if not line.strip() else header
            continue
        cells = _cells(line)
        if header is None:
            header = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        row = dict(zip(header, cells, strict=False))
        scope = row.get("blocks", "")
        if title == CHANGES_TITLE:
            before = row.get("before", "")
            key = (row.get("claim", ""), row.get("dataset", ""), row.get("model", ""), scope)
            carried[key] = "" if before in ("—", "-") else before
        elif "verdict" in row:
            verdicts[(title, row.get("dataset", ""), row.get("model", ""), scope)] = row["verdict"]
    verdicts.update(carried)
    return verdicts


def _changes(found: Mapping[str, list[Finding]], previous: Mapping[PreviousKey, str]) -> list[str]:
    rows = []
    for title, items in found.items():
        for f in items:
            key = (title, f.dataset, f.model, f.scope)
            before = previous.get(key)
            if before is None and f.scope:
                before = previous.get((title, f.dataset, f.model, ""))  # once pooled
            before = before or ""
            if before == f.verdict:
                continue
            reason = f.why or f.evidence
            rows.append(
                f"| {title} | {f.dataset} | {f.model} | {f.scope} | {before or '—'} | "
                f"{f.verdict} | {reason} |"
            )
    lines = ["", f"## {CHANGES_TITLE}", ""]
    if not rows:
        return [*lines, "No verdict changed."]
    return [
        *lines,
        "Each row: the verdict the earlier file gave (— where it listed no such row), the "
        "verdict now, and why under the rule now (most rules changed with issue 23: every "
        "verdict is now read from a 95% paired-bootstrap interval and can fail).",
        "",
        "| claim | dataset | model | blocks | before | now | why |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]


def findings_markdown(
    found: dict[str, list[Finding]], previous: Mapping[PreviousKey, str] | None = None
) -> str:
    """docs/findings.md: a section per claim, a row per (dataset, model) (per block family
    for the block claim); given the `previous` verdicts (:func:`previous_verdicts` of the
    file being replaced), a closing section lists the verdicts that changed and why."""
    lines = [
        "# Findings",
        "",
        "Generated by `python -m core findings --write docs/findings.md` from the shipped",
        "results (`cache/results/SHIPPED`); a test keeps it in step, so do not edit it by",
        "hand. Each of the paper's claims is tested on each shipped model and dataset with",
        "the rule under its title. A verdict reads holds, does not hold, inconclusive (the",
        f"95% interval, a paired bootstrap of {N_BOOT:,} seeded resamples of the test",
        "entities, straddles the threshold) or not tested. Read it beside the scoreboard in",
        "the README.",
        "",
        f"Throughout: {BEATS}; {INFLUENCE}.",
    ]
    rules = {claim.title: claim.rule for claim in CLAIMS}
    for title, rows in found.items():
        counts = {v: sum(f.verdict == v for f in rows) for v in VERDICTS}
        scoped = any(f.scope for f in rows)
        head = ["dataset", "model", *(["blocks"] if scoped else []), "verdict"]
        head += ["statistic [95% interval]", "reference numbers"]
        lines += [
            "",
            f"## {title}",
            "",
            f"Rule: {rules.get(title, '')}. "
            + ", ".join(f"{v} {counts[v]}" for v in VERDICTS if counts[v])
            + f" (of {len(rows)}).",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for f in rows:
            cells = [f.dataset, f.model, *([f.scope] if scoped else []), f.verdict]
            cells += [f.statistic, f.evidence]
            lines.append("| " + " | ".join(re.sub(r"\|", "/", c) for c in cells) + " |")
    if previous is not None:
        lines += _changes(found, previous)
    return "\n".join(lines) + "\n"
