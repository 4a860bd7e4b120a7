"""Per-column, per-block digests of a dataset table, to say where two builds differ.

``python -m tests.support.fingerprint`` rewrites ``tests/data/pinned/fingerprints.json``
from the datasets built on this machine; do that only when a builder changes on purpose.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data.schema import EntityDataset

BLOCK_ROWS = 1000
PINNED = Path(__file__).resolve().parents[1] / "data" / "pinned" / "fingerprints.json"


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]


def fingerprint(dataset: EntityDataset) -> dict[str, Any]:
    """The content hash, row count and, per column, its dtype and block digests."""
    frame = dataset.frame
    columns: dict[str, Any] = {}
    for column in frame.columns:
        hashed = pd.util.hash_pandas_object(frame[column], index=False).to_numpy()
        columns[str(column)] = {
            "dtype": str(frame[column].dtype),
            "blocks": [
                _digest(hashed[i : i + BLOCK_ROWS]) for i in range(0, len(frame), BLOCK_ROWS)
            ],
        }
    return {"content_hash": dataset.content_hash, "rows": len(frame), "columns": columns}


def differences(dataset: EntityDataset, pinned: dict[str, Any]) -> list[str]:
    """Where `dataset` differs from its pinned fingerprint: column, rows and sample values."""
    now = fingerprint(dataset)
    if now["content_hash"] == pinned["content_hash"]:
        return []
    found = []
    if now["rows"] != pinned["rows"]:
        found.append(f"{now['rows']} rows built, {pinned['rows']} pinned")
    for column in sorted(set(now["columns"]) | set(pinned["columns"])):
        mine, theirs = now["columns"].get(column), pinned["columns"].get(column)
        if mine is None or theirs is None:
            found.append(f"column {column!r} is {'missing' if mine is None else 'new'}")
            continue
        if mine["dtype"] != theirs["dtype"]:
            found.append(f"column {column!r}: dtype {mine['dtype']}, pinned {theirs['dtype']}")
        for block, (a, b) in enumerate(zip(mine["blocks"], theirs["blocks"], strict=False)):
            if a != b:
                start = block * BLOCK_ROWS
                rows = dataset.frame.iloc[start : start + BLOCK_ROWS]
                sample = rows[["name", column]].head(3).to_dict("records")
                found.append(
                    f"column {column!r}, rows {start}-{start + len(rows) - 1} differ "
                    f"(built here, first rows: {sample})"
                )
    return found or ["content hash differs (prompts or dataset metadata)"]


def main() -> None:
    from core.data.registry import load_dataset
    from tests.data.conftest import OFFLINE

    pins = {name: fingerprint(load_dataset(name)) for name in OFFLINE}
    PINNED.parent.mkdir(parents=True, exist_ok=True)
    PINNED.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINNED}: " + ", ".join(f"{n} {p['content_hash'][:12]}" for n, p in pins.items()))


if __name__ == "__main__":
    main()
