"""historical_figures: people with a death year, from WordNet and Debian calendar (offline).

Sources: the instance nouns of WordNet 3.0's noun.person file (Debian ``wordnet-base``);
the death year is read from the closing parenthetical of each gloss ("(1769-1821)",
"(circa 370-330 BC)"; BC years are negative). The name shown to the model is the
first lemma of two or three words that does not start with a title ("Johann Sebastian
Bach", "Napoleon I"), else the head lemma ("Aeschylus", "Nero"). People whose name is
shared by another entry are left out rather than guessed. To these come the people
whose death ``calendar.birthday`` (Debian ``calendar``) records ("Karl Marx died, 1883")
and whom WordNet lacks under any of its lemmas. The set is then balanced by era as the
paper did: only deaths in or after 1000 BC, and at most 350 people per death decade
(kept by a seeded hash of the name). ``source`` says which file a person comes from.

``hypernym`` is the first lemma of the synset the person is an instance of ("poet",
"general", "King of England"); for a calendar person, the first such word of their line
("..., author"), else "person". ``occupation`` is the hypernym where at least
MIN_OCCUPATION training people share it, else "other": the groups the occupation-mean
baseline averages over, each mean taken over training rows. ``era`` is "before 1500"
(death year < 1500), "1500–1800" (1500 <= year < 1800) or "after 1800" (year >= 1800).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import pandas as pd

from core.data.dated_events import read_calendar
from core.data.frames import SPLIT_SEED, TEST_FRACTION, century_label, decade_of, finish_dataset
from core.data.prompts import PERSON_PROMPTS
from core.data.schema import EntityDataset
from core.data.sources import calendar_file, wordnet_file
from core.data.splits import hash_order, random_split
from core.data.wordnet import PERSON_FILE, death_year, lemma_text, read_synsets

log = logging.getLogger(__name__)

NAME = "historical_figures"
VERSION = "3"
PACKAGES = ("wordnet", "calendar")
SOURCE = (
    "WordNet 3.0 noun.person with dated glosses (Debian wordnet-base); deaths in "
    "calendar.birthday (Debian calendar)"
)
LICENCE = (
    "WordNet 3.0 licence (Princeton University; free use with notice); calendar files: BSD licence"
)
MIN_YEAR = -1000  # the paper's era floor: deaths in or after 1000 BC
DECADE_CAP = 350  # the paper's cap: at most this many people per death decade
BALANCE_SEED = 1  # which people a full decade keeps (a seeded hash of the name)
MIN_OCCUPATION = 3  # training people an occupation needs to be its own group, else "other"
ERAS = ((1500, "before 1500"), (1800, "1500–1800"))  # (first year not in it, label)
LAST_ERA = "after 1800"
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


# "Karl Marx died, 1883", "Michelangelo Buonarroti dies in Rome, Italy, 1564",
# "Thomas Mann's Death, 1955", "Leon Trotsky assassinated, 1940"
_DEATH = re.compile(
    r"^(?P<who>.+?)(?:'s Death\b|\s+(?:dies|died|die|passed away|(?:is\s+)?assassinated)\b)"
    r"(?P<rest>.*)$"
)
# the year after a comma or in brackets: ", 1883", ", 30 BC", "(323BC)", ", 2015, author"
_DEATH_YEAR = re.compile(r"[,(]\s*(\d{1,4})\s?(BC|B\.C\.|BCE)?\s*(?=[),;]|$)")
_PARTICLES = frozenset(["the", "von", "van", "de", "da", "der", "du", "di", "la", "le"])
NAME_TITLES = TITLES | {"Chairman", "Dr", "Pope"}


def calendar_death(text: str) -> tuple[list[str], float] | None:
    """(["Karl Marx"], 1883.0) from "Karl Marx died, 1883"; None unless clean.

    The name is what precedes the verb, without brackets ("Terry Pratchett (Sir)") and
    without leading titles where two or more words remain ("Soviet President Leonid
    Brezhnev" -> "Leonid Brezhnev", but "President Garfield" stays). "A and B die" gives
    two people. Names with commas, digits or other lower-case words are refused ("Word is
    received that Perry ...", "King George VI of UK").
    """
    found = _DEATH.match(text)
    if not found:
        return None
    years = list(_DEATH_YEAR.finditer(found.group("rest")))
    if not years:
        return None
    number, era = years[-1].groups()
    if era is None and len(number) < 3:
        return None
    year = -float(number) if era else float(number)
    who = re.sub(r"\s*\([^()]*\)", "", found.group("who")).strip()
    names = []
    for part in who.split(" and "):
        words = part.split()
        if not words or re.search(r"[,;:\d\"]", part):
            return None
        if any(not w[0].isupper() and w not in _PARTICLES for w in words):
            return None
        titled = [i for i, w in enumerate(words) if w.rstrip(".") in NAME_TITLES or w in TITLES]
        if titled and len(words) - titled[-1] - 1 >= 2:
            words = words[titled[-1] + 1 :]
        if len(words) > 4:
            return None
        names.append(" ".join(words))
    return names, year


def name_key(name: str) -> str:
    """What two spellings of one name share: "Mao Tse-Tung", "Mao Tsetung" -> "maotsetung".

    Leading titles go ("Dr. Mendeleev" -> "mendeleev"), then case and everything but
    letters and digits.
    """
    words = name.split()
    while len(words) > 1 and (words[0] in NAME_TITLES or words[0].rstrip(".") in NAME_TITLES):
        words = words[1:]
    return re.sub(r"[\W_]+", "", " ".join(words).casefold())


def _calendar_people(known: Iterable[str]) -> pd.DataFrame:
    """People whose death calendar.birthday records, unless `known` has their name."""
    seen = {name_key(name) for name in known}
    rows = []
    for entry in read_calendar(calendar_file("birthday"), "birthday"):
        parsed = calendar_death(entry.text)
        if parsed is None:
            continue
        names, year = parsed
        for name in names:
            if name_key(name) in seen:
                continue
            seen.add(name_key(name))
            rows.append(
                {
                    "source_id": f"calendar.birthday:{entry.line}",
                    "text": name,
                    "year": year,
                    "hypernym": "",
                    "description": entry.text,
                    "source": "calendar",
                }
            )
    return pd.DataFrame(rows)


def era_of(year: pd.Series) -> pd.Series:
    """'before 1500' (death year < 1500), '1500–1800' (< 1800) or 'after 1800' (>= 1800)."""
    labels = pd.Series(LAST_ERA, index=year.index, dtype="str")
    for end, label in reversed(ERAS):
        labels = labels.where(year.astype(float) >= end, label)
    return labels


def occupation_of(description: str, known: set[str]) -> str:
    """The first person noun of a calendar line, the name and brackets removed
    ("..., 2015, author"), else 'person'."""
    description = re.sub(r"\([^()]*\)", " ", description)  # "(Sir)"
    for word in re.findall(r"[a-z]+", description.lower()):
        if word in known:
            return word
    return "person"


def pooled_occupation(hypernym: pd.Series, is_test: pd.Series) -> pd.Series:
    """The hypernym where MIN_OCCUPATION training rows share it, else 'other'."""
    counts = hypernym[~is_test.astype(bool)].value_counts()
    enough = hypernym.map(counts).fillna(0) >= MIN_OCCUPATION
    return hypernym.where(enough, "other").astype("str")


def balance_by_era(frame: pd.DataFrame) -> pd.DataFrame:
    """Deaths from MIN_YEAR on, at most DECADE_CAP per death decade (seeded by name)."""
    frame = frame[frame["year"] >= MIN_YEAR]
    frame = frame.iloc[hash_order(frame["name"], BALANCE_SEED)]
    decade = decade_of(frame["year"])
    return frame[decade.groupby(decade).cumcount() < DECADE_CAP].sort_index()


def build() -> EntityDataset:
    """Build the historical figures table from WordNet and calendar.birthday (~2,800 rows)."""
    synsets = list(read_synsets(wordnet_file("data.noun")))
    head_lemma = {s.offset: lemma_text(s.lemmas[0]) for s in synsets}
    # one-word, lower-case person nouns ("author", "composer"): occupations for calendar lines
    person_nouns = {
        lemma_text(lemma)
        for s in synsets
        if s.lex_file == PERSON_FILE and not any(symbol == "@i" for symbol, _ in s.pointers)
        for lemma in s.lemmas
        if lemma.isalpha() and lemma.islower()
    }
    rows = []
    dated_lemmas: set[str] = set()  # every lemma of a dated person ("Alan Mathison Turing")
    for synset in synsets:
        if synset.lex_file != PERSON_FILE:
            continue
        classes = [target for symbol, target in synset.pointers if symbol == "@i"]
        if not classes:
            continue
        year = death_year(synset.gloss)
        if year is None:
            continue
        dated_lemmas.update(lemma_text(lemma) for lemma in synset.lemmas)
        rows.append(
            {
                "source_id": f"wordnet:{synset.offset}",
                "text": display_name(synset.lemmas),
                "year": year,
                "hypernym": head_lemma.get(classes[0], ""),
                "description": synset.gloss.rsplit("(", 1)[0].strip().rstrip(";").strip(),
                "source": "wordnet",
            }
        )
    frame = pd.DataFrame(rows)
    shared = frame["text"].duplicated(keep=False)
    wordnet = frame[~shared]
    calendar = _calendar_people(dated_lemmas | set(frame["text"]))
    frame = pd.concat([wordnet, calendar], ignore_index=True)
    frame["name"] = frame["text"]
    balanced = balance_by_era(frame)
    log.info(
        "%s: %d WordNet people with a death year; %d dropped for a shared name; "
        "%d added from calendar.birthday (%d in all); %d died before %d; "
        "%d over %d per death decade; %d people",
        NAME,
        len(shared),
        int(shared.sum()),
        len(calendar),
        len(frame),
        int((frame["year"] < MIN_YEAR).sum()),
        MIN_YEAR,
        int((frame["year"] >= MIN_YEAR).sum()) - len(balanced),
        DECADE_CAP,
        len(balanced),
    )
    frame = balanced.copy()
    calendar_rows = frame["source"] == "calendar"
    frame.loc[calendar_rows, "hypernym"] = [
        occupation_of(d.replace(t, " "), person_nouns)
        for d, t in zip(
            frame.loc[calendar_rows, "description"], frame.loc[calendar_rows, "text"], strict=True
        )
    ]
    frame["hypernym"] = frame["hypernym"].where(frame["hypernym"] != "", "person")
    frame["entity_type"] = frame["hypernym"]
    # the split finalize() gives (a hash of the name), known here to count training people
    is_test = pd.Series(random_split(frame["name"], TEST_FRACTION, SPLIT_SEED), index=frame.index)
    frame["occupation"] = pooled_occupation(frame["hypernym"], is_test)
    frame["era"] = era_of(frame["year"])
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
