"""The offline gazetteer behind the live probe's truth: a name resolves to the most
populous place carrying it, countries and US states sit where their datasets put them,
and people come with WordNet's death year."""

from __future__ import annotations

import pytest

from core.data import gazetteer
from core.data.geonames import load_cities
from core.probe.metrics import haversine_km
from core.viz.containers import lands_in


def test_a_shared_name_resolves_to_its_most_populous_place() -> None:
    match = gazetteer.lookup_place("Paris")
    assert match is not None and match.place.kind == "city"
    cities = load_cities("1000")
    named = cities[cities["name"] == "Paris"]
    assert match.place.population == named["population"].max()
    assert match.place.country == "France" and match.place.label == "Paris, France"
    assert match.n_matches >= len(named) > 1
    assert f"the most populous of {match.n_matches} places called 'Paris'" in match.describe()
    assert float(haversine_km(match.place.lat, match.place.lon, 48.8566, 2.3522)) < 10


def test_case_and_spacing_do_not_matter_and_unknown_names_find_nothing() -> None:
    typed = gazetteer.lookup_place("  tOKyo ")
    assert typed is not None and typed.place.label == "Tokyo, Japan"
    assert typed.name == "  tOKyo "  # the match remembers what was typed
    assert gazetteer.lookup_place("Xyzzyville") is None
    assert gazetteer.lookup_place("   ") is None


def test_a_country_can_restrict_the_match() -> None:
    texas = gazetteer.lookup_place("Paris", country="United States")
    assert texas is not None and texas.place.label == "Paris, Texas"
    cities = load_cities("1000")
    us = cities[(cities["name"] == "Paris") & (cities["countrycode"] == "US")]
    assert texas.place.population == us["population"].max()
    # nothing of that name in the country: every place counts again
    kyoto = gazetteer.lookup_place("Kyoto", country="United States")
    assert kyoto is not None and kyoto.place.country == "Japan"


def test_alternate_names_of_big_cities_come_after_own_names() -> None:
    bombay = gazetteer.lookup_place("Bombay")
    assert bombay is not None and bombay.place.name == "Mumbai" and bombay.by_alternate_name
    assert "'Bombay' is one of its other names" in bombay.describe()
    # Delhi (11 million) is also called "New Delhi"; the city of that name still wins
    delhi = gazetteer.lookup_place("New Delhi")
    assert delhi is not None and delhi.place.name == "New Delhi" and not delhi.by_alternate_name
    bigger = load_cities("1000")
    assert bigger.loc[bigger["name"] == "Delhi", "population"].max() > delhi.place.population


@pytest.mark.parametrize(
    ("name", "kind", "container", "scope"),
    [
        ("Japan", "country", "Japan", "world"),
        ("Brazil", "country", "Brazil", "world"),
        ("Texas", "state", "Texas", "usa"),
        ("Colorado", "state", "Colorado", "usa"),
    ],
)
def test_countries_and_states_sit_inside_their_outlines(
    name: str, kind: str, container: str, scope: str
) -> None:
    match = gazetteer.lookup_place(name)
    assert match is not None and match.place.kind == kind
    assert match.place.population and match.place.population > 1e6
    assert lands_in([match.place.lat], [match.place.lon], scope)[0] == container


def test_a_county_counts_only_where_nothing_else_has_the_name() -> None:
    cook = gazetteer.lookup_place("Cook County")
    assert cook is not None and cook.place.kind == "county"
    assert cook.place.state == "Illinois"  # of the 3 Cook Counties, the most zip codes
    assert "the one with the most zip codes of" in cook.describe()
    assert lands_in([cook.place.lat], [cook.place.lon], "usa")[0] == "Illinois"


def test_people_come_with_their_wordnet_death_year() -> None:
    napoleon = gazetteer.lookup_person("Napoleon")
    assert napoleon is not None and napoleon.person.year == 1821.0
    assert napoleon.describe().startswith("WordNet: Napoleon I, died 1821")
    bach = gazetteer.lookup_person("johann sebastian bach")
    assert bach is not None and bach.person.year == 1750.0
    caesar = gazetteer.lookup_person("Julius Caesar")
    assert caesar is not None and caesar.person.year == -44.0
    assert "44 BC" in caesar.describe()
    assert gazetteer.lookup_person("Zork the Great") is None
