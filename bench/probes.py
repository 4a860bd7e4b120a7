"""Per-layer ridge probe fit: RidgeProbe against scikit-learn's RidgeCV.

    python -m bench.probes                    # d = 576 and 4096, n = 32,000 training rows
    python -m bench.probes --n 8000 --d 576   # quicker

Both fit every alpha of the same grid with exact leave-one-out on the same float32
activations-like data (anisotropic Gaussian features, a planted linear signal in two
targets plus noise; seeded). RidgeCV is given the targets z-scored on the training rows,
as RidgeProbe z-scores them internally, so both score alphas on the same errors. For
each d the script prints both times, whether the same alpha was chosen and the largest
relative difference of the test R² values, and ends with ``ratio: X`` = RidgeCV time /
RidgeProbe time at the largest d (4096 by default).

    python -m bench.probes --sweep 32 --d 4096 --device cuda   # a 7B-sized probe sweep

``--sweep L`` times what ``build`` does per layer (fit on the train rows, predict every
row) for L layers of float16 activations held in host memory, with RidgeProbe on
``--device`` (a torch device; default numpy), against the numpy RidgeProbe on one layer
times L (RidgeCV would take hours at this size); it checks that both choose the same
alpha with equal test R², prints the sweep's wall time beside the 60 s target for 32
layers on a GPU, and ends with ``ratio: X`` = numpy time for L layers / sweep time.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Sequence

import numpy as np
import sklearn
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score

from core.probe.ridge import RidgeProbe, alpha_grid


def make_problem(
    n_train: int, n_test: int, d: int, n_targets: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """float32 features with column scales over two decades; y = X w + noise (R² ~ 0.7)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    scales = np.exp(rng.uniform(np.log(0.1), np.log(10.0), d)).astype(np.float32)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X *= scales
    X += rng.normal(0.0, 2.0, d).astype(np.float32)  # non-zero means, like activations
    w = rng.standard_normal((d, n_targets)) / (scales[:, None] * np.sqrt(d))
    signal = (X - X.mean(axis=0)) @ w.astype(np.float32)
    y = signal / signal.std(axis=0) + 0.6 * rng.standard_normal((n, n_targets))
    y = y * np.array([20.0, 60.0][:n_targets] + [1.0] * max(0, n_targets - 2))  # lat, lon-like
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def test_r2(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.array([r2_score(y_true[:, t], y_pred[:, t]) for t in range(y_true.shape[1])])


def run_one(
    n: int, n_test: int, d: int, n_targets: int, alphas: np.ndarray, seed: int
) -> dict[str, float | bool]:
    X, y, X_test, y_test = make_problem(n, n_test, d, n_targets, seed)

    start = time.perf_counter()
    probe = RidgeProbe(alphas=alphas, method="loo").fit(X, y)
    t_project = time.perf_counter() - start
    r2_project = test_r2(y_test, probe.predict(X_test))
    print(
        f"  d={d}: RidgeProbe {t_project:.2f} s, alpha {probe.alpha_:.3g}; RidgeCV...", flush=True
    )

    mean, scale = y.mean(axis=0), y.std(axis=0)
    start = time.perf_counter()
    baseline = RidgeCV(alphas=alphas, fit_intercept=True).fit(X, (y - mean) / scale)
    t_baseline = time.perf_counter() - start
    r2_baseline = test_r2(y_test, baseline.predict(X_test) * scale + mean)

    return {
        "d": d,
        "t_project": t_project,
        "t_baseline": t_baseline,
        "alpha_project": probe.alpha_,
        "alpha_baseline": float(baseline.alpha_),
        "same_alpha": bool(probe.alpha_ == float(baseline.alpha_)),
        "alpha_at_edge": probe.alpha_at_edge_,
        "r2_project": float(r2_project.mean()),
        "r2_baseline": float(r2_baseline.mean()),
        "r2_max_rel_diff": float(np.max(np.abs(r2_project - r2_baseline) / np.abs(r2_baseline))),
    }


def fit_and_predict(
    X: np.ndarray, y: np.ndarray, n_train: int, alphas: np.ndarray, device: str | None
) -> tuple[RidgeProbe, np.ndarray]:
    """One layer as the pipeline does it: fit on the train rows, predict every row."""
    probe = RidgeProbe(alphas=alphas, method="loo", device=device).fit(X[:n_train], y[:n_train])
    return probe, probe.predict(X)


def run_sweep(args: argparse.Namespace, n_test: int, alphas: np.ndarray) -> int:
    d = args.d[-1]
    X_train, y_train, X_test, y_test = make_problem(args.n, n_test, d, args.targets, args.seed)
    X = np.concatenate([X_train, X_test]).astype(np.float16)  # as stored by the activation cache
    y = np.concatenate([y_train, y_test])
    del X_train, X_test
    print(
        f"sweep: {args.sweep} layers, n={args.n}+{n_test}, d={d}, float16 rows, "
        f"device={args.device or 'numpy'}"
    )
    if args.device and args.device.startswith("cuda"):
        import torch

        print(f"gpu: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
        fit_and_predict(X[:4096], y[:4096], 2048, alphas, args.device)  # CUDA context and kernels

    start = time.perf_counter()
    reference, ref_pred = fit_and_predict(X, y, args.n, alphas, None)
    t_numpy = time.perf_counter() - start
    print(f"numpy RidgeProbe, one layer: {t_numpy:.2f} s", flush=True)

    times = []
    first: tuple[RidgeProbe, np.ndarray] | None = None
    for layer in range(args.sweep):
        start = time.perf_counter()
        probe, pred = fit_and_predict(X, y, args.n, alphas, args.device)
        times.append(time.perf_counter() - start)
        first = first or (probe, pred)
        print(f"  layer {layer:2d}: {times[-1]:.2f} s", flush=True)
    assert first is not None
    r2_ref = test_r2(y[args.n :], ref_pred[args.n :])
    r2_dev = test_r2(y[args.n :], first[1][args.n :])
    total = sum(times)
    print(
        f"same alpha: {first[0].alpha_ == reference.alpha_} ({first[0].alpha_:.3g}); "
        f"test R2 {r2_dev.mean():.4f}, "
        f"max rel diff {np.max(np.abs(r2_dev - r2_ref) / np.abs(r2_ref)):.2e}"
    )
    print(
        f"sweep of {args.sweep} layers: {total:.1f} s ({total / args.sweep:.2f} s per layer; "
        f"target for 32 layers of d=4096 on a GPU: <= 60 s)"
    )
    print(f"numpy for {args.sweep} layers (one layer x {args.sweep}): {t_numpy * args.sweep:.1f} s")
    print(f"ratio: {t_numpy * args.sweep / total:.1f}")
    if args.compare_staging and args.device:
        import core.probe.ridge_torch

        default = core.probe.ridge_torch.STAGING
        for staging in ("pageable", "pinned"):
            core.probe.ridge_torch.STAGING = staging
            start = time.perf_counter()
            for _ in range(args.compare_staging):
                fit_and_predict(X, y, args.n, alphas, args.device)
            print(
                f"rows staged {staging}: "
                f"{(time.perf_counter() - start) / args.compare_staging:.2f} s per layer "
                f"({args.compare_staging} layers)",
                flush=True,
            )
        core.probe.ridge_torch.STAGING = default
    if args.profile and args.device:
        from bench.forward_profile import profile_table

        # where one layer's time goes: the copies to the device, the products, the eigh
        start = time.perf_counter()
        table = profile_table(
            lambda: fit_and_predict(X, y, args.n, alphas, args.device), args.device, 15
        )
        # wall time beside the table's totals: what neither counts is host-side numpy work
        print(
            f"one more layer under torch.profiler (device {args.device}): "
            f"{time.perf_counter() - start:.2f} s wall"
        )
        print(table)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=32000, help="training rows (default 32000)")
    parser.add_argument("--n-test", type=int, default=None, help="test rows (default n/4)")
    parser.add_argument(
        "--d", type=int, nargs="+", default=[576, 4096], help="feature sizes (default 576 4096)"
    )
    parser.add_argument("--targets", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--grid",
        type=float,
        nargs=3,
        default=(-4.0, 8.0, 49),
        metavar=("LOG10_START", "LOG10_STOP", "COUNT"),
    )
    parser.add_argument(
        "--device", default=None, help="torch device for RidgeProbe (cuda, cpu); default numpy"
    )
    parser.add_argument(
        "--sweep",
        type=int,
        default=0,
        metavar="LAYERS",
        help="time a LAYERS-layer sweep at the largest --d instead of comparing with RidgeCV",
    )
    parser.add_argument(
        "--profile", action="store_true", help="--sweep with --device: profile one more layer"
    )
    parser.add_argument(
        "--compare-staging",
        type=int,
        default=0,
        metavar="LAYERS",
        help="--sweep with --device: then time LAYERS layers with rows staged in pageable, "
        "then pinned memory (core.probe.ridge_torch.STAGING)",
    )
    args = parser.parse_args(argv)
    n_test = args.n_test if args.n_test is not None else max(2, args.n // 4)
    alphas = alpha_grid(args.grid[0], args.grid[1], int(args.grid[2]))

    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} "
        f"numpy {np.__version__} sklearn {sklearn.__version__}"
    )
    print(
        f"n_train={args.n} n_test={n_test} targets={args.targets} "
        f"alphas={len(alphas)} ({alphas[0]:.0e}..{alphas[-1]:.0e}) seed={args.seed}"
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.sweep:
        return run_sweep(args, n_test, alphas)
    header = (
        f"{'d':>5} {'project_s':>10} {'ridgecv_s':>10} {'speedup':>8} {'same_alpha':>10} "
        f"{'alpha':>9} {'test_r2':>8} {'r2_max_rel_diff':>15}"
    )
    print(header)
    results = []
    for d in args.d:
        row = run_one(args.n, n_test, d, args.targets, alphas, args.seed)
        results.append(row)
        print(
            f"{d:>5} {row['t_project']:>10.2f} {row['t_baseline']:>10.2f} "
            f"{row['t_baseline'] / row['t_project']:>8.1f} {row['same_alpha']!s:>10} "
            f"{row['alpha_project']:>9.3g} {row['r2_project']:>8.4f} "
            f"{row['r2_max_rel_diff']:>15.2e}",
            flush=True,
        )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    last = results[-1]
    print(f"ratio: {last['t_baseline'] / last['t_project']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
