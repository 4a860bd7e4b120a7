"""The paper's own linear-probe figures, for comparison beside the shipped results.

Gurnee & Tegmark (2023), "Language Models Represent Space and Time": test R² of the
ridge probe on Llama-2 models, as printed (to three decimals) by the authors'
notebook ``paper_results/nonlinearity.ipynb`` (cells 10 and 12, the linear-vs-MLP table)
in github.com/wesg52/world-models. These are facts quoted with their source, not data
derived here. What differs from the shipped results, so a reader compares like with like:

- layer: one fixed middle layer per model (below), not the best layer;
- prompts: the paper's main prompt per dataset (below), not the empty prompt;
- entities: the paper's own entity sets, not the offline datasets built here;
- R² for places is the mean of the latitude and longitude R², as here.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "wesg52/world-models, paper_results/nonlinearity.ipynb (linear probe, test split)"

# The paper's prompt per dataset for this table (its prompt names).
PROMPTS: dict[str, str] = {
    "world_places": "coords",
    "us_places": "coords",
    "nyc_places": "where_nyc",
    "historical_figures": "when",
    "artworks": "release",
    "headlines": "when_w_period",
}


@dataclass(frozen=True)
class PaperRow:
    model: str
    params_billion: float
    layer: int  # block index the probe reads (0-based, as in the paper's code)
    n_layers: int
    test_r2: dict[str, float]


PAPER_ROWS: tuple[PaperRow, ...] = (
    PaperRow(
        "Llama-2-7b",
        7.0,
        20,
        32,
        {
            "world_places": 0.881,
            "us_places": 0.799,
            "nyc_places": 0.219,
            "historical_figures": 0.785,
            "artworks": 0.788,
            "headlines": 0.564,
        },
    ),
    PaperRow(
        "Llama-2-13b",
        13.0,
        24,
        40,
        {
            "world_places": 0.896,
            "us_places": 0.825,
            "nyc_places": 0.237,
            "historical_figures": 0.804,
            "artworks": 0.806,
            "headlines": 0.645,
        },
    ),
    PaperRow(
        "Llama-2-70b",
        70.0,
        48,
        80,
        {
            "world_places": 0.911,
            "us_places": 0.864,
            "nyc_places": 0.359,
            "historical_figures": 0.835,
            "artworks": 0.885,
            "headlines": 0.746,
        },
    ),
)


def paper_scoreboard_rows() -> list[dict[str, str]]:
    """Scoreboard rows in the shipped rows' columns, with the published baselines."""
    random_init = _published("Llama-2-7B, random init")
    names = _published("TF-IDF of the names alone")
    rows = []
    for row in PAPER_ROWS:
        for dataset, r2 in row.test_r2.items():
            is_7b = row.model == "Llama-2-7b"
            rows.append(
                {
                    "dataset": dataset,
                    "model": f"{row.model} (paper)",
                    "layer": f"L{row.layer}/{row.n_layers}, fixed",
                    "test R²": f"{r2:.3f}",  # as printed
                    "name-only R²": f"{names[dataset]:.3f}" if dataset in names else "",
                    "random-init R²": (
                        f"{random_init[dataset]:.3f}" if is_7b and dataset in random_init else ""
                    ),
                }
            )
    return rows


def _published(arm: str) -> dict[str, float]:
    return next((b.test_r2 for b in PUBLISHED_BASELINES if b.arm == arm), {})


@dataclass(frozen=True)
class PublishedBaseline:
    """A published control or baseline: what a probe must beat, as its authors printed it."""

    arm: str  # what was probed
    what_it_controls: str
    source: str
    test_r2: dict[str, float]  # dataset -> test R² (places: mean of lat and lon)


REPLICATION = (
    "YarinBeni/HUJI-THESIS--YARIN, v_1/src/world_models/results/RESULTS.md "
    "(best-layer test R², the paper's CSVs and split, empty prompt)"
)
STATIC = "Barenholtz, arXiv 2603.04317 (elanbarenholtz/static-embeddings-space-time)"

