"""Read a generated continuation: which place (country, state, borough) or year it names."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

# Other ways a continuation names a place whose dataset name differs.
ALIASES: dict[str, tuple[str, ...]] = {
    "United States": ("USA", "U.S.", "U.S.A.", "United States of America"),
    "United Kingdom": ("UK", "U.K.", "Britain", "Great Britain", "England", "Scotland", "Wales"),
    "The Netherlands": ("Netherlands", "Holland"),
    "Czechia": ("Czech Republic",),
    "Ivory Coast": ("Côte d'Ivoire", "Cote d'Ivoire"),
    "Democratic Republic of the Congo": ("DR Congo", "DRC", "Congo-Kinshasa"),
    "Republic of the Congo": ("Congo-Brazzaville",),
    "Palestinian Territory": ("Palestine",),
    "Myanmar": ("Burma",),
    "Bronx": ("The Bronx",),
}

CONTINENTS = ("Africa", "Antarctica", "Asia", "Europe", "North America", "Oceania", "South America")
_YEAR = re.compile(r"(?<![\d.])(\d{1,4})(?!\d)(?:\s*(BCE|BC|B\.C\.|AD|CE))?")


class PlaceReader:
    """Finds the first of a set of place names a text mentions (whole words, any case)."""

    def __init__(self, names: Iterable[str]) -> None:
        spellings: dict[str, str] = {}
        for name in sorted({str(n) for n in names if isinstance(n, str) and n}):
            spellings[name.lower()] = name
            for alias in ALIASES.get(name, ()):
                spellings.setdefault(alias.lower(), name)
        self.names = sorted(set(spellings.values()))
        # longest spellings first, so "South Korea" wins over "Korea"
        ordered = sorted(spellings, key=len, reverse=True)
        self._pattern = re.compile(
            r"(?<!\w)(" + "|".join(re.escape(s) for s in ordered) + r")(?!\w)", re.IGNORECASE
        )
        self._spellings = spellings

    def read(self, text: str) -> str | None:
        match = self._pattern.search(text)
        return self._spellings[match.group(1).lower()] if match else None


class ContinentReader:
    """The continent a world-places answer points at: the one it names outright ("... the
    country of South America"), else that of the country it names."""

    def __init__(self, entities: pd.DataFrame) -> None:
        grouped = entities.groupby("country")["continent"]
        self._of_country = grouped.agg(lambda s: s.mode().iloc[0]).to_dict()
        self._named = PlaceReader(CONTINENTS)

    def read(self, text: str, country: str | None) -> str | None:
        return self._named.read(text) or (self._of_country.get(country) if country else None)


def read_year(text: str) -> float | None:
    """The first year a continuation names (a 3-4 digit number, or any with BC/AD), BC
    years negative; None if it names none."""
    for match in _YEAR.finditer(text):
        digits, era = match.group(1), (match.group(2) or "").upper()
        if len(digits) < 3 and not era:
            continue
        year = float(digits)
        return -year if era.startswith("B") else year
    return None


def place_column(frame: pd.DataFrame, reference_column: str | None) -> str | None:
    """The column whose values a place continuation is read against (country, state,
    borough): the dataset's reference column if it has one."""
    for column in (reference_column, "borough", "state", "country", "group"):
        if column and column in frame and frame[column].nunique() > 1:
            return column
    return None
