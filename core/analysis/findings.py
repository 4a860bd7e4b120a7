"""The paper's claims, tested on the shipped results: ``python -m core findings``.

Each claim gets, per shipped (dataset, model), whether it holds, with the numbers. The
thresholds are stated with the claim; a claim that needs an artifact nobody shipped yet
(an analysis, results under other prompts) says "not tested" and the command that
would test it, rather than guessing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.analysis.run import ARTIFACT, AnalysisResults, analysis_dir, analyze_command
from core.common.cache import CacheError
from core.results.probe_results import ProbeResults
from core.results.shipped import DEMO_DATASETS, _is_check_slice, shipped_names

log = logging.getLogger(__name__)

RISE = 0.05  # test R² gained from the first block to mid-depth for "rises"
PLATEAU = 0.05  # at most this much more after mid-depth for "then plateaus"
LINEAR_GAP = 0.05  # an MLP probe beating the ridge by less than this: "linear ≈ MLP"
PROMPT_SPREAD = 0.10  # best-layer test R² across prompts within this: "robust to prompts"
CHANCE = 0.5  # proximity error of a guess; held-out blocks below it generalise


@dataclass(frozen=True)
class Finding:
    dataset: str
    model: str
    holds: bool | None  # None: not tested
    evidence: str


@dataclass(frozen=True)
class Claim:
    title: str
    rule: str
    test: Callable[[ProbeResults, Context], tuple[bool | None, str]]


@dataclass(frozen=True)
class Context:
    """What a claim may look at besides the result itself."""

    results: tuple[ProbeResults, ...]
    cache_root: Path | None
    shipped_only: bool = True  # read only the analyses `cache/analysis/SHIPPED` lists

    def control_of(self, res: ProbeResults) -> ProbeResults | None:
        return next(
            (
                r
                for r in self.results
                if r.manifest.get("spec", {}).get("random_init")
                and (r.model, r.dataset) == (res.model, res.dataset)
            ),
            None,
        )

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


def _depth_curve(res: ProbeResults) -> pd.Series:
    """Test R² by normalised depth (layer + 1) / number of layers."""
    test = res.metrics[res.metrics["split"] == "test"].sort_values("layer")
    depth = (test["layer"].to_numpy(float) + 1.0) / float(res.n_model_layers)
    return pd.Series(test["r2"].to_numpy(float), index=depth)


def beats_controls(res: ProbeResults, ctx: Context) -> tuple[bool | None, str]:
    layer = res.best_layer()
    r2 = res.metric_at(layer)
    names = res.baseline("name_only")
    control = ctx.control_of(res)
    random = control.metric_at(control.best_layer()) if control is not None else float("nan")
    if np.isnan(names) or np.isnan(random):
        return None, f"test R² {r2:.2f}; a baseline was not built"
    holds = bool(r2 > names and r2 > random)
    return holds, f"{r2:.2f} at L{layer} vs {names:.2f} (names only), {random:.2f} (random init)"


def rises_then_plateaus(res: ProbeResults, ctx: Context) -> tuple[bool | None, str]:
    curve = _depth_curve(res)
    if len(curve) < 3:
        return None, "fewer than three layers"
    first = float(curve.iloc[0])
    mid = float(curve[curve.index <= 0.5].max())
    top = float(curve.max())
    holds = bool(mid - first >= RISE and top - mid <= PLATEAU)
    top_depth = float(curve.idxmax())
    return holds, (
        f"first block {first:.2f}, best by mid-depth {mid:.2f}, "
        f"best {top:.2f} at depth {top_depth:.2f}"
    )


def linear_like_mlp(res: ProbeResults, ctx: Context) -> tuple[bool | None, str]:
    analysis = ctx.analysis_of(res)
    if analysis is None or "control" not in analysis.controls:
        return None, f"not tested: `{_analyze(res)}`"
    c = analysis.controls
    test = c[c["split"] == "test"]
    layer = res.best_layer()
    linear = test[(test["control"] == "probe") & (test["layer"] == layer)]["r2"]
    mlp = test[(test["control"] == "mlp") & (test["layer"] == layer)]["r2"]
    if linear.empty or mlp.empty:
        return None, f"not tested at L{layer}: `{_analyze(res)}`"
    gap = float(mlp.iloc[0]) - float(linear.iloc[0])
    return bool(gap < LINEAR_GAP), (
        f"ridge {float(linear.iloc[0]):.2f}, MLP {float(mlp.iloc[0]):.2f} at L{layer}"
    )


def generalises_across_blocks(res: ProbeResults, ctx: Context) -> tuple[bool | None, str]:
    analysis = ctx.analysis_of(res)
    if analysis is None or analysis.holdout.empty:
        return None, f"not tested: `{_analyze(res)}`"
    table = analysis.holdout
    held = float(table["heldout_proximity"].mean())
    nominal = float(table["nominal_proximity"].mean())
    share = float((table["heldout_proximity"] < CHANCE).mean())
    return bool(share > 0.5), (
        f"held-out proximity error {held:.2f} (nominal {nominal:.2f}); "
        f"{share:.0%} of {len(table)} blocks below chance"
    )


def robust_to_prompts(res: ProbeResults, ctx: Context) -> tuple[bool | None, str]:
    analysis = ctx.analysis_of(res)
    if analysis is not None and len(analysis.transfer):
        # every prompt's own probe at the analysis's layer (the matrix's diagonal), and
        # how the main prompt's probe reads the others
        t = analysis.transfer
        own = t[t["train_prompt"] == t["apply_prompt"]].set_index("train_prompt")["r2"]
        main = str(analysis.manifest.get("prompts", ["empty"])[0])
        away = t[(t["train_prompt"] == main) & (t["apply_prompt"] != main)]["r2"]
        spread = float(own.max() - own.min())
        shown = ", ".join(f"{p} {v:.2f}" for p, v in sorted(own.items()))
        return bool(spread <= PROMPT_SPREAD), (
            f"own-prompt test R² at L{int(t['layer'].iloc[0])}: {shown}; the {main} probe on "
            f"the others {float(away.mean()):.2f} (mean, {analysis.n_entities:,} entities)"
        )
    same = [
        r
        for r in ctx.results
        if (r.model, r.dataset) == (res.model, res.dataset)
        and not r.manifest.get("spec", {}).get("random_init")
    ]
    by_prompt = {r.prompt: r.metric_at(r.best_layer()) for r in same}
    if len(by_prompt) < 2:
        return None, f"not tested: one prompt shipped (`{_analyze(res)} --transfer-prompts all`)"
    spread = max(by_prompt.values()) - min(by_prompt.values())
    shown = ", ".join(f"{p} {v:.2f}" for p, v in sorted(by_prompt.items()))
    return bool(spread <= PROMPT_SPREAD), f"best-layer test R²: {shown}"


def _analyze(res: ProbeResults) -> str:
    return analyze_command(res.model, res.dataset, limit=res.manifest.get("spec", {}).get("limit"))


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "The probe beats the name-only and random-init controls",
        "test R² at the layer chosen on training rows above both the character n-gram ridge "
        "on the names and the same architecture with random weights",
        beats_controls,
    ),
    Claim(
        "Quality rises to mid-depth, then plateaus",
        f"test R² gains at least {RISE} from the first block to its best by half depth, and "
        f"gains at most {PLATEAU} after it",
        rises_then_plateaus,
    ),
    Claim(
        "A linear probe does about as well as an MLP",
        f"the MLP probe's test R² is less than {LINEAR_GAP} above the ridge's",
        linear_like_mlp,
    ),
    Claim(
        "The representation generalises across held-out blocks",
        f"most held-out blocks keep a proximity error below chance ({CHANCE})",
        generalises_across_blocks,
    ),
    Claim(
        "The representation is robust to the prompt",
        f"test R² of each prompt's own probe (the cross-prompt transfer matrix's diagonal, "
        f"at the analysis's layer; else each prompt's shipped best layer) varies by at most "
        f"{PROMPT_SPREAD} across prompts",
        robust_to_prompts,
    ),
)


def findings(
    results: Sequence[ProbeResults], cache_root: Path | None = None
) -> dict[str, list[Finding]]:
    """Claim title -> one finding per shipped trained (dataset, model)."""
    ctx = Context(tuple(results), cache_root)
    probes = [
        r
        for r in results
        if not r.manifest.get("spec", {}).get("random_init")
        and not _is_check_slice(r)
        and r.prompt == "empty"
        and r.probe_target == "latlon"
    ]
    order = {d: i for i, d in enumerate(DEMO_DATASETS)}
    probes.sort(key=lambda r: (order.get(r.dataset, len(order)), r.dataset, r.model))
    out: dict[str, list[Finding]] = {}
    for claim in CLAIMS:
        out[claim.title] = [Finding(r.dataset, r.model, *claim.test(r, ctx)) for r in probes]
    return out


def findings_markdown(found: dict[str, list[Finding]]) -> str:
    """docs/findings.md: a section per claim, a row per (dataset, model)."""
    word = {True: "holds", False: "does not hold", None: "not tested"}
    lines = [
        "# Findings",
        "",
        "Generated by `python -m core findings --write docs/findings.md` from the shipped",
        "results (`cache/results/SHIPPED`); a test keeps it in step, so do not edit it by",
        "hand. Each of the paper's claims is tested on each shipped model and dataset with",
        "the rule under its title. Read it beside the scoreboard in the README.",
    ]
    rules = {claim.title: claim.rule for claim in CLAIMS}
    for title, rows in found.items():
        tested = [f for f in rows if f.holds is not None]
        held = sum(bool(f.holds) for f in tested)
        lines += [
            "",
            f"## {title}",
            "",
            f"Rule: {rules[title]}. Holds for {held} of the {len(tested)} tested "
            f"({len(rows)} in all).",
            "",
            "| dataset | model | verdict | numbers |",
            "|---|---|---|---|",
        ]
        lines += [f"| {f.dataset} | {f.model} | {word[f.holds]} | {f.evidence} |" for f in rows]
    return "\n".join(lines) + "\n"
