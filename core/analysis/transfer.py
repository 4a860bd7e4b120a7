"""Prompt sensitivity: a probe trained on prompt A's activations, applied to prompt B's."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from core.analysis.common import MAX_PROXIMITY_ROWS
from core.analysis.controls import ridge
from core.probe.metrics import split_metrics


def transfer_matrix(
    activations: Mapping[str, np.ndarray],
    y: np.ndarray,
    is_test: np.ndarray,
    target_names: tuple[str, ...],
    kind: str,
    layer: int,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Test-split metrics for every (train prompt, apply prompt) pair at one layer, and the
    test predictions [P, P, n_test, T] (train prompt, apply prompt, in `activations`' order;
    the test rows in entity order) that a paired bootstrap resamples.

    `activations`: prompt -> [n, d] activations of the same entities in the same order.
    Diagonal entries are the ordinary probe of each prompt.
    """
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    prompts = list(activations)
    preds = np.zeros((len(prompts), len(prompts), int(is_test.sum()), y2.shape[1]))
    rows: list[dict[str, object]] = []
    for i, train_prompt in enumerate(prompts):
        x_train = np.asarray(activations[train_prompt], dtype=np.float64)
        probe = ridge(x_train[~is_test], y2[~is_test])
        for j, apply_prompt in enumerate(prompts):
            pred = np.asarray(
                probe.predict(np.asarray(activations[apply_prompt], dtype=np.float64)[is_test])
            ).reshape(-1, y2.shape[1])
            preds[i, j] = pred
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
    return pd.DataFrame(rows), preds
