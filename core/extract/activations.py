"""Residual-stream activations at each entity's last token, for every decoder block.

The residual stream *after* each decoder block (the paper's ``resid_post``) is read
with forward hooks on the blocks, not from ``hidden_states`` (whose last entry is
after the final norm). Texts are tokenised once, sorted by length and batched under
a token budget; padding is done here so the last real token's index is known for
either padding side, and position ids are passed explicitly so left padding does not
shift positions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.extract.models import LoadedModel

log = logging.getLogger(__name__)


class _StopForward(Exception):
    """Raised by the last hook needed, so deeper blocks are not computed."""


@dataclass(frozen=True)
class Batch:
    """A batch of entity indices (into the dataset order) of similar length."""

    index: int
    rows: tuple[int, ...]
    max_len: int


# Tokens that open a chat turn, not a document: never used as the start token.
# the start token as recorded when a text gets none (also a BuildConfig.start_token choice)
NO_START = "none"
CHAT_MARKERS = frozenset(
    {"<|im_start|>", "<|start_header_id|>", "<start_of_turn>", "<|im_end|>", "<|user|>"}
)
# Where a tokenizer declares no usable bos_token, the document separator it was trained
# with starts the text (GPT-2, Pythia and SmolLM2 documents are joined by it).
DOCUMENT_SEPARATORS = ("<|endoftext|>", "<s>", "<bos>")


def document_start(loaded: LoadedModel) -> tuple[str, int] | None:
    """The document-start token put before every text, as the paper does: the model's
    own (``LoadedModel.start_token``), else the tokenizer's ``bos_token`` unless it is a
    chat marker, else a document separator in its vocabulary; None if it has none."""
    tokenizer = loaded.tokenizer
    if loaded.start_token == NO_START:
        return None
    vocab = tokenizer.get_vocab()
    if loaded.start_token is not None:
        if loaded.start_token not in vocab:
            raise ValueError(
                f"{loaded.name}: start token {loaded.start_token!r} is not in its vocabulary"
            )
        return loaded.start_token, int(vocab[loaded.start_token])
    bos = getattr(tokenizer, "bos_token", None)
    if bos and bos not in CHAT_MARKERS and bos in vocab:
        return str(bos), int(vocab[bos])
    for token in DOCUMENT_SEPARATORS:
        if token in vocab:
            return token, int(vocab[token])
    return None


def with_start_token(loaded: LoadedModel, start_token: str) -> LoadedModel:
    """`loaded` starting its texts with `start_token`: "auto" keeps its own, "none"
    (`NO_START`) puts nothing first, anything else must be a token of its vocabulary."""
    if start_token == "auto":
        return loaded
    if start_token != NO_START and start_token not in loaded.tokenizer.get_vocab():
        raise ValueError(
            f"{loaded.name}: start token {start_token!r} is not in its vocabulary "
            f'(use "auto", "{NO_START}" or one of its tokens)'
        )
    return dataclasses.replace(loaded, start_token=start_token)


def start_token_name(loaded: LoadedModel) -> str:
    """The start token as recorded in cache keys and manifests ("none" if there is none)."""
    start = document_start(loaded)
    return start[0] if start else "none"


def tokenize(
    loaded: LoadedModel, texts: Sequence[str], max_tokens: int | None = None
) -> list[list[int]]:
    """Token ids per text: the document-start token, then the text with no other specials
    (``add_special_tokens=False``, as the paper tokenises).

    ``max_tokens`` keeps the start token and the *last* tokens of an over-long text, so the
    entity's final token (the one probed) is always kept and no first word is spliced on.
    """
    encoded = loaded.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    start = document_start(loaded)
    head = [start[1]] if start else []
    ids: list[list[int]] = []
    for i, row in enumerate(encoded):
        if not row:
            raise ValueError(f"text {i} ({texts[i]!r}) tokenises to nothing")
        if max_tokens is not None and len(head) + len(row) > max_tokens:
            row = row[len(row) - max(max_tokens - len(head), 1) :]
        ids.append(head + list(row))
    return ids


def plan_batches(
    lengths: Sequence[int], max_tokens_per_batch: int = 4096, max_batch_size: int = 64
) -> list[Batch]:
    """Length-sorted batches (longest first) whose padded size fits the token budget.

    Deterministic: a stable sort on length, ties kept in dataset order.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[Batch] = []
    current: list[int] = []
    current_max = 0
    for i in order:
        new_max = max(current_max, lengths[i])
        if current and (
            len(current) >= max_batch_size or new_max * (len(current) + 1) > max_tokens_per_batch
        ):
            batches.append(Batch(len(batches), tuple(current), current_max))
            current, new_max = [], lengths[i]
        current.append(i)
        current_max = new_max
    if current:
        batches.append(Batch(len(batches), tuple(current), current_max))
    return batches


# Batching per device type: (token budget, entities). A CPU gains nothing from big
# batches and keeps memory small; a GPU needs thousands of tokens per forward pass for
# its matrix units to be busy (64 short names are ~500 tokens: a 7B model's matmuls then
# run far below the hardware's rate).
BATCHING = {"cpu": (4096, 64), "cuda": (65536, 1024)}


