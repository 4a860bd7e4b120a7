"""Where one extraction batch's GPU time goes, for a Llama-2-7B-shaped random model.

    python -m bench.forward_profile                  # on a GPU (the device tool)
    python -m bench.forward_profile --shape small --device cpu --batch 64   # smoke test

Takes a typical batch of the paper's world places (the most common token length,
``--batch`` names of it), then times, each after warm-up passes:

- ``extract``: the project's ``forward_batch_tensor`` (hooks, last-token gather, stack,
  and its choice of attention kernel);
- ``bare``: the decoder body alone, no hooks, same inputs, torch's default attention
  kernel (cuDNN's on an H100);
- ``no-mask``: the body without an attention mask (every row has the same length);
- ``first=X``: ``extract`` with attention kernel X tried first (``--attention``): the
  fused kernels work in tiles of ~128 queries, so names of a few tokens waste most of
  each tile, where the plain matmul ("MATH") does not;
- ``compiled``: ``extract`` with each block's norms and MLP compiled by torch.compile
  (``--compile``), after a first pass that is timed as compile time;

each as ms per batch and MFU against a bf16 matmul ceiling measured in the same run, and
prints torch.profiler's table of the GPU kernels of one ``extract`` pass. It answers
whether the model's arithmetic, its elementwise work or the host caps extraction.
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Callable
from typing import Any

from bench.extract import (
    attention_first,
    compile_norms_and_mlp,
    load_names,
    matmul_ceiling_tflops,
    shaped_model,
    sync,
)


def time_ms(step: Callable[[], Any], warmup: int = 2, reps: int = 5) -> float:
    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(reps):
        step()
    sync()
    return (time.perf_counter() - start) / reps * 1000


def profile_table(step: Callable[[], Any], device: str, rows: int) -> str:
    """torch.profiler's table of one call of `step`, by the device time of each op
    and kernel (host time on a CPU)."""
    import torch

    on_cuda = device.startswith("cuda")
    activities = [torch.profiler.ProfilerActivity.CPU]
    if on_cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        step()
        sync()
    sort = "self_cuda_time_total" if on_cuda else "self_cpu_time_total"
    try:
        return str(prof.key_averages().table(sort_by=sort, row_limit=rows))
    except (AttributeError, KeyError):  # newer torch names device time generically
        return str(
            prof.key_averages().table(sort_by=sort.replace("cuda", "device"), row_limit=rows)
        )


def typical_batch(loaded: Any, names: list[str], batch: int) -> list[list[int]]:
    """`batch` token-id lists of the commonest length (a length-sorted batch has no padding)."""
    from core.extract.activations import tokenize

    ids = tokenize(loaded, names)
    length = collections.Counter(len(t) for t in ids).most_common(1)[0][0]
    same = [t for t in ids if len(t) == length]
    return (same * (batch // len(same) + 1))[:batch]


def main(argv: list[str] | None = None) -> int:
    import torch

    from core.extract.activations import _inner_model, _pad, forward_batch_tensor

    parser = argparse.ArgumentParser(
        prog="python -m bench.forward_profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--shape", default="7b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--batch", type=int, default=1024, help="names per batch (default 1024, as `build` on CUDA)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time the blocks' norms and MLP compiled"
    )
    parser.add_argument(
        "--attention", action="store_true", help="also time each attention kernel tried first"
    )
    parser.add_argument("--rows", type=int, default=20, help="kernel table rows")
    args = parser.parse_args(argv)

    loaded = shaped_model(args.shape, args.device)
    token_ids = typical_batch(loaded, load_names(None, "paper"), args.batch)
    n_tokens = sum(len(t) for t in token_ids)
    flops = 2 * sum(p.numel() for p in loaded.model.model.layers.parameters()) * n_tokens
    ceiling = matmul_ceiling_tflops(args.device)
    print(
        f"batch: {len(token_ids)} names x {len(token_ids[0])} tokens; ceiling {ceiling:.3g} TFLOP/s"
    )

    input_ids, mask, positions, _ = _pad(token_ids, 0, "right")
    body = _inner_model(loaded.model)
    dev_inputs = {"input_ids": input_ids.to(args.device), "position_ids": positions.to(args.device)}

    def extract() -> Any:
        return forward_batch_tensor(loaded, token_ids)

    def bare(with_mask: bool = True) -> Any:
        with torch.inference_mode():
            extra = {"attention_mask": mask.to(args.device)} if with_mask else {}
            return body(**dev_inputs, **extra, use_cache=False)

    def report(label: str, ms: float) -> None:
        print(
            f"  {label:<15} {ms:8.1f} ms per batch  "
            f"MFU {100 * flops / (ms / 1000) / 1e12 / ceiling:5.1f}%",
            flush=True,
        )

    report("extract", time_ms(extract))
    report("bare", time_ms(bare))
    report("no-mask", time_ms(lambda: bare(False)))

    if args.attention:
        import core.extract.activations

        default = list(core.extract.activations.ATTENTION_ORDER)
        for first in default:
            attention_first(first)
            report(f"first={first.split('_')[0]}", time_ms(extract))
        core.extract.activations.ATTENTION_ORDER = default

    print(profile_table(extract, args.device, args.rows))

    if args.compile:
        reference = extract().float()
        compile_norms_and_mlp(loaded)
        start = time.perf_counter()
        compiled = extract().float()
        sync()
        print(
            f"  compile  {time.perf_counter() - start:8.1f} s (first pass); "
            "max |compiled - eager| / max |eager| = "
            f"{float((compiled - reference).abs().max() / reference.abs().max()):.2e}"
        )
        report("compiled", time_ms(extract))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
