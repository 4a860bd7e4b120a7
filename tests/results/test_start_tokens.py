"""The start-token choice: a rule on training rows that a constructed table can test."""

from __future__ import annotations

import pandas as pd

from core.results.start_tokens import (
    CANDIDATES,
    MIN_GAIN,
    STUDY_DATASETS,
    choose,
    fact_table,
    study_builds,
    study_markdown,
)

MODEL = "qwen2.5-coder-0.5b"
OWN, NONE = CANDIDATES[MODEL]


def _table(own: float, other: float, test_other: float = 0.9) -> pd.DataFrame:
    rows = []
    for dataset in STUDY_DATASETS:
        rows.append(dict(model=MODEL, start=OWN, dataset=dataset, layer=3, train_loo_r2=own,
                         test_r2=0.1))  # fmt: skip
        rows.append(dict(model=MODEL, start=NONE, dataset=dataset, layer=3, train_loo_r2=other,
                         test_r2=test_other))  # fmt: skip
    return pd.DataFrame(rows)


def test_a_clear_gain_on_training_rows_changes_the_start() -> None:
    assert choose(_table(0.20, 0.20 + 2 * MIN_GAIN)) == {MODEL: NONE}


def test_ties_and_small_gains_keep_the_document_token() -> None:
    assert choose(_table(0.20, 0.20)) == {MODEL: OWN}  # tied
    assert choose(_table(0.20, 0.20 + MIN_GAIN / 2)) == {MODEL: OWN}  # within the margin
    assert choose(_table(0.30, 0.10)) == {MODEL: OWN}  # worse


def test_the_choice_never_reads_test_rows() -> None:
    # a start far better on test rows but tied on training rows is not chosen
    assert choose(_table(0.20, 0.20, test_other=0.99)) == {MODEL: OWN}


def test_every_candidate_is_built_on_one_fixed_sample() -> None:
    builds = study_builds([MODEL])
    assert {(b.start_token, b.dataset) for b in builds} == {
        (s, d) for s in CANDIDATES[MODEL] for d in STUDY_DATASETS
    }
    assert len({b.limit for b in builds}) == 1
    assert {b.dtype for b in builds} == {"bfloat16"}


def test_the_table_marks_the_choice_and_a_broken_start() -> None:
    table = _table(0.20, 0.25)
    facts = fact_table(
        {
            MODEL: {
                OWN: {"ranks": [0, 1, 0, 2, 0], "sink": [2.0] * 5},
                NONE: {"ranks": [40, 80, 12, 300, 7], "sink": [50.0] * 5},
            }
        }
    )
    assert facts.set_index("start")["broken"].to_dict() == {OWN: False, NONE: True}
    record = {"rule": "r", "limit": 600, "choice": choose(table), "table": table.to_dict(
        orient="records"), "facts": facts.to_dict(orient="records")}  # fmt: skip
    text = study_markdown(record)
    line = next(x for x in text.splitlines() if f"`{NONE}`" in x)
    assert "`<\\|endoftext\\|>`" in text  # pipes escaped inside the table
    assert "**yes**" in line and "**broken**" in line and "50×" in line
    own_line = next(x for x in text.splitlines() if "endoftext" in x)
    assert "**no sink**" in own_line
    assert "0.25 (0.90)" in line


def test_fact_checks_read_ranks_and_the_first_position(tiny) -> None:  # type: ignore[no-untyped-def]
    from core.results.start_tokens import FACTS, fact_checks

    checks = fact_checks(tiny, ["auto", "none"])
    vocab = len(tiny.tokenizer.get_vocab())
    for start in ("auto", "none"):
        assert len(checks[start]["ranks"]) == len(FACTS)
        assert all(0 <= r < vocab for r in checks[start]["ranks"])
        assert all(s > 0 for s in checks[start]["sink"])
    assert checks["auto"] != checks["none"]  # the start token changes what the model reads


def test_the_registry_starts_each_model_as_the_shipped_study_chose() -> None:
    from pathlib import Path

    from core.extract.models import MODELS
    from core.results.start_tokens import CHOICE_FILE, load_study

    record = load_study(Path(__file__).resolve().parents[2] / "cache" / "studies" / CHOICE_FILE)
    choice = dict(record["choice"])  # type: ignore[call-overload]
    assert set(choice) == set(CANDIDATES)
    for model, start in choice.items():
        assert MODELS[model].start_token == start, model
    # the rule, replayed on the stored training column, gives the stored choice
    assert choose(pd.DataFrame(record["table"])) == choice
