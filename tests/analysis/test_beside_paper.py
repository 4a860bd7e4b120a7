"""The Research page's lines that set our analyses beside the paper's Llama-2-7B tables."""

from __future__ import annotations

import pandas as pd

from core.analysis import beside_paper
from core.analysis.run import AnalysisResults


def analysis(**tables: pd.DataFrame) -> AnalysisResults:
    empty = pd.DataFrame()
    return AnalysisResults(
        controls=tables.get("controls", empty),
        holdout=tables.get("holdout", empty),
        heldout_pred=None,  # type: ignore[arg-type]
        neurons=empty,
        neuron_acts=None,  # type: ignore[arg-type]
        transfer=tables.get("transfer", empty),
    )


def test_linear_vs_mlp_sets_ours_beside_the_papers() -> None:
    controls = pd.DataFrame(
        [
            {"layer": 3, "split": "test", "control": "probe", "r2": 0.41},
            {"layer": 3, "split": "test", "control": "mlp", "r2": 0.44},
            {"layer": 2, "split": "test", "control": "mlp", "r2": 0.9},
        ]
    )
    line = beside_paper.linear_vs_mlp(analysis(controls=controls), "world_places", 3)
    assert line == ("Test R², linear → MLP: here 0.41 → 0.44 at layer 3; paper 0.881 → 0.897.")
    assert beside_paper.linear_vs_mlp(analysis(controls=controls), "dated_events", 3) is None


def test_holdout_means_over_the_column_blocks() -> None:
    holdout = pd.DataFrame(
        {
            "column": ["century", "century", "entity_type"],
            "nominal_proximity": [0.1, 0.3, 0.2],
            "heldout_proximity": [0.2, 0.4, 0.5],
        }
    )
    a = analysis(holdout=holdout)
    line = beside_paper.holdout(a, "historical_figures", "century", by_type=False)
    assert line is not None and "here 0.200 → 0.300 over 2 blocks" in line
    assert "paper 0.129 → 0.133" in line
    typed = beside_paper.holdout(a, "historical_figures", "entity_type", by_type=True)
    assert typed is not None and "paper 0.164 → 0.168" in typed


def test_prompt_transfer_splits_same_and_other_prompts() -> None:
    transfer = pd.DataFrame(
        {
            "train_prompt": ["a", "a", "b", "b"],
            "apply_prompt": ["a", "b", "a", "b"],
            "r2": [0.6, 0.2, 0.3, 0.4],
        }
    )
    line = beside_paper.prompt_transfer(analysis(transfer=transfer), "nyc_places")
    assert line == "Test R², same prompt → another prompt: here 0.50 → 0.25; paper 0.213 → 0.073."
