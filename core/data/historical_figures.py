"""historical_figures: people with a death year, from WordNet (offline).

Source: the instance nouns of WordNet 3.0's noun.person file (Debian ``wordnet-base``);
the death year is read from the closing parenthetical of each gloss ("(1769-1821)",
"(circa 370-330 BC)"; BC years are negative). The name shown to the model is the
first lemma of two or three words that does not start with a title ("Johann Sebastian
Bach", "Napoleon I"), else the head lemma ("Aeschylus", "Nero"). People whose name is shared by
another entry are left out rather than guessed. Occupation is the first lemma of the
synset the person is an instance of.
"""

from __future__ import annotations

import logging

import pandas as pd

from core.data.frames import century_label, decade_of, finish_dataset
from core.data.prompts import PERSON_PROMPTS
from core.data.schema import EntityDataset
from core.data.sources import wordnet_file
from core.data.wordnet import PERSON_FILE, death_year, lemma_text, read_synsets

log = logging.getLogger(__name__)

NAME = "historical_figures"
VERSION = "1"
PACKAGES = ("wordnet",)
SOURCE = "WordNet 3.0 noun.person with dated glosses (Debian wordnet-base)"
LICENCE = "WordNet 3.0 licence (Princeton University; free use with notice)"
TITLES = frozenset(
    [
        "President",
        "King",
        "Queen",
        "Saint",
        "St.",
        "Sir",
        "Dame",
        "Lord",
        "Lady",
        "Mrs.",
        "Mr.",
        "Dr.",
        "Emperor",
        "Empress",
        "Pope",
        "Prince",
        "Princess",
        "General",
        "Czar",
        "Tsar",
        "Baron",
        "Duke",
        "Earl",
        "Count",
        "Mother",
        "Father",
        "Brother",
        "Sister",
    ]
)


def display_name(lemmas: tuple[str, ...]) -> str:
    """First lemma of 2-3 words not starting with a title, else the head lemma."""
    for lemma in lemmas:
        words = lemma_text(lemma).split()
        if 2 <= len(words) <= 3 and words[0] not in TITLES:
            return " ".join(words)
    return lemma_text(lemmas[0])


def build() -> EntityDataset:
    """Build the historical figures table from WordNet's data.noun (about 2,700 rows)."""
    synsets = list(read_synsets(wordnet_file("data.noun")))
    head_lemma = {s.offset: lemma_text(s.lemmas[0]) for s in synsets}
    rows = []
    for synset in synsets:
        if synset.lex_file != PERSON_FILE:
            continue
        classes = [target for symbol, target in synset.pointers if symbol == "@i"]
        if not classes:
            continue
        year = death_year(synset.gloss)
        if year is None:
            continue
        rows.append(
            {
                "source_id": f"wordnet:{synset.offset}",
                "text": display_name(synset.lemmas),
                "year": year,
                "occupation": head_lemma.get(classes[0], ""),
                "description": synset.gloss.rsplit("(", 1)[0].strip().rstrip(";").strip(),
            }
        )
    frame = pd.DataFrame(rows)
    shared = frame["text"].duplicated(keep=False)
    log.info(
        "%s: %d people with a death year; %d dropped for a shared name",
        NAME,
        len(frame),
        int(shared.sum()),
    )
    frame = frame[~shared].copy()
    frame["name"] = frame["text"]
    frame["entity_type"] = frame["occupation"]
    frame["decade"] = decade_of(frame["year"])
    frame["century"] = century_label(frame["year"])
    frame["group"] = frame["century"]
    return finish_dataset(
        frame,
        name=NAME,
        kind="time",
        prompts=PERSON_PROMPTS,
        source=SOURCE,
        licence=LICENCE,
        description="People with a known death year (target: death year; BC negative)",
    )
