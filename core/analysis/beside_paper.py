"""One line per Research section: our number beside the paper's Llama-2-7B figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.analysis.run import AnalysisResults
from core.results.published import (
    PAPER_BLOCK_HOLDOUT_7B,
    PAPER_MLP_7B,
    PAPER_PROMPT_TRANSFER_7B,
    PAPER_TYPE_HOLDOUT_7B,
)

# What differs, said once under every comparison.
DIFFERS = (
    "The paper's figure is Llama-2-7B at a fixed layer 20 of 32, on its own entities with "
    "its main prompt; here a small quantised model, this project's entities and prompt, "
    "at the layer chosen on training rows."
)


def _r2(controls: pd.DataFrame, control: str, layer: int) -> float:
    rows = controls[
        (controls["split"] == "test")
        & (controls["control"] == control)
        & (controls["layer"] == layer)
    ]
    return float(rows["r2"].iloc[0]) if len(rows) else float("nan")


def linear_vs_mlp(analysis: AnalysisResults, dataset: str, layer: int) -> str | None:
    paper = PAPER_MLP_7B.get(dataset)
    ours = (_r2(analysis.controls, "probe", layer), _r2(analysis.controls, "mlp", layer))
    if paper is None or np.isnan(ours[1]):
        return None
    return (
        f"Test R², linear → MLP: here {ours[0]:.2f} → {ours[1]:.2f} at layer {layer}; "
        f"paper {paper[0]:.3f} → {paper[1]:.3f}."
    )


def holdout(analysis: AnalysisResults, dataset: str, column: str, by_type: bool) -> str | None:
    """Mean nominal → held-out proximity error over the blocks of `column`."""
    paper = (PAPER_TYPE_HOLDOUT_7B if by_type else PAPER_BLOCK_HOLDOUT_7B).get(dataset)
    table = analysis.holdout
    if paper is None or table.empty or "column" not in table:
        return None
    rows = table[table["column"] == column]
    if rows.empty:
        return None
    nominal = float(rows["nominal_proximity"].mean())
    held = float(rows["heldout_proximity"].mean())
    what = "entity-type" if by_type else "block"
    return (
        f"{what.capitalize()} hold-out, proximity error nominal → held out (random 0.5): here "
        f"{nominal:.3f} → {held:.3f} over {len(rows)} blocks of {column}; "
        f"paper {paper[0]:.3f} → {paper[1]:.3f}."
    )


def prompt_transfer(analysis: AnalysisResults, dataset: str) -> str | None:
    paper = PAPER_PROMPT_TRANSFER_7B.get(dataset)
    table = analysis.transfer
    if paper is None or table.empty or not {"train_prompt", "apply_prompt", "r2"} <= set(table):
        return None
    same = table[table["train_prompt"] == table["apply_prompt"]]["r2"].mean()
    other = table[table["train_prompt"] != table["apply_prompt"]]["r2"].mean()
    return (
        f"Test R², same prompt → another prompt: here {same:.2f} → {other:.2f}; "
        f"paper {paper[0]:.3f} → {paper[1]:.3f}."
    )
