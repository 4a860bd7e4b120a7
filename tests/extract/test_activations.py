"""Activation extraction: batching must not change the values, on either padding side."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.extract.activations import (
    _pad,
    document_start,
    forward_batch,
    last_token_activations,
    plan_batches,
    tokenize,
)
from core.extract.models import MODELS
from tests.support.tiny import tiny_model

TEXTS = ["Paris", "New York City", "Kyoto, Japan", "A", "Rio de Janeiro, Brazil", "Oslo"]


def one_at_a_time(loaded, texts):  # type: ignore[no-untyped-def]
    return np.stack([last_token_activations(loaded, [t])[:, 0] for t in texts], axis=1)


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("add_bos", [True, False])
def test_batched_equals_single(padding_side: str, add_bos: bool) -> None:
    loaded = tiny_model(add_bos=add_bos)
    single = one_at_a_time(loaded, TEXTS)
    batched = last_token_activations(loaded, TEXTS, padding_side=padding_side, max_batch_size=4)
    assert batched.shape == (loaded.n_layers, len(TEXTS), loaded.d_model)
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-5)


def test_padding_side_of_tokenizer_does_not_matter(tiny, tiny_left) -> None:  # type: ignore[no-untyped-def]
    # Same weights (same seed), tokenizers that pad on different sides by default.
    a = last_token_activations(tiny, TEXTS)
    b = last_token_activations(tiny_left, TEXTS)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_block_outputs_not_final_norm(tiny) -> None:  # type: ignore[no-untyped-def]
    import torch

    ids = tiny.tokenizer("Paris", return_tensors="pt")
    with torch.no_grad():
        hidden = tiny.model(**ids, output_hidden_states=True).hidden_states
    acts = last_token_activations(tiny, ["Paris"])[:, 0]
    # hidden_states[i + 1] is block i's output, except the last, which is after the final norm.
    for layer in range(tiny.n_layers - 1):
        np.testing.assert_allclose(
            acts[layer], hidden[layer + 1][0, -1].numpy(), rtol=1e-5, atol=1e-6
        )
    assert not np.allclose(acts[-1], hidden[-1][0, -1].numpy(), atol=1e-3)


def test_layer_subset_matches_full(tiny) -> None:  # type: ignore[no-untyped-def]
    full = last_token_activations(tiny, TEXTS)
    subset = last_token_activations(tiny, TEXTS, layers=[0, 2])
    np.testing.assert_allclose(subset, full[[0, 2]], rtol=1e-6)


def test_plan_batches_respects_budget_and_covers_all() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, 500).tolist()
    batches = plan_batches(lengths, max_tokens_per_batch=256, max_batch_size=16)
    rows = sorted(i for b in batches for i in b.rows)
    assert rows == list(range(500))
    for batch in batches:
        assert len(batch.rows) <= 16
        assert batch.max_len == max(lengths[i] for i in batch.rows)
        assert batch.max_len * len(batch.rows) <= max(256, batch.max_len)
    # length-sorted: batch maxima never increase
    maxima = [b.max_len for b in batches]
    assert maxima == sorted(maxima, reverse=True)


def test_truncation_keeps_last_token(tiny) -> None:  # type: ignore[no-untyped-def]
    long_text = "x" * 300 + "Paris"
    ids = tokenize(tiny, [long_text], max_tokens=16)[0]
    assert len(ids) == 16
    assert ids[-5:] == tokenize(tiny, ["Paris"])[0][-5:]
    out = forward_batch(tiny, [ids])
    assert np.isfinite(out).all()
    assert ids[0] == tiny.tokenizer.bos_token_id  # the start token survives truncation


def test_every_text_starts_with_the_document_start_token() -> None:
    """SmolLM2's GGUF tokenizer adds no special token and declares the chat token
    <|im_start|> as bos_token: texts must still start with <|endoftext|>, as the paper's
    start-of-document token, whether or not the tokenizer would add one itself."""
    for add_bos in (True, False):
        smol_like = tiny_model(add_bos=add_bos, chat_bos=True)
        assert document_start(smol_like) == ("<|endoftext|>", 0)
        ids = tokenize(smol_like, ["Paris", "Rome"])
        assert [row[0] for row in ids] == [0, 0]
        assert smol_like.tokenizer.convert_ids_to_tokens(ids[0][1:]) == list("Paris")
    plain = tiny_model(add_bos=False)
    assert (
        tokenize(plain, ["Paris"])[0]
        == [plain.tokenizer.bos_token_id] + tokenize(plain, ["Paris"])[0][1:]
    )
    # a model's own start token wins over what its tokenizer declares
    assert document_start(tiny_model(start_token="<unk>"))[1] == 2  # type: ignore[index]
    with pytest.raises(ValueError, match="not in its vocabulary"):
        document_start(tiny_model(start_token="<bos>"))


def test_registered_models_name_their_start_token() -> None:
    assert MODELS["smollm2-135m"].start_token == "<|endoftext|>"
    assert MODELS["gemma3-270m"].start_token == "<bos>"


def test_truncation_keeps_the_start_token_and_splices_no_first_word() -> None:
    smol_like = tiny_model(chat_bos=True, add_bos=False)
    text = "Q" + "x" * 40 + "Paris"
    ids = tokenize(smol_like, [text], max_tokens=8)[0]
    assert ids[0] == 0 and len(ids) == 8
    assert smol_like.tokenizer.convert_ids_to_tokens(ids[1:]) == list("xxParis")


def test_start_token_and_dtype_are_in_the_cache_key(tiny, places) -> None:  # type: ignore[no-untyped-def]
    from core.common.config import ActivationSpec
    from core.extract.store import resolve_spec

    spec = ActivationSpec(model="tiny-llama", dataset=places.name)
    resolved = resolve_spec(spec, tiny)
    assert (resolved.dtype, resolved.start_token) == ("float32", "<s>")
    other = resolve_spec(spec, tiny_model(start_token="<unk>"))
    assert other.start_token == "<unk>"
    keys = {s.key("d", "w") for s in (spec, resolved, other)}
    assert len(keys) == 3
    bf16 = dataclasses.replace(resolved, dtype="bfloat16")
    assert bf16.key("d", "w") != resolved.key("d", "w")


def test_batching_follows_the_device_and_stays_out_of_the_cache_key(
    tiny, places, cache_root
) -> None:  # type: ignore[no-untyped-def]
    import types

    import torch

    from core.common.cache import list_artifacts
    from core.common.config import BuildConfig
    from core.extract.activations import BATCHING, default_batching
    from core.results.build import build

    on_gpu = types.SimpleNamespace(
        model=types.SimpleNamespace(parameters=lambda: iter([torch.empty(0, device="meta")]))
    )
    assert default_batching(tiny) == BATCHING["cpu"] == (4096, 64)
    assert default_batching(on_gpu) == BATCHING["cpu"]  # an unknown device type: the small batches
    on_gpu.model.parameters = lambda: iter([types.SimpleNamespace(device=torch.device("cuda", 0))])
    assert default_batching(on_gpu) == BATCHING["cuda"] and BATCHING["cuda"][1] >= 1024

    build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    ((folder, manifest),) = list_artifacts(cache_root, "activations")
    assert (manifest["spec"]["max_tokens_per_batch"], manifest["spec"]["max_batch_size"]) == (
        4096,
        64,
    )
    # other batching, same cache: the build reuses it rather than computing again
    again = build(
        BuildConfig("tiny-llama", places, cache_root=cache_root / "other", max_batch_size=8),
        loaded=tiny,
    )
    ((other, _),) = list_artifacts(cache_root / "other", "activations")
    assert (
        other.name == folder.name
        and again.path.name
        == build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny).path.name
    )


def _pad_row_by_row(token_ids: list[list[int]], pad_id: int, side: str) -> tuple[np.ndarray, ...]:
    """The padding spelled out one row at a time (what the vectorised _pad must equal)."""
    width = max(len(t) for t in token_ids)
    ids = np.full((len(token_ids), width), pad_id)
    mask = np.zeros((len(token_ids), width), dtype=np.int64)
    positions = np.zeros((len(token_ids), width), dtype=np.int64)
    last = np.zeros(len(token_ids), dtype=np.int64)
    for row, tokens in enumerate(token_ids):
        first = 0 if side == "right" else width - len(tokens)
        ids[row, first : first + len(tokens)] = tokens
        mask[row, first : first + len(tokens)] = 1
        positions[row, first : first + len(tokens)] = np.arange(len(tokens))
        last[row] = first + len(tokens) - 1
    return ids, mask, positions, last


@given(
    st.lists(st.lists(st.integers(1, 50_000), min_size=1, max_size=12), min_size=1, max_size=20),
    st.sampled_from(["left", "right"]),
)
def test_pad_matches_row_by_row_padding(token_ids: list[list[int]], side: str) -> None:
    ids, mask, positions, last = (t.numpy() for t in _pad(token_ids, 0, side))
    want_ids, want_mask, want_positions, want_last = _pad_row_by_row(token_ids, 0, side)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(last, want_last)
    real = mask == 1  # a padding cell's position is never attended to
    np.testing.assert_array_equal(positions[real], want_positions[real])


def test_a_chosen_start_token_changes_the_texts_and_the_key(tiny, places) -> None:  # type: ignore[no-untyped-def]
    from core.common.config import ActivationSpec
    from core.extract.activations import NO_START, with_start_token
    from core.extract.store import resolve_spec

    bare = with_start_token(tiny, NO_START)
    assert document_start(bare) is None
    assert tokenize(bare, ["Paris"])[0] == tokenize(tiny, ["Paris"])[0][1:]
    assert with_start_token(tiny, "auto") is tiny
    assert document_start(with_start_token(tiny, "<unk>"))[0] == "<unk>"  # type: ignore[index]
    with pytest.raises(ValueError, match="not in its vocabulary"):
        with_start_token(tiny, "<no such token>")
    spec = ActivationSpec(model="tiny-llama", dataset=places.name)
    keys = {resolve_spec(spec, m).key("d", "w") for m in (tiny, bare)}
    assert resolve_spec(spec, bare).start_token == NO_START and len(keys) == 2


def test_denormals_are_flushed_only_while_a_bfloat16_cpu_model_runs() -> None:
    import types

    import torch

    from core.extract.activations import _flush_denormals

    def flushed() -> bool:
        return bool((torch.tensor([1e-40], dtype=torch.float32) * 1.0 == 0).item())

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    bf16 = types.SimpleNamespace(dtype="bfloat16", device="cpu")
    f32 = types.SimpleNamespace(dtype="float32", device="cpu")
    with _flush_denormals(bf16):  # type: ignore[arg-type]
        assert flushed()
    assert not flushed()
    with _flush_denormals(f32):  # type: ignore[arg-type]
        assert not flushed()  # float32 numbers must not move
