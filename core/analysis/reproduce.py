"""How close a rerun of an analysis on another machine must come to the shipped one.

The tolerance is :mod:`core.results.reproduce`'s, stated once; the MLP probe's rows and
predictions are held to its looser `MLP_TOLERANCE` (a nonconvex fit amplifies last-bit
differences), and per-entity proximity errors to the rank tolerance (a near-tie that
swaps moves one entity's error by one step of 1/n).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.analysis.run import ARRAYS, OPTIONAL_ARRAYS, TABLES, AnalysisResults
from core.results.reproduce import (
    MLP_TOLERANCE,
    compare_arrays,
    compare_frames,
    compare_r2,
)

RANK_ARRAYS = ("holdout_errors",)
MLP_ARRAYS = ("mlp_pred",)


def _split_mlp(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    mlp = frame["control"] == "mlp"
    return frame[~mlp].reset_index(drop=True), frame[mlp].reset_index(drop=True)


def compare_analyses(rebuilt: AnalysisResults, shipped: AnalysisResults) -> list[str]:
    """Everything a rerun elsewhere must reproduce; [] when it does, else what differs."""
    problems: list[str] = []
    for table in TABLES:
        new, old = getattr(rebuilt, table), getattr(shipped, table)
        if table == "controls" and "control" in old:
            (new_rest, new_mlp), (old_rest, old_mlp) = _split_mlp(new), _split_mlp(old)
            problems += compare_frames(new_rest, old_rest, table)
            problems += compare_frames(new_mlp, old_mlp, "controls (mlp)", MLP_TOLERANCE)
        else:
            problems += compare_frames(new, old, table)
    for array in ARRAYS + OPTIONAL_ARRAYS:
        new, old = getattr(rebuilt, array), getattr(shipped, array)
        if new is None and old is None:
            continue
        if new is None or old is None:
            problems.append(f"{array}: present in only one of the two")
        elif array in MLP_ARRAYS and shipped.targets is not None:
            problems += compare_r2(new, old, np.asarray(shipped.targets), array)
        elif array in RANK_ARRAYS:
            problems += compare_arrays(new, old, array, kind="rank")
        else:
            problems += compare_arrays(new, old, array)
    return problems
