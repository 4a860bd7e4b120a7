"""Content hashes: the only place that turns data into a cache-key digest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal objects hash equally."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def sha256_file(path: Path, chunk_bytes: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def sha256_frame(frame: pd.DataFrame) -> str:
    """Hash a table by its columns, dtypes and values (row order matters)."""
    digest = hashlib.sha256()
    digest.update(canonical_json([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest.update(np.ascontiguousarray(hashed).tobytes())
    return digest.hexdigest()
