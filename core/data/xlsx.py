"""A minimal reader for the first sheet of an .xlsx file (no openpyxl needed).

Only what simple data sheets use: shared strings, inline strings and numbers.
Every cell comes back as text; callers convert the columns they need.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd

_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_COL = re.compile(r"^([A-Z]+)")


def _column_index(ref: str) -> int:
    match = _COL.match(ref)
    letters = match.group(1) if match else "A"
    index = 0
    for ch in letters:
        index = index * 26 + (ord(ch) - ord("A") + 1)
    return index - 1


def _text(node: ElementTree.Element | None) -> str:
    if node is None:
        return ""
    return "".join(t.text or "" for t in node.iter(f"{{{_NS['m']}}}t"))


def read_first_sheet(path: Path) -> pd.DataFrame:
    """The first worksheet as a DataFrame of strings; row 1 holds the column names."""
    with zipfile.ZipFile(path) as book:
        names = set(book.namelist())
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
            shared = [_text(si) for si in root.findall("m:si", _NS)]
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows: list[list[str]] = []
    for row in sheet.iterfind("m:sheetData/m:row", _NS):
        cells: dict[int, str] = {}
        for cell in row.findall("m:c", _NS):
            kind = cell.get("t", "n")
            value = cell.find("m:v", _NS)
            if kind == "s" and value is not None and value.text is not None:
                text = shared[int(value.text)]
            elif kind == "inlineStr":
                text = _text(cell.find("m:is", _NS))
            else:
                text = value.text if value is not None and value.text is not None else ""
            cells[_column_index(cell.get("r", "A"))] = text
        width = max(cells) + 1 if cells else 0
        rows.append([cells.get(i, "") for i in range(width)])
    if not rows:
        return pd.DataFrame()
    header = rows[0]
    body = [r + [""] * (len(header) - len(r)) for r in rows[1:]]
    return pd.DataFrame([r[: len(header)] for r in body], columns=header)
