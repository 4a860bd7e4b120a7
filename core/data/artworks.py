"""artworks: films as "<director>'s <title>" with their release year (offline).

Source: bokeh_sampledata's ``movies.db`` (17,472 films released 1940-2014, drawn from
Wikidata; CC0). The model reads "<creator>'s <title>" as in the paper (just an
apostrophe after a name ending in "s"); the creator is the first listed director.
The test split holds out whole creators, as the paper did. Popularity is
log10(1 + number of Rotten Tomatoes reviews). A (creator, title) pair listed twice
keeps its best-reviewed, then earliest, film.
"""

from __future__ import annotations

import logging
import sqlite3

import numpy as np
import pandas as pd

from core.data.frames import decade_of, finish_dataset
from core.data.prompts import ART_PROMPTS
from core.data.schema import DatasetError, EntityDataset
from core.data.sources import install_hint, package_file

log = logging.getLogger(__name__)

NAME = "artworks"
VERSION = "2"
PACKAGES = ("bokeh_sampledata",)
SOURCE = "bokeh_sampledata movies.db (Wikidata films with director and year)"
LICENCE = "CC0 (Wikidata via bokeh_sampledata)"
QUERY = """
SELECT o.ID AS id, o.Title AS title, o.Year AS year, o.Director AS director,
       o.Genre AS genre, o.Country AS film_country, t.Reviews AS reviews
FROM omdb AS o LEFT JOIN tomatoes AS t ON o.ID = t.ID
ORDER BY o.ID
"""


def possessive(creator: str) -> str:
    """The paper's possessive: "Ridley Scott's", "Coen Brothers'"."""
    return f"{creator}'" if creator.endswith("s") else f"{creator}'s"


def clean_title(title: str) -> str:
    title = title.strip().strip('"').strip()
    while title.endswith(("...", "…")):
        title = title[: -3 if title.endswith("...") else -1].rstrip()
    return title


def _read_movies() -> pd.DataFrame:
    path = package_file("bokeh_sampledata", "_data", "movies.db")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            return pd.read_sql_query(QUERY, con)
    except sqlite3.DatabaseError as exc:
        raise DatasetError(
            f"{path}: cannot read films ({exc}); reinstall: {install_hint('bokeh_sampledata')}"
        ) from exc


def build() -> EntityDataset:
    """Build the artworks table from movies.db (about 17,000 films)."""
    films = _read_movies()
    creator = films["director"].fillna("").str.split(",").str[0]
    films["creator"] = creator.astype("str").str.strip()  # .str[0] gives object dtype
    films["title"] = films["title"].fillna("").map(clean_title)
    films = films[
        (films["creator"].str.len() > 0) & (films["title"].str.len() > 1) & films["year"].notna()
    ]
    films["popularity"] = np.log10(1.0 + films["reviews"].astype(float).fillna(0.0))
    films = films.sort_values(
        ["popularity", "year", "id"], ascending=[False, True, True], kind="stable"
    )
    before = len(films)
    films = films.drop_duplicates(["creator", "title"], keep="first")
    log.info(
        "%s: %d films; %d repeated (creator, title) pairs dropped",
        NAME,
        before,
        before - len(films),
    )
    frame = pd.DataFrame(
        {
            "source_id": "movies:" + films["id"].astype(str),
            "text": [
                f"{possessive(c)} {t}"
                for c, t in zip(films["creator"], films["title"], strict=True)
            ],
            "year": films["year"].astype(float),
            "title": films["title"],
            "creator": films["creator"],
            "directors": films["director"].fillna(""),
            "genre": films["genre"].fillna(""),
            "film_country": films["film_country"].fillna(""),
            "popularity": films["popularity"],
            "entity_type": "movie",
            "source": "wikidata",
        }
    )
    frame["name"] = frame["text"]
    frame = frame.drop_duplicates("name", keep="first")
    frame["decade"] = decade_of(frame["year"])
    frame["group"] = frame["decade"].astype(str) + "s"
    return finish_dataset(
        frame,
        name=NAME,
        kind="time",
        prompts=ART_PROMPTS,
        source=SOURCE,
        licence=LICENCE,
        description=(
            'Films as "<director>\'s <title>" (target: release year; test split by director)'
        ),
        split_by="creator",
    )
