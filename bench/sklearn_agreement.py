"""Agreement check: every layer's stored test R² against scikit-learn's RidgeCV.

The build (``core.results.build.build``) is made or reused in the cache root, with its
activations kept. For each layer, ``sklearn.linear_model.RidgeCV`` is fitted on the
stored activations of the training rows with the probe's own absolute alphas
(``ProbeSpec().alpha_grid`` in units of trace(Xc^T Xc)/d, recomputed here from the rows),
targets z-scored on the training rows and one alpha shared by all targets
(``alpha_per_target=False``, efficient exact leave-one-out). Its test predictions are
scored with ``r2_score`` (uniform average over targets) and printed beside ours.

    python -m bench.sklearn_agreement                  # SmolLM2-135M, all paper world places
    python -m bench.sklearn_agreement --limit 4000     # the first 4,000 rows
    python -m bench.sklearn_agreement --model tiny-llama --limit 300   # smoke run

The paper's CSVs are read from ``--paper-dir`` (default ../shared/paper-data/
entity_datasets beside the checkout) unless SPACETIME_PAPER_DATA_URL is set. Ends with
``max |ΔR²| = X`` (largest absolute difference of test R² over layers).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.extract.store import ActivationStore
    from core.results.probe_results import ProbeResults

REPO = Path(__file__).resolve().parent.parent
PAPER_DIR = REPO.parent / "shared" / "paper-data" / "entity_datasets"


def sklearn_layer(
    x: np.ndarray, y: np.ndarray, is_test: np.ndarray, grid: Sequence[float]
) -> tuple[float, float, float]:
    """(test R², chosen alpha, seconds) of RidgeCV on one layer's activations."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score

    start = time.perf_counter()
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    train = ~is_test
    xt = x[train]
    centred = xt - xt.mean(axis=0)
    unit = float(np.einsum("ij,ij->", centred, centred)) / x.shape[1]
    alphas = np.logspace(grid[0], grid[1], int(grid[2])) * unit
    mean, scale = y[train].mean(axis=0), y[train].std(axis=0)
    model = RidgeCV(alphas=alphas, fit_intercept=True, alpha_per_target=False)
    model.fit(xt, (y[train] - mean) / scale)
    pred = np.asarray(model.predict(x[is_test])).reshape(-1, y.shape[1]) * scale + mean
    r2 = float(r2_score(y[is_test], pred, multioutput="uniform_average"))
    return r2, float(model.alpha_), time.perf_counter() - start


def build_results(args: argparse.Namespace, root: Path) -> tuple[ProbeResults, ActivationStore]:
    """(ProbeResults, ActivationStore) of the build, activations rebuilt if a reused
    result had them deleted (``python -m core demo`` ships results only)."""
    from core.common.cache import artifact_dir
    from core.common.config import BuildConfig
    from core.data.registry import load_dataset
    from core.extract.activations import default_batching
    from core.extract.models import load_model
    from core.extract.store import ActivationStore, build_activations
    from core.results.build import build

    data = load_dataset(args.dataset, cache_root=root).head(args.limit)
    config = BuildConfig(args.model, data, limit=args.limit, device=args.device, cache_root=root)
    loaded = load_model(args.model, device=args.device, cache_root=root)
    start = time.perf_counter()
    results = build(config, loaded=loaded)
    key = str(results.manifest["activation_key"])
    if not (artifact_dir(root, "activations", key) / "manifest.json").is_file():
        spec = config.activation_spec(
            data.name, data.default_prompt, default_batching(loaded), config.dtype
        )
        store = build_activations(spec, data, loaded, root)
        if store.manifest["key"] != key:
            raise SystemExit(f"rebuilt activations {store.manifest['key']} != {key}")
    print(f"build (or reuse): {time.perf_counter() - start:.1f} s -> {results.path}")
    return results, ActivationStore(artifact_dir(root, "activations", key))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dataset", default="paper_world_place")
    parser.add_argument("--limit", type=int, default=None, help="first N rows (default all)")
    parser.add_argument("--device", default="auto", help="device of the model (default auto)")
    parser.add_argument(
        "--cache-root", type=Path, default=None, help="default: the project's cache root"
    )
    parser.add_argument("--paper-dir", type=Path, default=PAPER_DIR)
    args = parser.parse_args(argv)

    if args.model == "tiny-llama":
        import tests.support.tiny  # noqa: F401  (registers the test model)
    if not os.environ.get("SPACETIME_PAPER_DATA_URL") and args.paper_dir.is_dir():
        os.environ["SPACETIME_PAPER_DATA_URL"] = args.paper_dir.resolve().as_uri() + "/"

    import sklearn

    from core.common.cache import default_cache_root

    root = args.cache_root or default_cache_root()
    print(f"numpy {np.__version__} sklearn {sklearn.__version__} cpus={os.cpu_count()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results, store = build_results(args, root)
    entities = results.entities
    y = entities[list(results.target_names)].to_numpy(dtype=np.float64)
    is_test = entities["is_test"].to_numpy(dtype=bool)
    probe = results.manifest["probe"]
    if probe.get("alpha_scale") != "trace" or probe.get("method") != "loo":
        raise SystemExit(f"this check expects alpha_scale 'trace' and method 'loo', got {probe}")
    grid = probe["alpha_grid"]
    print(
        f"{results.model} on {results.dataset}: {len(y)} entities "
        f"({int((~is_test).sum())} train, {int(is_test.sum())} test), "
        f"{len(results.layers)} layers, alpha grid 10^{grid[0]}..10^{grid[1]} x{grid[2]} "
        f"(trace units)"
    )
    print(
        f"{'layer':>5} {'ours_test_r2':>12} {'sklearn_r2':>12} {'|diff|':>9} "
        f"{'ours_alpha':>11} {'sk_alpha':>11} {'same':>5} {'sk_s':>6}"
    )
    worst = 0.0
    for position, layer in enumerate(results.layers):
        x = np.asarray(store.layer(int(layer)))
        r2_sk, alpha_sk, seconds = sklearn_layer(x, y, is_test, grid)
        ours = results.metric_at(int(layer), "r2", "test")
        alpha = float(results.alphas[position])
        diff = abs(ours - r2_sk)
        worst = max(worst, diff)
        same = bool(np.isclose(alpha, alpha_sk, rtol=1e-6))
        print(
            f"{int(layer):>5} {ours:>12.6f} {r2_sk:>12.6f} {diff:>9.2e} "
            f"{alpha:>11.4g} {alpha_sk:>11.4g} {same!s:>5} {seconds:>6.2f}",
            flush=True,
        )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"max |ΔR²| = {worst:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
