"""The steering protocol's fixed choices, shared by the run (`evaluate`) and its report."""

from __future__ import annotations

import pandas as pd

PROTOCOL = "preregistered-v1"  # what a run's manifest says when it follows the rule above
HEADLINE_STRENGTH = 1.0
RULE = (
    "Pre-registered: the layer chosen by training leave-one-out R² (among the layers a "
    "push can reach the answer from: all but the last block), at strength 1 (where that "
    "layer's probe reads the target), on test entities only, seeds pooled; chance is the "
    "same push toward a shuffled target, scored against the entity's own target; the "
    "verdict reads the 95% bootstrap interval (over entities) of steered minus chance."
)


def metric_of(examples: pd.DataFrame | pd.Index) -> str:
    """The success column the headline reads: the continent for world places (the exact
    country is rarely named), else `moved`."""
    columns = examples.columns if isinstance(examples, pd.DataFrame) else examples
    return "moved_continent" if "moved_continent" in columns else "moved"
