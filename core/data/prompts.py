"""Named prompt prefixes per dataset family, including a seeded random-token prefix.

Every prompt but a template is a prefix: the model reads ``prompt + text``, so the last
token is the entity's own last token (the paper's convention). A template holds
``{name}`` and is read with the text in its place (`compose`), as Godey et al. (2024)
probe the question's last token.
"""

from __future__ import annotations

import random
import string

COORDS = "What are the lat/lon coordinates of "
WHERE_IS = "Where is "
WHERE_US = "Where in the United States is "
WHERE_NYC = "Where in New York City is "
WHEN_DID = "When did "
RELEASE = "When was the release date of "
PUBLICATION = "Publication date of: "

WHERE_WORLD = "Where is {name} in the world?"  # Godey et al. 2024 (a template)
NAME_SLOT = "{name}"

RANDOM_SEED = 0
RANDOM_WORDS = 10


def compose(prompt_text: str, text: str) -> str:
    """What the model reads: the template with `text` in its slot, else prefix + text."""
    if NAME_SLOT in prompt_text:
        return prompt_text.replace(NAME_SLOT, text)
    return prompt_text + text


def random_prefix(seed: int = RANDOM_SEED, n_words: int = RANDOM_WORDS) -> str:
    """A fixed string of random lowercase 'words' ending in a space.

    The paper prepended 10 random token ids drawn afresh (unseeded) per entity; here the
    control is one seeded string, so it is reproducible and tokenizer-independent.
    """
    rng = random.Random(seed)
    letters = string.ascii_lowercase
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 8))) for _ in range(n_words)]
    return " ".join(words) + " "


def _with_random(prompts: dict[str, str]) -> dict[str, str]:
    return {**prompts, "random": random_prefix()}


WORLD_PROMPTS = _with_random({"empty": "", "coords": COORDS, "where_is": WHERE_IS})
US_PROMPTS = _with_random({"empty": "", "coords": COORDS, "where_us": WHERE_US})
NYC_PROMPTS = _with_random({"empty": "", "where_is": WHERE_IS, "where_nyc": WHERE_NYC})
PERSON_PROMPTS = _with_random({"empty": "", "when": WHEN_DID})
ART_PROMPTS = _with_random({"empty": "", "release": RELEASE})
HEADLINE_PROMPTS = _with_random({"empty": "", "publication": PUBLICATION})
SPACE_PROMPTS = _with_random({"empty": "", "coords": COORDS, "where_is": WHERE_IS})
TIME_PROMPTS = _with_random({"empty": "", "when": WHEN_DID})
