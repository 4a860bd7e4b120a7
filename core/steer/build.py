"""``python -m core steer``: build (or reuse) the probes, run the steering evaluation and
save it beside the results (``<cache_root>/steering/<results key>/``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.common.cache import default_cache_root, now_iso
from core.common.config import BuildConfig, SteerConfig
from core.results.build import build, load_config_model
from core.steer.evaluate import evaluate_steering, load_steering, save_steering, steering_dir
from core.steer.report import headline


def run_steering(
    config: BuildConfig,
    options: SteerConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    command: str = "",
) -> Path:
    """Steer along the probes of the build `config` with `options` (default
    `SteerConfig()`); the probes are built first if missing. Returns the saved folder,
    whose manifest records `options` ("config") and the `command` that reruns it."""
    root = Path(config.cache_root) if config.cache_root else default_cache_root()
    loaded = load_config_model(config, root)
    results = build(config, loaded=loaded)
    prompt_text = str(results.manifest.get("prompt_text") or "")  # what the probes read
    summary, examples, facts = evaluate_steering(
        loaded, results, prompt_text, options, progress=progress
    )
    key = str(results.manifest["key"])
    return save_steering(
        steering_dir(root, key),
        summary,
        examples,
        {
            **facts,
            "results_key": key,
            "model": results.model,
            "dataset": results.dataset,
            "prompt": results.prompt,
            "command": command,
            "created_at": now_iso(),
        },
    )


def describe_steering(folder: Path) -> str:
    """What ``python -m core steer`` prints about a saved run: its sample, its cells and
    its pre-registered headline."""
    run = load_steering(folder)
    if run is None:
        return f"steering: nothing saved in {folder}"
    summary, _, manifest = run
    lines = [
        f"{manifest['model']} on {manifest['dataset']}: {manifest['n']} test entities x "
        f"{len(manifest['seeds'])} seeds, question {manifest['question']!r}",
        summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
        headline(run),
        f"steering: {folder}",
    ]
    return "\n".join(lines)
