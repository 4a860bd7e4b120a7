"""Reading WordNet's ``data.noun`` (Debian ``wordnet-base``): synsets, lemmas, glosses.

Format (wndb(5)): ``offset lex_filenum ss_type w_cnt word lex_id ... p_cnt
ptr... | gloss``; counts are hex for words and decimal for pointers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PERSON_FILE = 18  # lexicographer file noun.person

# the closing parenthetical of a gloss, e.g. "(1769-1821)" or "(circa 370-330 BC)"
_LAST_PAREN = re.compile(r"\(([^()]*\d[^()]*)\)\s*$")
_ERA = r"(?:\s*(BC|B\.C\.|BCE|AD|A\.D\.|CE))?"
_APPROX = r"(?:circa\s+|ca\.?\s+|c\.?\s+|about\s+|around\s+)?"
_RANGE = re.compile(
    rf"^(?:AD\s+)?{_APPROX}(\d{{1,4}})\??{_ERA}\s*(?:-|–|to)\s*(?:AD\s+)?{_APPROX}(\d{{1,4}})\??{_ERA}$"
)
_DIED = re.compile(rf"^(?:died\s+(?:in\s+)?|\?\s*-\s*){_APPROX}(\d{{1,4}}){_ERA}$")
_BC = {"BC", "B.C.", "BCE"}


@dataclass(frozen=True)
class Synset:
    offset: str
    lex_file: int
    lemmas: tuple[str, ...]
    pointers: tuple[tuple[str, str], ...]  # (symbol, target offset), nouns only
    gloss: str


def read_synsets(path: Path) -> Iterator[Synset]:
    """Every synset of a WordNet data file (license header lines are skipped)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith(" "):
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            n_words = int(fields[3], 16)
            lemmas = tuple(fields[4 + 2 * i] for i in range(n_words))
            at = 4 + 2 * n_words
            n_ptrs = int(fields[at])
            pointers = tuple(
                (fields[at + 1 + 4 * i], fields[at + 2 + 4 * i])
                for i in range(n_ptrs)
                if fields[at + 3 + 4 * i] == "n"
            )
            yield Synset(fields[0], int(fields[1]), lemmas, pointers, gloss.strip())


def lemma_text(lemma: str) -> str:
    """'Johann_Sebastian_Bach' -> 'Johann Sebastian Bach' (drops adjective markers)."""
    return re.sub(r"\([a-z]+\)$", "", lemma).replace("_", " ").strip()


def death_year(gloss: str) -> float | None:
    """The death year from a gloss's closing parenthetical (BC years are negative).

    Handles "(1769-1821)", "(circa 370-330 BC)", "(14 BC - AD 33)", "(1558?-1594)" and
    "(died in 1358 BC)", "(?-30 BC)"; returns None for living people ("born in 1934", "1928-"),
    centuries and anything else.
    """
    match = _LAST_PAREN.search(gloss)
    if not match:
        return None
    content = match.group(1).strip()
    found = _RANGE.match(content)
    if found:
        born, born_era, died, died_era = found.groups()
        born_bc = born_era in _BC or (died_era in _BC and born_era is None)
        died_bc = died_era in _BC
        b = -int(born) if born_bc else int(born)
        d = -int(died) if died_bc else int(died)
        if not 0 < d - b <= 120:
            return None
        return float(d)
    found = _DIED.match(content)
    if found:
        year, era = found.groups()
        return float(-int(year) if era in _BC else int(year))
    return None
