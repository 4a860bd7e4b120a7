"""A tiny random Llama with a character-level tokenizer, built in code (no files, no network).

Used by unit tests and as an honest, documented stand-in model for browser tests
(``SPACETIME_FAKE_MODEL=tests.support.tiny:tiny_model``); never used for real results.
"""

from __future__ import annotations

import string

from core.common.hashing import sha256_json
from core.extract.models import LoadedModel, register_model_factory

_ALPHABET = string.ascii_letters + string.digits + " .,'-:?/()&!é"


def tiny_tokenizer(  # type: ignore[no-untyped-def]
    padding_side: str = "right", add_bos: bool = True, chat_bos: bool = False
):
    """`chat_bos` declares a chat token as bos_token and adds a document separator, as
    SmolLM2's tokenizer does (bos_token <|im_start|>, documents start with <|endoftext|>)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "<unk>": 2}
    if chat_bos:
        vocab = {"<|endoftext|>": 0, "<|im_start|>": 1, "<unk>": 2}
    for ch in _ALPHABET:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    bos = "<|im_start|>" if chat_bos else "<s>"
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", special_tokens=[(bos, 1)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|endoftext|>" if chat_bos else "<pad>",
        bos_token=bos,
        unk_token="<unk>",
        padding_side=padding_side,
    )


def tiny_model(
    n_layers: int = 3,
    d_model: int = 32,
    seed: int = 0,
    padding_side: str = "right",
    add_bos: bool = True,
    chat_bos: bool = False,
    start_token: str | None = None,
) -> LoadedModel:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer(padding_side, add_bos, chat_bos)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=d_model,
        intermediate_size=2 * d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    return LoadedModel(
        name="tiny-llama",
        model=model,
        tokenizer=tokenizer,
        n_layers=n_layers,
        d_model=d_model,
        weights_hash="tiny:" + sha256_json({"config": config.to_dict(), "seed": seed})[:32],
        device="cpu",
        dtype="float32",
        start_token=start_token,
    )


# `load_model("tiny-llama")` (the CLI, worker processes) builds it in code.
register_model_factory("tiny-llama", lambda seed: tiny_model(seed=seed))