def default_batching(loaded: LoadedModel) -> tuple[int, int]:
    """(max tokens per batch, max entities per batch) for the device the model is on."""
    device = next(loaded.model.parameters()).device
    return BATCHING.get(device.type, BATCHING["cpu"])


def _pad(token_ids: list[list[int]], pad_id: int, side: str) -> tuple[Any, Any, Any, Any]:
    import torch

    # Vectorised: a Python loop over 1,024 rows takes ~10 ms, during which a GPU waits.
    lengths = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=len(token_ids))
    max_len = int(lengths.max())
    columns = np.arange(max_len)
    starts = np.zeros_like(lengths) if side == "right" else max_len - lengths
    mask = (columns >= starts[:, None]) & (columns < (starts + lengths)[:, None])
    input_ids = np.full(mask.shape, pad_id, dtype=np.int64)
    # row-major order of the True cells is the texts' tokens in order, for either side
    input_ids[mask] = np.fromiter(
        itertools.chain.from_iterable(token_ids), dtype=np.int64, count=int(lengths.sum())
    )
    positions = np.maximum(mask.cumsum(axis=1) - 1, 0)
    # The last real token: the final column when padding on the left, length-1 on the right.
    last = lengths - 1 if side == "right" else np.full(len(lengths), max_len - 1)
    return (
        torch.from_numpy(input_ids),
        torch.from_numpy(mask.astype(np.int64)),
        torch.from_numpy(positions),
        torch.from_numpy(last),
    )


# Scaled-dot-product attention kernels on CUDA, in the order tried (torch.nn.attention
# SDPBackend names). `python -m bench.forward_profile` times each one first.
ATTENTION_ORDER = ["FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"]


@contextlib.contextmanager
def _flush_denormals(loaded: LoadedModel) -> Iterator[None]:
    """bfloat16 on a CPU: treat denormal numbers as zero while the model runs. A
    random-init model's small activations are full of them, and each costs a slow
    microcode path (its builds run about 3x faster flushed); float32 runs are left as
    they are, so their numbers do not move."""
    import torch

    if loaded.dtype != "bfloat16" or str(loaded.device) != "cpu":
        yield
        return
    before = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if before:  # set_flush_denormal returns whether the CPU supports it
            torch.set_flush_denormal(False)


def _attention_backends(device: Any) -> Any:
    """On CUDA, scaled-dot-product attention tries the kernels in ATTENTION_ORDER.

    torch 2.11 tries cuDNN's first on an H100. For names of a few tokens the fused
    kernels work in tiles of ~128 queries that stay mostly empty: on a 7B batch of
    1,024 four-token names cuDNN's took 23.9 ms (18% of the batch), FlashAttention
    22.7 ms. The order is process-wide while a forward pass runs; it changes which
    kernel runs, not what is computed."""
    if getattr(device, "type", None) != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = [getattr(SDPBackend, name) for name in ATTENTION_ORDER]
    try:
        return sdpa_kernel(order, set_priority=True)
    except TypeError:  # a torch without priorities: leave cuDNN out instead
        return sdpa_kernel([b for b in order if b != SDPBackend.CUDNN_ATTENTION])


def _inner_model(model: Any) -> Any:
    """The transformer body without the LM head (Gemma's 262k-word head triples the cost)."""
    base = getattr(model, "base_model_prefix", "model")
    inner = getattr(model, base, None)
    return inner if inner is not None else model


def forward_batch(
    loaded: LoadedModel,
    token_ids: list[list[int]],
    layers: Sequence[int] | None = None,
    padding_side: str = "right",
) -> np.ndarray:
    """Activations [n_layers_kept, batch, d_model] float32 at each text's last real token."""
    stacked = forward_batch_tensor(loaded, token_ids, layers, padding_side)
    return np.asarray(stacked.float().cpu().numpy())


def forward_batch_tensor(
    loaded: LoadedModel,
    token_ids: list[list[int]],
    layers: Sequence[int] | None = None,
    padding_side: str = "right",
) -> Any:
    """The same activations as a torch tensor left on the model's device, in its dtype.

    Checks and conversions can then run on the device before one copy to the host.
    """
    import torch

    layers = list(range(loaded.n_layers)) if layers is None else list(layers)
    blocks = loaded.blocks
    captured = capture_last_token(
        loaded, token_ids, {layer: blocks[layer] for layer in layers}, padding_side
    )
    device = next(loaded.model.parameters()).device
    return torch.stack([captured[layer].to(device) for layer in layers])


