"""The duplicate-name rule shared by the offline place datasets (the paper's rule).

Entities that share a text are ranked: lower ``priority`` first (a country before a city
of the same name, a city before an airport or volcano), then larger ``population``, then
``source_id``. The top row keeps the name only if it is *dominant*: a better priority
than the runner-up, or a known population at least twice the runner-up's (an unknown
population never dominates). Every other row is dropped, and the whole group when no row
dominates. Names are never qualified with their state, country or borough: a text that
names its own container would hand the probe its answer, so such texts are dropped too
(:func:`drop_self_naming`), even where that is the entity's real name.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DOMINANCE_RATIO = 2.0


def resolve_duplicates(
    frame: pd.DataFrame,
    population: pd.Series | None = None,
    priority: pd.Series | None = None,
    label: str = "",
    key: pd.Series | None = None,
) -> pd.DataFrame:
    """Apply the rule above to ``frame["text"]``; unique texts out, in ranked order.

    `key` (default: the text itself) says which texts count as one name, e.g. their
    case-folded form, so that "DuBois" and "Dubois" share the rule.
    """
    work = frame.reset_index(drop=True).copy()
    n = len(work)
    pop = (
        population.reset_index(drop=True)
        if population is not None
        else pd.Series(np.nan, index=range(n))
    )
    work["_pop"] = pop.astype(float).fillna(-np.inf).to_numpy()
    work["_p"] = (
        (priority.reset_index(drop=True) if priority is not None else pd.Series(0, index=range(n)))
        .astype(int)
        .to_numpy()
    )
    work["_key"] = (key.reset_index(drop=True) if key is not None else work["text"]).to_numpy()
    work = work.sort_values(
        ["_key", "_p", "_pop", "source_id"], ascending=[True, True, False, True], kind="stable"
    ).reset_index(drop=True)
    by_text = work.groupby("_key", sort=False)
    position = by_text.cumcount()
    size = by_text["text"].transform("size")
    next_p = by_text["_p"].shift(-1)
    next_pop = by_text["_pop"].shift(-1)
    known = np.isfinite(work["_pop"])
    # populations are counts: the ratio test is exact, with no log rounding at the boundary
    dominant = (work["_p"] < next_p) | (known & (work["_pop"] >= DOMINANCE_RATIO * next_pop))
    keep = (size == 1) | ((position == 0) & dominant)
    shared_texts = int(work.loc[size > 1, "_key"].nunique())
    kept_shared = int(((size > 1) & keep).sum())
    log.info(
        "%s: %d names shared by %d rows; %d kept by dominance, %d rows dropped",
        label or "dedupe",
        shared_texts,
        int((size > 1).sum()),
        kept_shared,
        int((~keep).sum()),
    )
    work = work[keep].sort_values(
        ["_p", "_pop", "source_id"], ascending=[True, False, True], kind="stable"
    )
    return work.drop(columns=["_pop", "_p", "_key"]).reset_index(drop=True)


def names_own_container(text: pd.Series, container: pd.Series) -> np.ndarray:
    """Whether each text contains its container's name as whole words ("Bronx Park" in the
    Bronx, "Missoula Montana Airport" in Montana)."""
    return np.array(
        [
            bool(c)
            and re.search(rf"(?<!\w){re.escape(c)}(?!\w)", t, flags=re.IGNORECASE) is not None
            for t, c in zip(text.astype(str), container.fillna("").astype(str), strict=True)
        ],
        dtype=bool,
    )


def drop_self_naming(
    frame: pd.DataFrame, container: str, container_type: str, label: str = ""
) -> pd.DataFrame:
    """Drop rows whose text names their own container (the probe's answer would be in its
    input), except the containers themselves (the row "Brooklyn" is the borough)."""
    leaks = (
        names_own_container(frame["text"], frame[container])
        & (frame["entity_type"] != container_type).to_numpy()
    )
    log.info(
        "%s: %d texts name their own %s, dropped (e.g. %s)",
        label or "dedupe",
        int(leaks.sum()),
        container,
        frame.loc[leaks, "text"].head(3).tolist(),
    )
    return frame[~leaks].reset_index(drop=True)
