"""Generated blocks in Markdown files: the text between two marker comments.

A block opens with ``<!-- NAME:start (COMMAND) -->`` and closes with
``<!-- NAME:end -->``; COMMAND is the one that regenerates it, so a reader of the raw
file knows how the numbers were made.
"""

from __future__ import annotations

from pathlib import Path


def splice(text: str, start: str, end: str, body: str) -> str:
    """`text` with what lies between the markers `start` and `end` replaced by `body`
    (on lines of its own); the caller checks both markers are there."""
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    return f"{head}{start}\n{body}\n{end}{tail}"


def markers(name: str, command: str) -> tuple[str, str]:
    return f"<!-- {name}:start ({command}) -->", f"<!-- {name}:end -->"


def read_block(path: Path, name: str) -> str | None:
    """The block's body as the file holds it; None without its markers."""
    text = Path(path).read_text()
    opening = f"<!-- {name}:start"
    if opening not in text or f"<!-- {name}:end -->" not in text:
        return None
    rest = text.split(opening, 1)[1].split("-->", 1)[1]
    return rest.split(f"<!-- {name}:end -->", 1)[0].strip("\n")


def write_block(path: Path, name: str, command: str, body: str) -> None:
    """Replace the block's body (a ValueError naming the file when it has no markers)."""
    text = Path(path).read_text()
    start, end = markers(name, command)
    opening = f"<!-- {name}:start"
    if opening not in text or end not in text:
        raise ValueError(f"{path}: no {start} ... {end} markers")
    head, rest = text.split(opening, 1)
    old_start = opening + rest.split("-->", 1)[0] + "-->"  # its command may read otherwise
    Path(path).write_text(splice(text.replace(old_start, start, 1), start, end, body))
