"""Activation storage: writing a build's batches into per-layer files, 7B-shaped.

Project: ``core.extract.layer_files.LayerFiles``, each batch written in place at its rows, then
one fsync per file (what ``build_activations`` does). Baseline: the store's earlier
design, and SAELens-style caches: each batch saved as an fsync'd shard, then a second
pass gathers the shards into the layer files. The model is left out (random float16
rows stand in for activations), so this times the disk path alone, in one run.

    python -m bench.store                   # 8,000 entities x 32 layers x 4096 (2.1 GB)
    python -m bench.store --n 40000         # the paper's world places (10.5 GB)
    python -m bench.store --n 40000 --batch 1024 --pace 1.4   # behind a GPU-fast model:
                                            # checkpoints fsync'd on the writer thread
                                            # (baseline) or in the background (project)

Ends with ``ratio: X`` (baseline seconds over project seconds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from core.common.hashing import sha256_file, sha256_json
from core.extract.layer_files import LayerFiles, Ledger, layer_name


def batches_of(n: int, batch: int, seed: int = 0) -> list[np.ndarray]:
    """Row sets as a length-sorted plan makes them: scattered over the whole table."""
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[i : i + batch]) for i in range(0, n, batch)]


def shards_then_gather(
    root: Path, batches: list[np.ndarray], acts: np.ndarray, shape: tuple[int, int]
) -> float:
    start = time.perf_counter()
    for k, rows in enumerate(batches):
        with open(root / f"shard_{k:06d}.npy", "wb") as handle:
            np.save(handle, acts[:, : len(rows)], allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
    outs = [
        np.lib.format.open_memmap(root / layer_name(j), mode="w+", dtype=acts.dtype, shape=shape)
        for j in range(acts.shape[0])
    ]
    for k, rows in enumerate(batches):
        shard = np.load(root / f"shard_{k:06d}.npy", mmap_mode="r", allow_pickle=False)
        for j, out in enumerate(outs):
            out[rows] = shard[j]
    for out in outs:
        out.flush()
    return time.perf_counter() - start


def in_place(
    root: Path, batches: list[np.ndarray], acts: np.ndarray, shape: tuple[int, int]
) -> float:
    start = time.perf_counter()
    files = LayerFiles.create(root, list(range(acts.shape[0])), shape, str(acts.dtype))
    for rows in batches:
        files.write(rows, acts[:, : len(rows)])
    files.sync()
    return time.perf_counter() - start


def paced_build(
    root: Path,
    batches: list[np.ndarray],
    acts: np.ndarray,
    shape: tuple[int, int],
    gbps: float,
    interval: float,
    background: bool,
) -> float:
    """A build's disk path behind a model that produces `gbps` GB/s of activations: one
    writer thread, at most one batch waiting for it, checkpoints every `interval` s."""
    start = time.perf_counter()
    files = LayerFiles.create(root, list(range(acts.shape[0])), shape, str(acts.dtype))
    ledger = Ledger(files, root, "bench", {}, interval, background=background)

    def store(index: int, rows: np.ndarray) -> None:
        files.write(rows, acts[:, : len(rows)])
        ledger.add(index, 1.0)

    pending: deque[Future[None]] = deque()
    ready = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as writer:
        for index, rows in enumerate(batches):
            ready += acts[:, : len(rows)].nbytes / (gbps * 1e9)  # the model's forward pass
            time.sleep(max(0.0, ready - time.perf_counter()))
            pending.append(writer.submit(store, index, rows))
            while len(pending) > 1:
                pending.popleft().result()
                ready = max(ready, time.perf_counter())  # the model waited for the writer
        for future in pending:
            future.result()
    ledger.close(commit=True)
    files.close()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--n", type=int, default=8000, help="entities")
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--d", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=256, help="entities per batch")
    parser.add_argument(
        "--rounds", type=int, default=2, help="runs of each (alternating which goes first)"
    )
    parser.add_argument(
        "--dir", default=None, help="where to write (default: the system's temporary folder)"
    )
    parser.add_argument(
        "--pace",
        type=float,
        default=None,
        metavar="GBPS",
        help="instead: a build behind a model producing GBPS GB/s, its checkpoints' fsyncs "
        "on the writer thread (baseline) or in the background (project)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        help="--pace: seconds between checkpoints (default: the build's CHECKPOINT_SECONDS)",
    )
    args = parser.parse_args(argv)
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    shape = (args.n, args.d)
    acts = (
        np.random.default_rng(1)
        .standard_normal((args.layers, args.batch, args.d))
        .astype(np.float16)
    )
    batches = batches_of(args.n, args.batch)
    gb = args.n * args.layers * args.d * 2 / 1e9
    print(
        f"storage: {args.n} entities x {args.layers} layers x d={args.d} float16 = {gb:.2f} GB, "
        f"batches of {args.batch}"
    )
    seconds: dict[str, list[float]] = {"baseline": [], "project": []}
    digests: dict[str, set[str]] = {"baseline": set(), "project": set()}
    methods = {"baseline": shards_then_gather, "project": in_place}
    labels = {
        "baseline": "shards (fsync'd) then a gather pass",
        "project": "rows written in place, one fsync per file",
    }
    if args.pace:
        from core.extract.store import CHECKPOINT_SECONDS

        interval = CHECKPOINT_SECONDS if args.interval is None else args.interval
        print(
            f"  behind a model producing {args.pace} GB/s ({gb / args.pace:.2f} s for all), "
            f"checkpoints every {interval} s"
        )
        methods = {
            "baseline": partial(paced_build, gbps=args.pace, interval=interval, background=False),
            "project": partial(paced_build, gbps=args.pace, interval=interval, background=True),
        }
        labels = {
            "baseline": "checkpoint fsyncs on the writer thread",
            "project": "checkpoint fsyncs in the background",
        }
    # Both orders, so neither always runs second (behind the other's write-back); the
    # best of each is reported. Each copy is hashed and removed before the next run.
    for name in [*methods, *reversed(methods)][: 2 * args.rounds]:
        root = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir))
        try:
            os.sync()
            seconds[name].append(methods[name](root, batches, acts, shape))
            digests[name].add(
                sha256_json([sha256_file(root / layer_name(j)) for j in range(args.layers)])
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)
    same = len(digests["baseline"] | digests["project"]) == 1
    best = {name: min(times) for name, times in seconds.items()}
    print(f"  same layer files: {same}")
    for name, what in labels.items():
        runs = ", ".join(f"{t:.2f}" for t in seconds[name])
        print(
            f"  {name:<9} {what}: best {best[name]:.2f} s = {gb / best[name]:.2f} GB/s "
            f"(runs: {runs} s)"
        )
    print(f"ratio: {best['baseline'] / best['project']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