# Published numbers only; the shipped results' own controls are computed here.
PUBLISHED_BASELINES: tuple[PublishedBaseline, ...] = (
    PublishedBaseline(
        "Llama-2-7B (replication)",
        "the paper's number, reproduced independently at the best layer",
        REPLICATION,
        {
            "world_places": 0.859,
            "us_places": 0.788,
            "nyc_places": 0.249,
            "historical_figures": 0.784,
            "artworks": 0.770,
            "headlines": 0.592,
        },
    ),
    PublishedBaseline(
        "Llama-2-7B, random init",
        "architecture and tokens without learned weights",
        REPLICATION,
        {
            "world_places": 0.298,
            "us_places": 0.297,
            "nyc_places": 0.070,
            "historical_figures": 0.281,
            "artworks": 0.046,
            "headlines": 0.260,
        },
    ),
    PublishedBaseline(
        "TF-IDF of the names alone",
        "what the spelling of the name gives, with no language model",
        REPLICATION,
        {
            "world_places": 0.642,
            "us_places": 0.536,
            "nyc_places": 0.389,
            "historical_figures": 0.645,
            "artworks": 0.116,
            "headlines": 0.448,
        },
    ),
    PublishedBaseline(
        "fastText word vectors", "a static embedding, no context", STATIC, {"world_places": 0.59}
    ),
    PublishedBaseline(
        "Word2Vec word vectors", "a static embedding, no context", STATIC, {"world_places": 0.56}
    ),
    PublishedBaseline(
        "GloVe word vectors", "a static embedding, no context", STATIC, {"world_places": 0.50}
    ),
)


# The paper's analysis tables for Llama-2-7B (layer 20 of 32), by the shipped datasets'
# names; "headlines" is the paper's NYT set. Sources, as printed by the authors' notebooks
# in wesg52/world-models/paper_results: nonlinearity.ipynb (the LaTeX table),
# main.ipynb cells 44-47 (block hold-out) and 36-39 (entity-type hold-out), prompts.ipynb
# cells 50-53 (prompt transfer). Hold-outs: test proximity error, nominal -> held out.
ANALYSIS_SOURCE = "wesg52/world-models paper_results (Llama-2-7B, layer 20 of 32)"
PAPER_MLP_7B: dict[str, tuple[float, float]] = {  # (linear, MLP) test R²
    "world_places": (0.881, 0.897),
    "us_places": (0.799, 0.819),
    "nyc_places": (0.219, 0.204),
    "historical_figures": (0.785, 0.775),
    "artworks": (0.788, 0.746),
    "headlines": (0.564, 0.467),
}
PAPER_BLOCK_HOLDOUT_7B: dict[str, tuple[float, float]] = {  # country/state/borough/century/...
    "world_places": (0.071, 0.170),
    "us_places": (0.144, 0.192),
    "nyc_places": (0.331, 0.473),
    "historical_figures": (0.129, 0.133),
    "artworks": (0.147, 0.158),
    "headlines": (0.258, 0.264),
}
PAPER_TYPE_HOLDOUT_7B: dict[str, tuple[float, float]] = {  # entity / facility type, occupation
    "world_places": (0.120, 0.151),
    "us_places": (0.206, 0.262),
    "nyc_places": (0.313, 0.367),
    "historical_figures": (0.164, 0.168),
    "artworks": (0.224, 0.305),
    "headlines": (0.199, 0.289),
}
PAPER_PROMPT_TRANSFER_7B: dict[str, tuple[float, float]] = {  # test R², same -> other prompt
    "world_places": (0.820, 0.781),
    "us_places": (0.753, 0.573),
    "nyc_places": (0.213, 0.073),
    "historical_figures": (0.749, 0.673),
    "artworks": (0.736, 0.697),
    "headlines": (0.583, -0.271),
}
