"""The paper's own linear-probe figures, for comparison beside the shipped results.

Gurnee & Tegmark (2023), "Language Models Represent Space and Time": test R² of the
ridge probe on Llama-2 models, as printed (to three decimals) by the authors'
notebook ``paper_results/nonlinearity.ipynb`` (cells 16-17, the linear-vs-MLP table)
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
    """Scoreboard rows (model, dataset, value) in the same format as the shipped ones."""
    return [
        {
            "model": f"{row.model} (paper)",
            "dataset": dataset,
            "value": f"{r2:.3f} (L{row.layer}/{row.n_layers}, fixed)",  # as printed
        }
        for row in PAPER_ROWS
        for dataset, r2 in row.test_r2.items()
    ]
