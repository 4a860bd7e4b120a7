"""``python -m core analyze``: build (or reuse) activations and probes, then run the analyses.

Activations stay in the cache (``activations/<key>/``) so a later analysis reuses them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.analysis.run import AnalysisResults, analysis_dir, run_analysis
from core.common.cache import MANIFEST, CacheError, artifact_dir, default_cache_root
from core.common.config import ActivationSpec, AnalysisConfig, BuildConfig
from core.common.depth import layer_at_depth
from core.data.registry import load_dataset
from core.data.schema import EntityDataset
from core.extract.mlp_hidden import MlpHiddenSource
from core.extract.models import ModelError
from core.extract.store import ActivationStore, build_activations, resolve_spec
from core.results.meta import spec_of
from core.results.probe_results import ProbeResults

log = logging.getLogger(__name__)

StageProgress = Callable[[str, int, int], None]


def analyze(
    config: BuildConfig,
    options: AnalysisConfig | None = None,
    *,
    progress: StageProgress | None = None,
    command: str = "",
) -> tuple[AnalysisResults, ProbeResults]:
    """Analyses of the build `config` (its prompt and every transfer prompt) with the
    `options` (default `AnalysisConfig()`), saved beside its probe results.

    `config.layers` restricts the activations (and so the results key) exactly as
    ``python -m core build --layers`` does. `options.rows`: analyse only the build's first
    `rows` entities (datasets are stored in a seeded shuffled order, so this is a seeded
    sample); the other prompts (`options.transfer_prompts`, ("all",): every prompt of the
    dataset) are then built on that sample only, and so are the build's own activations
    when its results kept none (shipped results). `options.mlp_depths`: where the MLP probe
    is fitted, as fractions of the depth (default: every layer); the layer the results
    chose is always among them. The manifest records `options` with these resolved (the
    prompts, the MLP probe's layers).
    """
    from core.results.build import build, load_config_model

    options = options or AnalysisConfig()
    group_column, rows = options.group_column, options.rows

    root = Path(config.cache_root) if config.cache_root else default_cache_root()
    if isinstance(config.dataset, str):
        data = load_dataset(config.dataset, cache_root=root).head(config.limit)
    else:
        data = config.dataset.head(config.limit)
    main_prompt = config.prompt or data.default_prompt
    if group_column and group_column not in data.frame:
        columns = [
            c
            for c in data.frame.columns
            if data.frame[c].dtype == object and c not in ("name", "text")
        ]
        raise ValueError(
            f"dataset {data.name!r} has no column {group_column!r}; grouping columns: {columns}"
        )
    transfer_prompts = options.transfer_prompts
    if transfer_prompts == ("all",):
        transfer_prompts = tuple(sorted(data.prompts))
    for p in transfer_prompts:
        data.prompt_text(p)  # fail early on an unknown prompt
    loaded = load_config_model(config, root)

    sample = data.head(rows)
    n_rows = len(sample.frame)

    def run_build(p: str, on: EntityDataset) -> tuple[ProbeResults, ActivationStore]:
        limit = config.limit if on is data else n_rows
        results = build(
            dataclasses.replace(config, dataset=on, prompt=p, limit=limit, cache_root=root),
            loaded=loaded,
            progress=progress,
            command=command,
        )
        key = str(results.manifest["activation_key"])
        folder = artifact_dir(root, "activations", key)
        if not (folder / MANIFEST).is_file():  # shipped results keep no activations
            spec = resolve_spec(activation_spec(spec_of(results.manifest)), loaded)
            rebuilt = spec.key(on.content_hash, loaded.weights_hash)
            if rebuilt != key:
                raise CacheError(
                    f"rebuilt activations would have key {rebuilt}, the results were made "
                    f"from {key}: rebuild the results with {results.manifest['command']}"
                )
            # only the analysed rows are read: extract those, under the results' own spec
            store = build_activations(spec, sample, loaded, root, command=command)
            return results, store
        return results, ActivationStore(folder)

    results, store = run_build(main_prompt, data)
    others = {p: run_build(p, sample)[1].layer for p in transfer_prompts if p != main_prompt}
    try:  # the paper's neurons: MLP hidden units, read from the model already loaded
        neurons: MlpHiddenSource | None = MlpHiddenSource(
            loaded, sample.texts(main_prompt), store.layers, progress=progress
        )
    except ModelError as exc:
        log.warning("%s; ranking residual-stream dimensions instead", exc)
        neurons = None
    mlp_layers = options.mlp_layers
    if options.mlp_depths is not None:
        picked = depth_layers(store.layers, options.mlp_depths, results)
        mlp_layers = tuple(sorted({*picked, *(mlp_layers or ())}))
    resolved = dataclasses.replace(
        options, transfer_prompts=transfer_prompts, mlp_layers=mlp_layers
    )
    analysis = run_analysis(
        (lambda layer: store.layer(layer)[:n_rows]) if n_rows < len(data.frame) else store.layer,
        store.layers,
        sample,
        resolved,
        other_prompts=others,
        prompt=main_prompt,
        progress=progress,
        neuron_activations=neurons,
    )
    key = str(results.manifest["key"])
    analysis.save(
        analysis_dir(root, key),
        {
            "results_key": key,
            "model": config.model,
            "prompt": main_prompt,
            "limit": config.limit,
            "sample_of": len(data.frame),
            "command": command,
        },
    )
    return analysis, results


def depth_layers(
    layers: Sequence[int], depths: Sequence[float], results: ProbeResults
) -> list[int]:
    """The stored layers nearest each fraction of the depth, and the results' chosen one."""
    picked = {layer_at_depth(layers, results.n_model_layers, d) for d in depths}
    return sorted(picked | {int(results.best_layer())})


def activation_spec(recorded: dict[str, Any]) -> ActivationSpec:
    """The ActivationSpec a results manifest recorded (JSON lists back to tuples)."""
    fields = dict(recorded)
    if fields.get("layers") is not None:
        fields["layers"] = tuple(fields["layers"])
    return ActivationSpec(**fields)
