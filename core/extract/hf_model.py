"""A model the user already holds (a transformers model and its tokenizer) as a LoadedModel.

``core.from_hf(model, tokenizer, name="my-llama")`` is what ``load_model`` returns for a
registered name: depth and width from the model's config, a weights hash from its
tensors (so two different models never share a cache key), its device and dtype. Pass
the result as ``build(BuildConfig("my-llama", ...), loaded=...)``: the build checks that
the config names it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from core.common.hashing import canonical_json
from core.extract.models import LoadedModel, decoder_blocks, model_dims


def weights_hash(model: Any) -> str:
    """sha256 of the model's config and every parameter and buffer (names, shapes,
    dtypes and bytes, in name order): equal weights, equal hash."""
    import torch

    digest = hashlib.sha256(canonical_json(model.config.to_dict()).encode())
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(canonical_json([name, list(tensor.shape), str(tensor.dtype)]).encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def from_hf(
    model: Any,
    tokenizer: Any,
    name: str,
    *,
    random_init: bool = False,
    start_token: str | None = None,
) -> LoadedModel:
    """Wrap a transformers causal LM and its tokenizer for extraction (put in eval mode).

    `name` is what the results record and the BuildConfig must name; `random_init`
    says that the weights are a random-initialised control (the build records it);
    `start_token` is the document-start token put before every text (None: found from
    the tokenizer, as for any model; a build's ``start_token`` option overrides it)."""
    import torch

    decoder_blocks(model)  # fails now, with the reason, on an architecture without blocks
    model.eval()
    n_layers, d_model = model_dims(model.config)
    first = next(iter(model.parameters()))
    dtype = str(first.dtype).removeprefix("torch.")
    if first.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"{name}: parameters are {dtype}; use float32, bfloat16 or float16")
    return LoadedModel(
        name=name,
        model=model,
        tokenizer=tokenizer,
        n_layers=n_layers,
        d_model=d_model,
        weights_hash="hf:" + weights_hash(model)[:32],
        device=str(first.device),
        dtype=dtype,
        start_token=start_token,
        random_init=random_init,
    )
