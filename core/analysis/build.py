"""``python -m core analyze``: build (or reuse) activations and probes, then run the analyses.

Activations stay in the cache (``activations/<key>/``) so a later analysis reuses them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from core.analysis.run import AnalysisResults, analysis_dir, run_analysis
from core.cache import artifact_dir, default_cache_root
from core.datasets.registry import load_dataset
from core.results import ProbeResults
from core.store import ActivationStore

log = logging.getLogger(__name__)

StageProgress = Callable[[str, int, int], None]


def analyze(
    model: str,
    dataset: str,
    prompt: str | None = None,
    limit: int | None = None,
    group_column: str | None = None,
    layers: tuple[int, ...] | None = None,
    transfer_prompts: Sequence[str] = (),
    mlp: bool = True,
    mlp_hidden: int = 256,
    k_neurons: int = 10,
    device: str = "auto",
    dtype: str = "auto",
    cache_root: Path | None = None,
    progress: StageProgress | None = None,
    command: str = "",
) -> tuple[AnalysisResults, ProbeResults]:
    """Analyses of one (model, dataset, prompt, limit), saved beside its probe results.

    `layers` restricts the activations (and so the results key) exactly as
    ``python -m core build --layers`` does.
    """
    from core.models import load_model
    from core.pipeline import build

    root = Path(cache_root) if cache_root else default_cache_root()
    data = load_dataset(dataset, cache_root=root).head(limit)
    main_prompt = prompt or data.default_prompt
    if group_column and group_column not in data.frame:
        raise ValueError(f"dataset {data.name!r} has no column {group_column!r}; grouping columns: {[c for c in data.frame.columns if data.frame[c].dtype == object and c not in ('name', 'text')]}")
    for p in transfer_prompts:
        data.prompt_text(p)  # fail early on an unknown prompt
    loaded = load_model(model, device=device, dtype=dtype, cache_root=root, progress=lambda msg: log.info(msg))

    def run_build(p: str) -> tuple[ProbeResults, ActivationStore]:
        results = build(model, data, prompt=p, limit=limit, layers=layers, dtype=dtype, cache_root=root, progress=progress, command=command, loaded=loaded)
        store = ActivationStore(artifact_dir(root, "activations", str(results.manifest["activation_key"])))
        return results, store

    results, store = run_build(main_prompt)
    others = {p: run_build(p)[1].layer for p in transfer_prompts if p != main_prompt}
    analysis = run_analysis(
        store.layer,
        store.layers,
        data,
        group_column=group_column,
        other_prompts=others,
        prompt=main_prompt,
        mlp=mlp,
        mlp_hidden=mlp_hidden,
        k_neurons=k_neurons,
        progress=progress,
    )
    key = str(results.manifest["key"])
    analysis.save(analysis_dir(root, key), {"results_key": key, "model": model, "prompt": main_prompt, "limit": limit, "command": command})
    return analysis, results
