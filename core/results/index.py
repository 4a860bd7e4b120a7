"""The index of what ships: one folder name per line in ``<cache>/<kind>/SHIPPED``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# Written by `python -m core demo`: the result folders that ship (tests and the README's
# scoreboard read these only, never whatever else a user built into the cache).
SHIPPED_INDEX = "SHIPPED"


def write_shipped_index(
    cache_root: Path, folders: Iterable[Path | None], kind: str = "results"
) -> Path:
    """Record which `kind` folders ship (one name per line): results, or the analyses
    (named by their results' keys)."""
    path = Path(cache_root) / kind / SHIPPED_INDEX
    names = sorted({Path(folder).name for folder in folders if folder is not None})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(names) + "\n")
    return path


def shipped_names(cache_root: Path, kind: str) -> set[str] | None:
    """The folder names a kind's index lists; None without an index (nothing shipped)."""
    index = Path(cache_root) / kind / SHIPPED_INDEX
    return set(index.read_text().split()) if index.is_file() else None
