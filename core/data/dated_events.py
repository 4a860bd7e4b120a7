"""dated_events: one-line historical events with their year, from Debian calendar files.

Source: the English event files of Debian's ``calendar`` package (``calendar.history``,
``.music``, ``.computer``, ``.eu``, ``.belgium``, ``.debian``): lines such as
"01/12<TAB>Batman the TV series debuts on ABC, 1966". The year is the line's closing
year ("1966", "753 BC", "44BC", "323 B.C."; AD years need 3-4 digits; BC years are
negative; events before 1000 BC, such as Troy and "Earth created", are left out). The
model reads the event without its date prefix and without that year ("Batman the TV
series debuts on ABC"); a line whose year is not at its end ("..., 1958. Van Allen Belt
discovered"), or whose text still contains the year's number, is left out. Birthdays
(``calendar.birthday``, used by ``historical_figures``), holidays, religious calendars,
FreeBSD developers' birthdays and non-English files are not used. An event text listed
twice keeps its first line (files in the order above).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.data.frames import century_label, decade_of, finish_dataset
from core.data.prompts import TIME_PROMPTS
from core.data.schema import EntityDataset
from core.data.sources import calendar_file

log = logging.getLogger(__name__)

NAME = "dated_events"
VERSION = "1"
PACKAGES = ("calendar",)
SOURCE = "Debian calendar files: history, music, computer, eu, belgium, debian"
LICENCE = "BSD licence (calendar files of 4.4BSD/FreeBSD via Debian bsdmainutils)"
EVENT_FILES = ("history", "music", "computer", "eu", "belgium", "debian")
MIN_YEAR = -1000  # as historical_figures; drops "Earth created at 6:30 AM, 4004BC" and Troy
MIN_WORDS = 2  # "Tet Offensive", "Nylon patented"

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
# "01/12", "Jan 12", "Dec  1", "12 Jan", "Apr" (month only), "05/FriLast"
_DATE = re.compile(rf"^(?:\d{{1,2}}/\w+|{_MONTH}(?:\s+\d{{1,2}})?|\d{{1,2}}\s+{_MONTH})\*?$")
_BC = r"(?:BC|B\.C\.|BCE|B\.C\.E\.)"
# the closing year: ", 1966", " in 1827", " (1966)", ", 753 BC", ", 44BC", ", AD 1000"
_TRAILING_YEAR = re.compile(
    rf"^(?P<text>.*?)(?:\s*,\s*|\s+in\s+|\s+|\s*\(\s*)"
    rf"(?:(?P<bc>\d{{1,4}})\s?{_BC}|(?:AD\s+|A\.D\.\s+)?(?P<ad>\d{{3,4}})(?:\s+(?:AD|A\.D\.|CE))?)"
    r"\s*\)?\s*\.?\s*$"
)


@dataclass(frozen=True)
class CalendarLine:
    """One entry of a calendar file: its date prefix and text (continuations joined)."""

    source: str  # the file's suffix: "history", "music", ...
    line: int  # 1-based line number of the entry's first line
    date: str
    text: str


def read_calendar(path: Path, source: str) -> Iterator[CalendarLine]:
    """Every dated entry of a calendar file; tab-indented lines continue the previous one.

    Comments (``/* ... */``), preprocessor lines (``#include``), ``LANG=`` settings and
    lines without a recognised date prefix are skipped.
    """
    entry: list[str] = []
    start, date = 0, ""
    in_comment = False

    def flush() -> Iterator[CalendarLine]:
        if entry:
            text = " ".join(part.strip() for part in entry).replace("``", '"')
            text = text.replace("''", '"')
            yield CalendarLine(source, start, date, re.sub(r"\s+", " ", text).strip())

    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n")
            if in_comment:
                in_comment = "*/" not in line
                continue
            if line.lstrip().startswith("/*"):
                yield from flush()
                entry = []
                in_comment = "*/" not in line
                continue
            if line[:1] in (" ", "\t") and line.strip():
                if entry:
                    entry.append(line)
                continue
            yield from flush()
            entry = []
            head, tab, rest = line.partition("\t")
            if not tab or not _DATE.match(head.strip()) or not rest.strip():
                continue
            start, date, entry = number, head.strip(), [rest]
    yield from flush()


def split_year(text: str) -> tuple[str, float] | None:
    """("Batman the TV series debuts on ABC", 1966.0) from "... on ABC, 1966".

    None when the line does not end with a year, or when the year's number is still
    in the remaining text (then the text would give its own answer away).
    """
    found = _TRAILING_YEAR.match(text)
    if not found:
        return None
    rest = found.group("text").strip().rstrip(",;:-–(").strip()
    if found.group("bc"):
        number = int(found.group("bc"))
        year = -number
    else:
        number = int(found.group("ad"))
        year = number
    if number == 0 or year > 2100:
        return None
    if re.search(rf"(?<!\d)0*{number}(?!\d)", rest):
        return None
    if rest.count("(") != rest.count(")") or rest.count('"') % 2:
        return None
    return rest, float(year)


def build() -> EntityDataset:
    """Build the dated events table from the Debian calendar files (about 1,300 rows)."""
    rows, entries = [], 0
    for source in EVENT_FILES:
        for entry in read_calendar(calendar_file(source), source):
            entries += 1
            parsed = split_year(entry.text)
            if parsed is None or len(parsed[0].split()) < MIN_WORDS or parsed[1] < MIN_YEAR:
                continue
            rows.append(
                {
                    "source_id": f"calendar.{entry.source}:{entry.line}",
                    "text": parsed[0],
                    "year": parsed[1],
                    "calendar_date": entry.date,
                    "source": entry.source,
                    "entity_type": "event",
                }
            )
    frame = pd.DataFrame(rows)
    frame = frame.drop_duplicates("text", keep="first").copy()
    log.info(
        "%s: %d calendar entries; %d end with a year that leaves a clean text of %d+ words "
        "(from %d on); %d repeated texts dropped; %d events",
        NAME,
        entries,
        len(rows),
        MIN_WORDS,
        MIN_YEAR,
        len(rows) - len(frame),
        len(frame),
    )
    frame["name"] = frame["text"]
    frame["decade"] = decade_of(frame["year"])
    frame["century"] = century_label(frame["year"])
    frame["group"] = frame["decade"].astype(str) + "s"
    return finish_dataset(
        frame,
        name=NAME,
        kind="time",
        prompts=TIME_PROMPTS,
        source=SOURCE,
        licence=LICENCE,
        description="One-line dated events from Debian calendar files (target: event year)",
    )
