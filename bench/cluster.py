"""Activation builds on a local Ray cluster beside the single-process build.

Project: ``core.cluster.pool.ModelPool`` serving the planned batches to 1 and then 2
Ray actors on this machine (the cores split between them), the driver writing the rows.
Baseline: the plain single-process ``build_activations``. The same dataset, batch plan
and model; the replicas are loaded before the clock starts (a cluster loads them once
per build, in parallel), so this times the batches, their transfer and the writes.

    python -m bench.cluster                       # SmolLM2-135M, 600 world places
    python -m bench.cluster --model tiny-llama --n 2000   # the tests' tiny model

Ends with ``ratio: X`` (best Ray entities/s over single-process entities/s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from core.cluster.pool import ModelPool
from core.cluster.worker import replica_loader
from core.common.config import ActivationSpec
from core.data.registry import load_dataset
from core.extract.models import load_model
from core.extract.store import build_activations


def layer_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("layer_*.npy"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dataset", default="world_places")
    parser.add_argument("--n", type=int, default=600, help="entities")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if args.model == "tiny-llama":
        import tests.support.tiny  # noqa: F401  (registers the tiny model)

    import ray
    import torch

    cores = os.cpu_count() or 1
    dataset = load_dataset(args.dataset).head(args.n)
    loaded = load_model(args.model, device="cpu")
    spec = ActivationSpec(model=args.model, dataset=dataset.name)
    print(f"{args.model} on {args.n} {args.dataset}, {cores} cores, float32, batch plan of the CPU")
    rates: dict[str, float] = {}
    warm = dataset.head(64)  # first calls (allocator, kernels) left out of every timing
    with tempfile.TemporaryDirectory() as tmp:
        build_activations(spec, warm, loaded, Path(tmp) / "warm")
        start = time.perf_counter()
        single = build_activations(spec, dataset, loaded, Path(tmp) / "single")
        rates["single process"] = args.n / (time.perf_counter() - start)
        print(
            f"  single process ({torch.get_num_threads()} threads): "
            f"{rates['single process']:.1f} entities/s"
        )
        reference = layer_bytes(single.folder)
        del loaded
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
        try:
            for n_workers in args.workers:
                threads = max(1, cores // n_workers)
                loader = replica_loader(args.model, device="cpu")
                with ModelPool(
                    loader, n_workers=n_workers, cpus_per_worker=threads, torch_threads=threads
                ) as pool:
                    described, _ = pool.describe()  # replicas loaded: the clock starts here
                    scratch = Path(tmp) / f"warm{n_workers}"
                    build_activations(spec, warm, described, scratch, runner=pool.run_batches)
                    start = time.perf_counter()
                    store = build_activations(
                        spec,
                        dataset,
                        described,
                        Path(tmp) / f"ray{n_workers}",
                        runner=pool.run_batches,
                    )
                    rate = args.n / (time.perf_counter() - start)
                    name = f"ray, {n_workers} worker{'s' if n_workers > 1 else ''}"
                    rates[name] = rate
                    same = layer_bytes(store.folder) == reference
                    per = ", ".join(
                        f"{w['entities'] / w['busy']:.1f}" for w in pool.throughput() if w["busy"]
                    )
                    print(
                        f"  {name} x {threads} threads: {rate:.1f} entities/s "
                        f"(per worker, forward time only: {per}); "
                        f"same bytes as single process: {'yes' if same else 'no'}"
                        + ("" if threads == torch.get_num_threads() else " (other thread count)")
                    )
        finally:
            ray.shutdown()
    best = max(v for k, v in rates.items() if k.startswith("ray"))
    print(f"ratio: {best / rates['single process']:.2f}")


if __name__ == "__main__":
    main()
