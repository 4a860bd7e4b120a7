"""Prompt sensitivity: a probe trained on prompt A's activations, applied to prompt B's."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from core.analysis.common import MAX_PROXIMITY_ROWS
from core.analysis.controls import ridge
from core.probe.metrics import split_metrics


def cross_prompt_transfer(
    activations: Mapping[str, np.ndarray],
    y: np.ndarray,
    is_test: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
    layer: int,
) -> pd.DataFrame:
    """Test-split metrics for every (train prompt, apply prompt) pair at one layer.

    `activations`: prompt -> [n, d] activations of the same entities in the same order.
    Diagonal entries are the ordinary probe of each prompt.
    """
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    rows: list[dict[str, object]] = []
    for train_prompt, x_train in activations.items():
        probe = ridge(np.asarray(x_train, dtype=np.float64)[~is_test], y2[~is_test])
        for apply_prompt, x_apply in activations.items():
            pred = np.asarray(
                probe.predict(np.asarray(x_apply, dtype=np.float64)[is_test])
            ).reshape(-1, y2.shape[1])
            m = split_metrics(y2[is_test], pred, target_names, kind, MAX_PROXIMITY_ROWS)
            rows.append(
                {
                    "layer": layer,
                    "train_prompt": train_prompt,
                    "apply_prompt": apply_prompt,
                    "r2": m["r2"],
                    "proximity_error": m["proximity_error"],
                }
            )
    return pd.DataFrame(rows)