def capture_last_token(
    loaded: LoadedModel,
    token_ids: list[list[int]],
    modules: dict[int, Any],
    padding_side: str = "right",
    inputs: bool = False,
) -> dict[int, Any]:
    """One forward pass over the padded batch; per layer, the last real token's row of
    ``modules[layer]``'s output (its first input with `inputs`, through a pre-hook), left
    on the device. The pass stops once the deepest layer's module has been captured.
    """
    import torch

    pad_id = loaded.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = loaded.tokenizer.eos_token_id or 0
    input_ids, mask, positions, last = _pad(token_ids, int(pad_id), padding_side)
    device = next(loaded.model.parameters()).device
    # Indices go to the device once: a copy from host memory inside each hook would
    # make the host wait for the GPU at every layer.
    rows = torch.arange(len(token_ids)).to(device)
    last = last.to(device)
    captured: dict[int, Any] = {}
    deepest = max(modules)
    # Hooks live on the shared model, so a forward pass in another thread (two
    # dashboard sessions probing at once) runs them too: each hook acts only for
    # the thread that registered it.
    owner = threading.get_ident()

    def keep(layer: int, hidden: Any) -> None:
        if threading.get_ident() != owner:
            return
        at = hidden.device  # differs from `device` only for a model split over devices
        captured[layer] = hidden[rows.to(at), last.to(at)]  # one copy to the host per batch
        if layer == deepest:
            raise _StopForward

    def make_hook(layer: int) -> Any:
        if inputs:
            return lambda _module, args: keep(layer, args[0])
        return lambda _module, _args, output: keep(
            layer, output[0] if isinstance(output, tuple) else output
        )

    handles = [
        module.register_forward_pre_hook(make_hook(layer))
        if inputs
        else module.register_forward_hook(make_hook(layer))
        for layer, module in modules.items()
    ]
    try:
        with (
            torch.inference_mode(),
            _attention_backends(device),
            _flush_denormals(loaded),
            contextlib.suppress(_StopForward),
        ):
            _inner_model(loaded.model)(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                use_cache=False,
            )
    finally:
        for handle in handles:
            handle.remove()
    return captured


def iter_batches(
    loaded: LoadedModel,
    token_ids: list[list[int]],
    batches: Sequence[Batch],
    layers: Sequence[int] | None = None,
    padding_side: str = "right",
) -> Iterator[tuple[Batch, np.ndarray]]:
    for batch in batches:
        yield batch, forward_batch(loaded, [token_ids[i] for i in batch.rows], layers, padding_side)


def last_token_activations(
    loaded: LoadedModel,
    texts: Sequence[str],
    max_tokens: int | None = 64,
    layers: Sequence[int] | None = None,
    max_tokens_per_batch: int = 4096,
    max_batch_size: int = 64,
    padding_side: str = "right",
) -> np.ndarray:
    """In-memory activations [n_layers, n_texts, d_model] for a few texts (live probing)."""
    token_ids = tokenize(loaded, texts, max_tokens)
    batches = plan_batches([len(t) for t in token_ids], max_tokens_per_batch, max_batch_size)
    n_layers = loaded.n_layers if layers is None else len(layers)
    out = np.zeros((n_layers, len(texts), loaded.d_model), dtype=np.float32)
    for batch, acts in iter_batches(loaded, token_ids, batches, layers, padding_side):
        out[:, list(batch.rows)] = acts
    return out


class HostCopier:
    """Copies finished batches from the model's device to host memory.

    On CUDA the copy goes into one of two pinned buffers on a side stream, so it
    overlaps the next batch's forward pass instead of idling the GPU (a 7B batch of
    1,024 entities is ~270 MB: tens of milliseconds over PCIe). A buffer is reused two
    batches later, so the caller must be done with a result before asking for the copy
    after next. Elsewhere a plain copy.
    """

    def __init__(self, device: Any, overlap: bool = True) -> None:
        import torch

        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda" and overlap
        self.buffers: list[Any] = [None, None]
        self.turn = 0
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None

    def peak(self, tensor: Any) -> Callable[[], float]:
        """max |tensor| (nan or inf if any value is not finite), as a function that waits
        for it. On CUDA it waits for this tensor's work only: the next batch, launched
        meanwhile, keeps the GPU busy while the host checks this one."""
        import torch

        value = tensor.abs().amax().float()
        if not self.cuda:
            return lambda: float(value)
        host = torch.empty(1, dtype=torch.float32, pin_memory=True)
        host.copy_(value.reshape(1), non_blocking=True)
        ready = torch.cuda.Event()
        ready.record()

        def result() -> float:
            ready.synchronize()
            return float(host[0])

        return result

    def start(self, tensor: Any) -> Any:
        """Begin copying `tensor`; returns a function that waits and gives a numpy array."""
        import torch

        if not self.cuda:
            host = np.asarray(tensor.cpu().numpy())
            return lambda: host
        nbytes = tensor.numel() * tensor.element_size()
        buffer = self.buffers[self.turn]
        if buffer is None or buffer.numel() < nbytes:
            buffer = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
            self.buffers[self.turn] = buffer
        self.turn ^= 1
        host = buffer[:nbytes].view(tensor.dtype).view(tensor.shape)
        stream = self.stream
        assert stream is not None
        stream.wait_stream(torch.cuda.current_stream(self.device))  # the batch is computed first
        with torch.cuda.stream(stream):
            host.copy_(tensor, non_blocking=True)
            done = torch.cuda.Event()
            done.record(stream)
        tensor.record_stream(stream)  # its memory is not reused before the copy ends

        def result() -> np.ndarray:
            done.synchronize()
            return np.asarray(host.numpy())

        return result
