"""URL query state: parsing, fallbacks with notes, and round trips."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import pytest

from core.ui import view_state as vs


class FakeOptions:
    """Two models; world_places has results for both, years only for one."""

    def models(self) -> Sequence[str]:
        return ["smollm2-135m", "gemma3-270m", "smollm2-135m@random"]

    def datasets(self, model: str) -> Sequence[str]:
        if model == "gemma3-270m":
            return ["world_places"]
        return ["world_places", "historical_figures", "us_places"]

    def prompts(self, model: str, dataset: str) -> Sequence[str]:
        return ["empty", "coords"] if dataset == "world_places" else ["empty"]

    def layers(self, model: str, dataset: str, prompt: str) -> Sequence[int]:
        if dataset == "us_places":
            return []  # registered, no results yet
        return list(range(18)) if model == "gemma3-270m" else list(range(30))

    def metrics(self, model: str, dataset: str, prompt: str) -> pd.DataFrame | None:
        # layer 12 has the best training LOO R²; test rows peak elsewhere and are ignored
        layers = self.layers(model, dataset, prompt)
        train = [0.9 if v == 12 else 0.5 for v in layers]
        test = [0.99 if v == 3 else 0.1 for v in layers]
        return pd.DataFrame(
            {
                "layer": [*layers, *layers],
                "split": ["train"] * len(layers) + ["test"] * len(layers),
                "loo_r2": [*train, *[float("nan")] * len(layers)],
                "r2": [*train, *test],
            }
        )

    def groups(self, model: str, dataset: str, prompt: str) -> Sequence[str]:
        return (
            ["group", "continent", "country"] if dataset == "world_places" else ["group", "decade"]
        )

    def compare_models(self, dataset: str, prompt: str) -> Sequence[str]:
        return ["smollm2-135m", "gemma3-270m"]


OPTS = FakeOptions()


def resolve(query: Mapping[str, object]) -> vs.Resolution:
    return vs.resolve(vs.read_query(query), OPTS)


def test_defaults_without_query() -> None:
    res = resolve({})
    assert res.notes == []
    s = res.state
    assert (s.model, s.dataset, s.prompt, s.layer, s.split) == (
        "smollm2-135m",
        "world_places",
        "empty",
        12,
        "test",
    )
    assert not s.segments and not s.presentation and s.names == ()


def test_full_round_trip() -> None:
    state = vs.ViewState(
        model="gemma3-270m",
        dataset="world_places",
        prompt="coords",
        layer=17,
        split="all",
        color="country",
        segments=True,
        presentation=True,
        residuals_by="century",
        compare=("gemma3-270m", "smollm2-135m"),
        compare_metric="proximity_error",
        names=("Kyoto", "Lake Titicaca"),
        points="all",
        compare_left="gemma3-270m",
        compare_right="smollm2-135m",
        compare_depth=0.45,
    )
    query = vs.to_query(state)
    assert (
        query["model"] == "gemma3-270m"
        and query["seg"] == "1"
        and query["names"] == "Kyoto\nLake Titicaca"
    )
    assert (query["left"], query["right"], query["depth"]) == (
        "gemma3-270m",
        "smollm2-135m",
        "0.45",
    )
    again = vs.resolve(vs.read_query(query), OPTS)
    assert again.notes == []
    assert again.state == state


def test_defaults_are_left_out_of_the_url() -> None:
    query = vs.to_query(resolve({}).state)
    assert set(query) == {"model", "dataset", "prompt", "layer", "split"}


@pytest.mark.parametrize(
    ("query", "field", "expected", "fragment"),
    [
        ({"model": "gpt-17"}, "model", "smollm2-135m", "Model 'gpt-17'"),
        ({"dataset": "mars_places"}, "dataset", "world_places", "Dataset"),
        ({"prompt": "nope"}, "prompt", "empty", "Prompt"),
        ({"layer": "99"}, "layer", 12, "Layer '99'"),
        ({"layer": "-1"}, "layer", 12, "Layer"),
        ({"layer": "abc"}, "layer", 12, "Layer"),
        ({"split": "validation"}, "split", "test", "Split"),
        ({"seg": "maybe"}, "segments", False, "Segments"),
        ({"by": "millennium"}, "residuals_by", "decade", "Residual"),
        ({"pts": "123"}, "points", vs.DEFAULT_POINTS, "Point cap"),
        ({"color": "shoe_size"}, "color", "", "Colour column"),
        ({"left": "ghost-7b"}, "compare_left", "", "Left model 'ghost-7b'"),
        ({"right": "../x"}, "compare_right", "", "Right model"),
        ({"depth": "7"}, "compare_depth", None, "Depth '7'"),
        ({"depth": "-0.5"}, "compare_depth", None, "Depth"),
        ({"depth": "nan"}, "compare_depth", None, "Depth"),
        ({"depth": "1e-1"}, "compare_depth", None, "Depth"),
        ({"depth": "0.5.1"}, "compare_depth", None, "Depth"),
    ],
)
def test_bad_values_fall_back_with_a_note(
    query: dict[str, str], field: str, expected: object, fragment: str
) -> None:
    res = resolve(query)
    assert getattr(res.state, field) == expected
    assert len(res.notes) == 1 and fragment in res.notes[0]


def test_layer_out_of_range_for_the_other_model() -> None:
    res = resolve({"model": "gemma3-270m", "layer": "25"})
    assert res.state.layer == 12
    assert "0–17" in res.notes[0]


def test_dataset_without_results_for_that_model_falls_back() -> None:
    res = resolve({"model": "gemma3-270m", "dataset": "historical_figures"})
    assert res.state.dataset == "world_places" and res.notes


def test_registered_dataset_without_results_keeps_no_layer() -> None:
    res = resolve({"dataset": "us_places"})
    assert res.state.dataset == "us_places" and res.state.layer is None and res.notes == []


def test_path_like_values_are_only_compared_never_opened(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    res = resolve({"dataset": str(secret), "model": "../../etc/passwd", "prompt": "/etc/shadow"})
    assert (res.state.model, res.state.dataset, res.state.prompt) == (
        "smollm2-135m",
        "world_places",
        "empty",
    )
    assert len(res.notes) == 3
    # notes show a sanitised, shortened value
    assert all("/" not in note.split("is not")[0] for note in res.notes)


def test_notes_escape_markup_and_cap_length() -> None:
    res = resolve({"model": "<script>alert(1)</script>" + "x" * 500})
    assert "<" not in res.notes[0] and ">" not in res.notes[0]
    assert len(res.notes[0]) < 200


def test_names_are_capped_cleaned_and_deduplicated() -> None:
    text = (
        "Kyoto\n\n  Kyoto \nParis\x00\x07\n"
        + "\n".join(f"n{i}" for i in range(20))
        + "\n"
        + "y" * 300
    )
    names, notes = vs.parse_names(text)
    assert names[:2] == ("Kyoto", "Paris")
    assert len(names) == vs.MAX_NAMES
    assert all(len(n) <= vs.MAX_NAME_CHARS for n in names)
    assert any("first" in n for n in notes)


def test_long_name_is_cut() -> None:
    names, notes = vs.parse_names("z" * 200)
    assert names == ("z" * vs.MAX_NAME_CHARS,) and notes


def test_list_values_take_the_last_and_unknown_keys_are_ignored() -> None:
    raw = vs.read_query({"layer": ["3", "5"], "evil": "x", "split": "train"})
    assert raw == {"layer": "5", "split": "train"}


def test_compare_keeps_only_offered_models() -> None:
    res = resolve({"cmp": "gemma3-270m,ghost,smollm2-135m,gemma3-270m"})
    assert res.state.compare == ("gemma3-270m", "smollm2-135m")
    assert "ghost" in res.notes[0]


def test_compare_pair_keeps_only_models_with_results_here() -> None:
    res = resolve({"left": "gemma3-270m", "right": "smollm2-135m@random"})
    assert (res.state.compare_left, res.state.compare_right) == ("gemma3-270m", "")
    assert len(res.notes) == 1 and "Right model" in res.notes[0]


@pytest.mark.parametrize(
    ("value", "depth", "shown"),
    [
        ("0.5", 0.5, "0.5"),
        ("0.50", 0.5, "0.5"),
        (".25", 0.25, "0.25"),
        ("1", 1.0, "1"),
        ("0", 0.0, "0"),
        ("0.333333", 0.33, "0.33"),
        ("0.29000000000000004", 0.29, "0.29"),  # a slider's float, as the widget gives it
    ],
)
def test_depth_is_rounded_to_the_slider_step_and_kept_short(
    value: str, depth: float, shown: str
) -> None:
    res = resolve({"depth": value})
    assert res.notes == [] and res.state.compare_depth == depth
    assert vs.to_query(res.state)["depth"] == shown


def test_query_string_is_percent_encoded() -> None:
    state = resolve({"names": "Kyoto & Osaka\nSão Paulo"}).state
    qs = vs.query_string(state)
    assert "names=Kyoto+%26+Osaka%0AS%C3%A3o+Paulo" in qs


def test_empty_catalog_keeps_defaults() -> None:
    class Empty(FakeOptions):
        def models(self) -> Sequence[str]:
            return []

        def datasets(self, model: str) -> Sequence[str]:
            return []

        def prompts(self, model: str, dataset: str) -> Sequence[str]:
            return []

        def layers(self, model: str, dataset: str, prompt: str) -> Sequence[int]:
            return []

    res = vs.resolve({}, Empty())
    assert (res.state.model, res.state.dataset, res.state.prompt, res.state.layer) == (
        "smollm2-135m",
        "world_places",
        "empty",
        None,
    )
