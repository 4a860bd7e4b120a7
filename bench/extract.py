"""Extraction speed: the project's length-sorted, hook-based, streamed extraction against
the paper's method (HF forward with output_hidden_states=True, fixed batches of 48 in file
order, per-layer gather and copy to host), on the same entities and model, in one run.

CPU:  python -m bench.extract                      (SmolLM2-135M, 3,000 world-place names)
GPU:  python -m bench.extract --gpu                (Llama-2-7B-shaped random model, bf16,
                                                    the paper's world places, plus MFU
                                                    against a matmul ceiling measured here)

Each method runs in its own subprocess so its peak memory (max RSS, and peak CUDA memory
on a GPU) is its own. Ends with ``ratio: X`` (project entities/s over baseline's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PAPER_WORLD = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "paper-data"
    / "entity_datasets"
    / "world_place.csv"
)


def load_names(n: int | None, source: str) -> list[str]:
    """Entity names: the project's world_places (seeded sample) or the paper's CSV."""
    import pandas as pd

    if source == "paper":
        path = Path(os.environ.get("SPACETIME_PAPER_WORLD", PAPER_WORLD))
        names = pd.read_csv(path)["name"].astype(str).tolist()
    else:
        from core.data.registry import load_dataset

        names = load_dataset(source).frame["text"].astype(str).tolist()
    if n is not None and n < len(names):
        rng = np.random.default_rng(0)
        names = [names[i] for i in sorted(rng.choice(len(names), n, replace=False))]
    return names


METHODS = ["baseline", "project", "project-sync", "project-2x", "project-compiled", "project-math"]

# Llama-2-7B's shape; "small" keeps the same code path runnable on a CPU (smoke test).
SHAPES: dict[str, dict[str, Any]] = {
    "7b": {
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
    },
    "small": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
    },
}


def shaped_model(shape: str = "7b", device: str = "cuda") -> Any:
    """A Llama-2-shaped model with random weights, bf16 (speed ignores the weights)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from core.extract.models import LoadedModel

    tokenizer = bench_tokenizer()
    dims = SHAPES[shape]
    config = LlamaConfig(
        **dims,
        num_key_value_heads=dims["num_attention_heads"],
        vocab_size=max(32000, len(tokenizer)),
        max_position_embeddings=4096,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()  # type: ignore[arg-type]
    return LoadedModel(
        f"llama2-{shape}-shape",
        model,
        tokenizer,
        dims["num_hidden_layers"],
        dims["hidden_size"],
        "random",
        device,
        "bfloat16",
    )


def bench_tokenizer() -> Any:
    """SmolLM2's BPE tokenizer (names split about as Llama's would) when converted or
    carried in SPACETIME_BENCH_TOKENIZER; else a character tokenizer (~3x more tokens:
    entities/s then reads low, but the tokens and MFU printed stay right)."""
    from transformers import AutoTokenizer

    from core.common.cache import default_cache_root
    from tests.support.tiny import tiny_tokenizer

    candidates = [os.environ.get("SPACETIME_BENCH_TOKENIZER", "")]
    candidates += [str(p) for p in sorted((default_cache_root() / "models").glob("smollm2-135m-*"))]
    for folder in candidates:
        if folder and (Path(folder) / "tokenizer.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(folder)
            tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
            return tokenizer
    return tiny_tokenizer()


def run_baseline(loaded: Any, names: list[str], batch_size: int = 48) -> dict[str, Any]:
    import torch

    tok = loaded.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    device = next(loaded.model.parameters()).device
    out = [np.zeros((len(names), loaded.d_model), dtype=np.float32) for _ in range(loaded.n_layers)]
    start = time.perf_counter()
    for lo in range(0, len(names), batch_size):
        enc = tok(names[lo : lo + batch_size], return_tensors="pt", padding=True).to(device)
        with torch.no_grad():
            hidden = loaded.model(**enc, output_hidden_states=True).hidden_states
        if tok.padding_side == "left":
            last = torch.full(
                (enc["input_ids"].shape[0],), enc["input_ids"].shape[1] - 1, device=device
            )
        else:
            last = enc["attention_mask"].sum(1) - 1
        rows = torch.arange(len(last), device=device)
        for layer in range(loaded.n_layers):
            out[layer][lo : lo + batch_size] = hidden[layer + 1][rows, last].float().cpu().numpy()
    sync()
    return {"seconds": time.perf_counter() - start}


def run_project(
    loaded: Any,
    names: list[str],
    tokens_per_batch: int,
    batch_size: int,
    overlap_copies: bool = True,
) -> dict[str, Any]:
    import pandas as pd

    from core.common.config import ActivationSpec
    from core.data.schema import EntityDataset
    from core.extract.store import build_activations

    frame = pd.DataFrame(
        {
            "name": [f"{i}:{n}" for i, n in enumerate(names)],
            "text": names,
            "lat": 0.0,
            "lon": 0.0,
            "is_test": False,
        }
    )
    dataset = EntityDataset(name="bench", kind="space", frame=frame)
    spec = ActivationSpec(
        model=loaded.name,
        dataset="bench",
        max_tokens_per_batch=tokens_per_batch,
        max_batch_size=batch_size,
    )
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        store = build_activations(spec, dataset, loaded, Path(root), overlap_copies=overlap_copies)
        sync()
        seconds = time.perf_counter() - start
    # where the time went, as the build's manifest records it
    return {"seconds": seconds, "phases": store.manifest["seconds_by_phase"]}


def sync() -> None:
    """Wait for the GPU's queued work, so wall-clock times include it."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def matmul_ceiling_tflops(device: str = "cuda", dtype: str = "bfloat16") -> float:
    """Dense bf16 matmul throughput measured here: the ceiling MFU is reported against
    (8192³ products on a GPU; small ones on a CPU, where this only smoke-tests)."""
    import torch

    size, reps = (8192, 20) if device.startswith("cuda") else (1024, 3)
    a = torch.randn(size, size, device=device, dtype=getattr(torch, dtype))
    b = torch.randn(size, size, device=device, dtype=getattr(torch, dtype))
    for _ in range(3):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync()
    return 2 * size**3 * reps / (time.perf_counter() - start) / 1e12


def compile_norms_and_mlp(loaded: Any) -> None:
    """torch.compile each block's norms and MLP (their elementwise work fused), for
    measurement only: it changes the activations' rounding, so the project does not."""
    for block in loaded.blocks:
        for part in ("input_layernorm", "post_attention_layernorm", "mlp"):
            getattr(block, part).compile()


def attention_first(kernel: str) -> list[str]:
    """Make `core.extract.activations` try attention kernel `kernel` first; returns the order
    it replaced."""
    import core.extract.activations

    order = list(core.extract.activations.ATTENTION_ORDER)
    core.extract.activations.ATTENTION_ORDER = [kernel] + [k for k in order if k != kernel]
    return order


def worker(args: argparse.Namespace) -> None:
    import torch

    names = load_names(args.n, args.source)
    if args.gpu:
        loaded = shaped_model(args.shape, args.device)
    else:
        from core.extract.models import load_model

        torch.set_num_threads(args.threads or torch.get_num_threads())
        loaded = load_model(args.model, device="cpu", dtype=args.dtype)
    n_tokens = sum(len(t) for t in loaded.tokenizer(names)["input_ids"])
    if args.gpu and args.device.startswith("cuda"):
        # the peak reported is the extraction's (weights included), not the float32
        # random initialisation's, which all methods share
        torch.cuda.reset_peak_memory_stats()
    if args.method == "project-compiled":  # end to end, compile time included
        compile_norms_and_mlp(loaded)
    if args.method == "project-math":
        # attention by plain matrix products first: the fused kernels' tiles of ~128
        # queries stay mostly empty for names of a few tokens
        attention_first("MATH")
    if args.method == "baseline":
        stats = run_baseline(loaded, names)
    else:
        scale = 2 if args.method == "project-2x" else 1  # does a bigger batch still pay?
        stats = run_project(
            loaded,
            names,
            scale * args.batch_tokens,
            scale * args.batch_size,
            args.method != "project-sync",
        )
    stats.update(
        method=args.method,
        n=len(names),
        tokens=n_tokens,
        entities_per_s=len(names) / stats["seconds"],
        max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    if args.gpu:
        n_params = sum(p.numel() for p in loaded.model.model.layers.parameters())
        stats["model_tflops"] = 2 * n_params * n_tokens / stats["seconds"] / 1e12
        on_cuda = args.device.startswith("cuda")
        stats["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20 if on_cuda else 0.0
    print("RESULT " + json.dumps(stats), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.extract", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n", type=int, default=3000, help="entities (default 3000; GPU: all)")
    parser.add_argument(
        "--source", default=None, help="world_places (default, CPU) or paper (GPU default)"
    )
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--batch-tokens", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--dtype",
        default="float32",
        help="CPU compute dtype of both methods: float32 (what builds use on a CPU) or "
        "bfloat16 (`build --dtype bfloat16`; fast where the CPU has bf16 matrix units)",
    )
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="7b",
        help="--gpu model shape (small: a CPU smoke test)",
    )
    parser.add_argument("--device", default="cuda", help="--gpu device (default cuda)")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also run the project with its copies to the host not overlapped (project-sync) "
        "and with batches twice as big (project-2x)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=None,
        help="the methods to run (default: baseline project, plus the --variants)",
    )
    parser.add_argument("--method", choices=METHODS, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.source = args.source or ("paper" if args.gpu else "world_places")
    if args.gpu and args.n == 3000:
        args.n = None
    from core.extract.activations import BATCHING  # what `build` uses on that device

    tokens, size = BATCHING["cuda" if args.gpu else "cpu"]
    args.batch_tokens = args.batch_tokens or tokens
    args.batch_size = args.batch_size or size
    if args.method:
        worker(args)
        return 0
    methods = args.methods or ["baseline", "project"] + (
        ["project-sync", "project-2x"] if args.variants else []
    )
    results: dict[str, dict[str, Any]] = {}
    for method in methods:
        cmd = [
            sys.executable,
            "-m",
            "bench.extract",
            "--method",
            method,
            "--model",
            args.model,
            "--source",
            args.source,
            "--batch-tokens",
            str(args.batch_tokens),
            "--batch-size",
            str(args.batch_size),
            "--dtype",
            args.dtype,
        ]
        cmd += ["--n", str(args.n)] if args.n else []
        cmd += ["--gpu", "--shape", args.shape, "--device", args.device] if args.gpu else []
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            # keep going: one failed variant should not cost a GPU session the other numbers
            print(
                f"{method} FAILED (exit {proc.returncode}):\n"
                f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}",
                file=sys.stderr,
            )
            continue
        results[method] = json.loads(line[-1][7:])
        # as it comes, so a run stopped at its time limit still shows the methods done
        print(f"{method} done: {results[method]['seconds']:.2f} s", flush=True)
    on_cuda = args.gpu and args.device.startswith("cuda")
    where = (
        "GPU " + __import__("torch").cuda.get_device_name()
        if on_cuda
        else f"CPU ({os.cpu_count()} cores)"
    )
    what = f"{args.model} ({args.dtype})"
    if args.gpu:
        what = f"Llama-2-{args.shape}-shaped random bf16"
    print(f"extraction, {what} on {where}")
    for method, r in results.items():
        extra = (
            f"  {r['model_tflops']:.3g} TFLOP/s  peak CUDA {r['peak_cuda_mb']:.0f} MB"
            if args.gpu
            else ""
        )
        print(
            f"  {method:<16} {r['n']} entities ({r['tokens']} tokens) in {r['seconds']:.2f} s = "
            f"{r['entities_per_s']:.1f} entities/s, max RSS {r['max_rss_mb']:.0f} MB{extra}"
        )
    for method, r in results.items():
        if "phases" in r:
            phases = r["phases"]
            print(
                f"  {method:<16} time by phase: setup {phases['setup']:.2f} s, "
                f"forward {phases['forward']:.2f} s, "
                f"waiting on the writer {phases['write_wait']:.2f} s, "
                f"last writes and fsync {phases['sync']:.2f} s, "
                f"checksums {phases['finish']:.2f} s"
            )
    if args.gpu:
        ceiling = matmul_ceiling_tflops(args.device)
        for method, r in results.items():
            print(
                f"  {method:<16} MFU {100 * r['model_tflops'] / ceiling:.1f}% "
                f"of a {ceiling:.3g} TFLOP/s bf16 matmul ceiling"
            )
        for method, r in results.items():
            if "phases" in r:
                forward_tflops = (
                    r["model_tflops"] * r["seconds"] / max(r["phases"]["forward"], 1e-9)
                )
                print(
                    f"  {method:<16} forward passes alone: "
                    f"MFU {100 * forward_tflops / ceiling:.1f}%"
                )
    if set(methods) - set(results):
        return 1
    if not {"baseline", "project"} <= set(results):
        return 0
    print(
        f"ratio: {results['project']['entities_per_s'] / results['baseline']['entities_per_s']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
