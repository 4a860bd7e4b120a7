"""The duplicate-name rule shared by the offline place datasets.

Entities that share a text are resolved in three steps:

1. Rank the rows of each shared text: lower ``priority`` first (e.g. a country before a
   city of the same name), then higher ``score`` (log10 population), then by name.
2. The top row keeps the bare text if it is *dominant*: it has a better priority than the
   runner-up, or a known score at least ``log10(2)`` higher (twice the population: the
   paper's rule for US places; an unknown score never dominates). Every other row of the
   group, and the top row when it is not dominant, is qualified as ``"text, qualifier"``
   (e.g. "Springfield, Illinois").
3. Any text still shared after qualification keeps only its top-ranked row.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DOMINANCE = math.log10(2.0)


def resolve_duplicates(
    frame: pd.DataFrame,
    qualifier: pd.Series,
    score: pd.Series | None = None,
    priority: pd.Series | None = None,
    label: str = "",
) -> pd.DataFrame:
    """Apply the rule above to ``frame["text"]`` (ties broken by ``source_id``); unique
    texts out."""
    work = frame.reset_index(drop=True).copy()
    n = len(work)
    work["_q"] = qualifier.reset_index(drop=True).fillna("").astype(str).to_numpy()
    work["_s"] = (
        (score.reset_index(drop=True) if score is not None else pd.Series(np.nan, index=range(n)))
        .astype(float)
        .fillna(-np.inf)
        .to_numpy()
    )
    work["_p"] = (
        (priority.reset_index(drop=True) if priority is not None else pd.Series(0, index=range(n)))
        .astype(int)
        .to_numpy()
    )
    work = work.sort_values(
        ["text", "_p", "_s", "source_id"], ascending=[True, True, False, True], kind="stable"
    )
    work = work.reset_index(drop=True)

    position = work.groupby("text", sort=False).cumcount()
    size = work.groupby("text", sort=False)["text"].transform("size")
    nxt_p = work.groupby("text", sort=False)["_p"].shift(-1)
    nxt_s = work.groupby("text", sort=False)["_s"].shift(-1)
    top = position == 0
    finite = np.isfinite(work["_s"])
    dominant = top & ((work["_p"] < nxt_p) | (finite & (work["_s"] >= nxt_s + DOMINANCE)))
    qualify = (size > 1) & ~dominant
    has_q = work["_q"].str.len() > 0
    work.loc[qualify & has_q, "text"] = (
        work.loc[qualify & has_q, "text"] + ", " + work.loc[qualify & has_q, "_q"]
    )

    shared = int((size > 1).sum())
    work = work.sort_values(["_p", "_s", "source_id"], ascending=[True, False, True], kind="stable")
    before = len(work)
    work = work.drop_duplicates("text", keep="first")
    log.info(
        "%s: %d rows shared a name; %d qualified; %d dropped as still ambiguous",
        label or "dedupe",
        shared,
        int((qualify & has_q).sum()),
        before - len(work),
    )
    return work.drop(columns=["_q", "_s", "_p"]).reset_index(drop=True)
