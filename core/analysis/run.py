"""Run every analysis on one activation cache and save the ``analysis`` artifact.

Folder layout (``<cache_root>/analysis/<results key>/``, the key of the ordinary
probe results of the same model, dataset, prompt and limit)::

    manifest.json        config (AnalysisConfig), options, layers, group column, prompts,
                         checksums, command
    controls.parquet     layer, control, split, n, r2, proximity_error, alpha, ... (layer
                         -1: layer-independent controls: train mean, name-only; alpha is
                         the ridge penalty on probe rows, the chosen weight decay on mlp rows)
    holdout.parquet      layer, column, block, n, heldout_/nominal_ proximity, the held-out
                         proximity of each reference (heldout_name_only_proximity, ...)
    heldout_pred.npy     [n_holdout_layers, n_entities, n_targets] float32 (NaN outside
                         blocks; the first hold-out column, manifest group_column)
    targets.npy          [n_entities, n_targets] float64 and is_test.npy [n_entities] bool:
                         the rows every per-entity array below is scored on
    holdout_errors.npy   [n_holdout_layers, n_columns, 4, n_entities] float32 per-entity
                         proximity error (manifest holdout_columns, holdout_error_kinds:
                         probe held out, name_only held out, train_mean held out, nominal;
                         NaN outside the blocks, nominal on the blocks' test rows only)
    heldout_ref_pred.npy [n_columns, 2, n_entities, n_targets] float32 held-out predictions of
                         the references fitted without each block (manifest
                         holdout_references; NaN outside the blocks)
    mlp_pred.npy         [n_mlp_layers, n_entities, n_targets] float32 MLP probe and
    ridge_pred.npy       the ridge probe of the same rows (manifest mlp_fitted_layers)
    transfer_pred.npy    [n_transfer_layers, P, P, n_test, n_targets] float32 test predictions
                         of the probe trained on prompt i read on prompt j (manifest prompts)
    neurons.parquet      layer, target, rank, neuron, spearman, basis ("mlp": MLP neurons,
                         "residual": residual-stream dimensions; also manifest neuron_basis)
    neuron_acts.npy      [len(neurons), n_entities] float16 activation of each listed neuron
    transfer.parquet     layer, train_prompt, apply_prompt, r2, proximity_error
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.analysis.controls import constant_controls, layer_controls, split_rows
from core.analysis.holdout import ERROR_KINDS, REFERENCES, block_references, hold_out_blocks
from core.analysis.mlp import FOLDS, MAX_EXTENSIONS, WEIGHT_DECAYS, fit_mlp_probe
from core.analysis.neurons import COLUMNS as NEURON_COLUMNS
from core.analysis.neurons import top_neurons
from core.analysis.transfer import transfer_matrix
from core.common.cache import (
    CacheError,
    artifact_dir,
    atomic_dir,
    read_manifest,
    verify_files,
    write_manifest,
)
from core.common.config import AnalysisConfig, BuildConfig, command_line, config_argv
from core.data.schema import EntityDataset
from core.results.probe_results import best_layer_of

log = logging.getLogger(__name__)

ARTIFACT = "analysis"
TABLES = ("controls", "holdout", "neurons", "transfer")
ARRAYS = ("heldout_pred", "neuron_acts")
# Per-entity arrays the verdicts' paired bootstrap reads (absent from older analyses).
OPTIONAL_ARRAYS = (
    "targets",
    "is_test",
    "holdout_errors",
    "heldout_ref_pred",
    "mlp_pred",
    "ridge_pred",
    "transfer_pred",
)
FLOAT16_CLIP = 65000.0

LayerSource = Callable[[int], np.ndarray]
Progress = Callable[[str, int, int], None]


def analysis_dir(cache_root: Path, results_key: str) -> Path:
    """Where the analysis of one results key lives (through the one key->path function)."""
    return artifact_dir(cache_root, ARTIFACT, results_key)


def analyze_command(
    model: str,
    dataset: str,
    prompt: str | None = None,
    limit: int | None = None,
    options: AnalysisConfig | None = None,
    dtype: str = "auto",
) -> str:
    """The ``python -m core analyze`` line of one build's selection with `options`."""
    build = BuildConfig(model, dataset, prompt=prompt, limit=limit, dtype=dtype).argv(
        build_only=False
    )
    return command_line(["analyze", *build, *config_argv(options or AnalysisConfig())])


@dataclass(eq=False)
class AnalysisResults:
    controls: pd.DataFrame
    holdout: pd.DataFrame
    heldout_pred: np.ndarray  # [n_holdout_layers, n, T]
    neurons: pd.DataFrame
    neuron_acts: np.ndarray  # [len(neurons), n]
    transfer: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    targets: np.ndarray | None = None  # [n, T] the rows scored
    is_test: np.ndarray | None = None  # [n] bool
    holdout_errors: np.ndarray | None = None  # [n_holdout_layers, n_columns, 4, n]
    heldout_ref_pred: np.ndarray | None = None  # [n_columns, 2, n, T]
    mlp_pred: np.ndarray | None = None  # [n_mlp_layers, n, T]
    ridge_pred: np.ndarray | None = None  # [n_mlp_layers, n, T]
    transfer_pred: np.ndarray | None = None  # [n_transfer_layers, P, P, n_test, T]

    @property
    def n_entities(self) -> int:
        return int(self.manifest.get("n_entities") or self.neuron_acts.shape[1])

    @property
    def holdout_layers(self) -> list[int]:
        return [int(v) for v in self.manifest.get("holdout_layers", [])]

    @property
    def group_column(self) -> str | None:
        value = self.manifest.get("group_column")
        return str(value) if value else None

    @property
    def holdout_columns(self) -> list[str]:
        """The block families held out, in `holdout_errors`' order."""
        return [str(v) for v in self.manifest.get("holdout_columns", [])]

    @property
    def mlp_layers(self) -> list[int]:
        """The layers of `mlp_pred` and `ridge_pred`."""
        return [int(v) for v in self.manifest.get("mlp_fitted_layers", [])]

    @property
    def prompts(self) -> list[str]:
        """The transfer matrix's prompts, in `transfer_pred`'s order (the analysed first)."""
        return [str(v) for v in self.manifest.get("prompts", [])]

    def save(self, folder: Path, extra_manifest: dict[str, Any] | None = None) -> Path:
        folder = Path(folder)
        with atomic_dir(folder) as tmp:
            for name in TABLES:
                getattr(self, name).reset_index(drop=True).to_parquet(
                    tmp / f"{name}.parquet", index=False
                )
            np.save(tmp / "heldout_pred.npy", np.asarray(self.heldout_pred, dtype=np.float32))
            acts = np.clip(
                np.asarray(self.neuron_acts, dtype=np.float32), -FLOAT16_CLIP, FLOAT16_CLIP
            )
            np.save(tmp / "neuron_acts.npy", acts.astype(np.float16))
            for name in OPTIONAL_ARRAYS:
                value = getattr(self, name)
                if value is None:
                    continue
                dtype = {"targets": np.float64, "is_test": np.bool_}.get(name, np.float32)
                np.save(tmp / f"{name}.npy", np.asarray(value, dtype=dtype))
            manifest = {**self.manifest, **(extra_manifest or {}), "artifact": ARTIFACT}
            write_manifest(tmp, manifest)
        self.path = folder
        self.manifest = read_manifest(folder)
        return folder

    @classmethod
    def load(cls, folder: Path, verify: bool = False) -> AnalysisResults:
        folder = Path(folder)
        manifest = read_manifest(folder)
        if manifest.get("artifact") != ARTIFACT:
            raise CacheError(f"{folder}: not an analysis artifact")
        if verify:
            verify_files(folder, manifest, str(manifest.get("command", "")))
        try:
            tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}
            arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in ARRAYS}
            arrays |= {
                name: np.load(folder / f"{name}.npy", allow_pickle=False)
                for name in OPTIONAL_ARRAYS
                if (folder / f"{name}.npy").is_file()
            }
        except (OSError, ValueError) as exc:
            raise CacheError(
                f"{folder}: unreadable analysis ({exc}); "
                f"rebuild with: {manifest.get('command', '')}"
            ) from exc
        return cls(**tables, **arrays, manifest=manifest, path=folder)


# The paper's hold-out blocks per dataset (country, state, borough, death century,
# decade, year); entity type is held out as a second run where a dataset has it.
PAPER_BLOCKS: dict[str, str] = {
    "world_places": "country",
    "us_places": "state",
    "nyc_places": "borough",
    "historical_figures": "century",
    "artworks": "decade",
    "headlines": "group",  # the calendar year
    "dated_events": "decade",
    "paper_world_place": "country",
    "paper_us_place": "state",
    "paper_nyc_place": "borough",
    "paper_historical_figure": "century",
    "paper_art": "decade",
}


def best_train_layer(controls: pd.DataFrame) -> list[int]:
    """[the layer whose probe has the best training leave-one-out R²] (test rows unused)."""
    try:
        return [best_layer_of(controls[controls["control"] == "probe"])]
    except ValueError:
        return []


def holdout_columns(dataset: EntityDataset, group_column: str | None) -> list[str]:
    """The block columns: the one asked for, else the paper's block for this dataset (else
    its group column), then entity type when the dataset has more than one."""
    wanted = (
        (group_column,) if group_column else (PAPER_BLOCKS.get(dataset.name), dataset.group_column)
    )
    columns = [c for c in wanted if c and c in dataset.frame][:1]
    types = dataset.frame.get("entity_type")
    same_as_types = bool(columns) and types is not None and dataset.frame[columns[0]].equals(types)
    if group_column is None and types is not None and types.nunique() > 1 and not same_as_types:
        columns.append("entity_type")
    return list(dict.fromkeys(columns))


def run_analysis(
    activations: LayerSource,
    layers: Sequence[int],
    dataset: EntityDataset,
    config: AnalysisConfig | None = None,
    *,
    other_prompts: Mapping[str, LayerSource] | None = None,
    prompt: str = "",
    neuron_activations: LayerSource | None = None,
    progress: Progress | None = None,
) -> AnalysisResults:
    """Every analysis on one dataset's activations (`activations(layer)` -> [n, d]), with
    the options of `config` (default `AnalysisConfig()`; recorded in the manifest's
    "config").

    config.holdout_layers: layers for the block hold-out and prompt transfer (default:
    the layer where the ordinary probe's training leave-one-out R² is best).
    config.group_column: the block column (default: `holdout_columns`).
    config.mlp_cv: "reference" chooses the MLP probe's weight decay and width once, by
    inner CV on the training rows of the layer with the best ridge training LOO R² (a
    coordinate search on log grids that starts at widths mlp_hidden / 4, mlp_hidden,
    4 mlp_hidden and extends a grid whose edge is chosen, `core.analysis.mlp`), and
    reuses them at every layer; "every_layer" runs that search at each layer (slow).
    config.mlp_layers: the layers the MLP probe is fitted at (default: every layer); the
    reference layer is always among them. (`rows`, `transfer_prompts` and `mlp_depths`
    are read by `core.analysis.build.analyze`, which prepares these arguments.)

    other_prompts: prompt -> activation source of the same entities under another prompt
    (for transfer; `prompt` names the main one). neuron_activations: layer -> [n, d_mlp]
    MLP hidden activations of the same entities
    (``core.extract.mlp_hidden.MlpHiddenSource``); the neurons are then MLP neurons
    (basis "mlp"), else residual-stream dimensions of `activations` (basis "residual").
    """
    config = config or AnalysisConfig()
    seed, mlp_hidden, mlp_layers = config.seed, config.mlp_hidden, config.mlp_layers
    y = dataset.targets()
    is_test = dataset.is_test()
    names = dataset.target_names
    kind = dataset.kind
    texts = [str(t) for t in dataset.frame["text"]]
    control_rows: list[dict[str, object]] = constant_controls(texts, y, is_test, names, kind)
    neuron_tables, neuron_acts = [], []
    basis = "mlp" if neuron_activations is not None else "residual"
    nominal: dict[int, np.ndarray] = {}
    for i, layer in enumerate(layers):
        x = np.asarray(activations(layer), dtype=np.float64)
        rows, pred = layer_controls(x, y, is_test, names, kind, layer, seed)
        control_rows += rows
        nominal[layer] = pred
        units = x if neuron_activations is None else np.asarray(neuron_activations(layer))
        if len(units) != len(y):
            raise ValueError(
                f"layer {layer}: {len(units)} rows of neuron activations, {len(y)} entities"
            )
        # ranked on training rows only
        table = top_neurons(
            units[~is_test], y[~is_test], names, layer, config.k_neurons, basis=basis
        )
        neuron_tables.append(table)
        neuron_acts.append(units[:, table["neuron"].to_numpy()].T)
        if progress:
            progress("layers", i + 1, len(layers))
        log.info("analysis: layer %d done", layer)
    mlp_info: dict[str, Any] = {}
    mlp_preds: list[np.ndarray] = []
    fitted: list[int] = []
    widths = (max(1, mlp_hidden // 4), mlp_hidden, mlp_hidden * 4)
    if config.mlp and len(layers):
        # The weight decay and width are chosen by inner CV on the training rows of one
        # reference layer (the ridge's best training LOO layer) and reused at every layer:
        # a search per layer (~20 fits) would take hours on a CPU for a 30-layer model.
        reference = (best_train_layer(pd.DataFrame(control_rows)) or [int(layers[-1])])[0]
        tuned = fit_mlp_probe(
            activations(reference), y, is_test, hidden=mlp_hidden, widths=widths, seed=seed
        )
        mlp_info = {
            "mlp_cv_layer": int(reference),
            "mlp_weight_decay": tuned.alpha,  # at the reference layer (each mlp row: alpha)
            "mlp_hidden": tuned.hidden,
            "mlp_cv_mse": [float(v) for v in tuned.cv_mse],  # per decay at the chosen width
            "mlp_weight_decays": list(tuned.alphas),
            "mlp_widths": list(tuned.widths),
            "mlp_alpha_edge": tuned.alpha_edge,
            "mlp_width_edge": tuned.width_edge,
            "mlp_cv": [[a, w, v] for a, w, v in tuned.cv],
        }
        fitted = [v for v in layers if mlp_layers is None or v in mlp_layers or v == reference]
        for i, layer in enumerate(fitted):
            if layer == reference:
                fit = tuned
            else:
                x = np.asarray(activations(layer), dtype=np.float64)
                every = config.mlp_cv == "every_layer"
                fit = fit_mlp_probe(
                    x,
                    y,
                    is_test,
                    hidden=tuned.hidden,
                    alphas=WEIGHT_DECAYS if every else (tuned.alpha,),
                    widths=widths if every else None,
                    seed=seed,
                )
            mlp_preds.append(fit.predictions)
            control_rows += split_rows(
                y,
                fit.predictions,
                is_test,
                names,
                kind,
                layer=layer,
                control="mlp",
                alpha=fit.alpha,
                hidden=fit.hidden,
                edge="*" if fit.at_edge else "",
            )
            if progress:
                progress("mlp", i + 1, len(fitted))
    controls = pd.DataFrame(control_rows)
    holdout_layers = (
        best_train_layer(controls)
        if config.holdout_layers is None
        else [int(v) for v in config.holdout_layers]
    )
    columns = holdout_columns(dataset, config.group_column)
    references = (
        block_references(texts, y, {c: dataset.frame[c] for c in columns}, is_test)
        if holdout_layers and columns
        else {}
    )
    holdout_tables, heldout_preds, transfer_tables = [], [], []
    errors: list[np.ndarray] = []
    transfer_preds: list[np.ndarray] = []
    prompts = [prompt or "main", *sorted(other_prompts or {})]
    for i, layer in enumerate(holdout_layers):
        x = np.asarray(activations(layer), dtype=np.float64)
        layer_errors = []
        for column in columns:
            held = hold_out_blocks(
                x,
                y,
                dataset.frame[column],
                is_test,
                names,
                kind,
                nominal.get(layer),
                references=references.get(column),
            )
            table = held.table
            table.insert(0, "column", column)
            table.insert(0, "layer", layer)
            holdout_tables.append(table)
            layer_errors.append(held.error_matrix())
            if column == columns[0]:
                heldout_preds.append(held.heldout)
        errors.append(np.stack(layer_errors) if layer_errors else np.zeros((0, 4, len(y))))
        if other_prompts:
            sources = {prompts[0]: x}
            sources |= {p: np.asarray(other_prompts[p](layer), np.float64) for p in prompts[1:]}
            table, pred = transfer_matrix(sources, y, is_test, names, kind, layer)
            transfer_tables.append(table)
            transfer_preds.append(pred)
        if progress:
            progress("hold-out", i + 1, len(holdout_layers))
    n, n_t = len(y), len(names)
    return AnalysisResults(
        controls=controls,
        holdout=pd.concat(holdout_tables, ignore_index=True)
        if holdout_tables
        else pd.DataFrame(
            columns=["layer", "column", "block", "n", "heldout_proximity", "nominal_proximity"]
        ),
        heldout_pred=np.stack(heldout_preds)
        if heldout_preds
        else np.zeros((0, n, n_t), dtype=np.float32),
        neurons=pd.concat(neuron_tables, ignore_index=True)
        if neuron_tables
        else pd.DataFrame(columns=NEURON_COLUMNS),
        neuron_acts=np.concatenate(neuron_acts)
        if neuron_acts
        else np.zeros((0, n), dtype=np.float32),
        transfer=pd.concat(transfer_tables, ignore_index=True)
        if transfer_tables
        else pd.DataFrame(
            columns=["layer", "train_prompt", "apply_prompt", "r2", "proximity_error"]
        ),
        targets=np.asarray(y, dtype=np.float64).reshape(n, n_t),
        is_test=np.asarray(is_test, dtype=bool),
        holdout_errors=np.stack(errors) if errors and heldout_preds else None,
        heldout_ref_pred=np.stack(
            [np.stack([references[c][r] for r in REFERENCES]) for c in columns]
        )
        if references and heldout_preds
        else None,
        mlp_pred=np.stack(mlp_preds) if mlp_preds else None,
        ridge_pred=np.stack([nominal[v] for v in fitted]) if mlp_preds else None,
        transfer_pred=np.stack(transfer_preds) if transfer_preds else None,
        manifest={
            "kind": kind,
            "target_names": list(names),
            "layers": [int(v) for v in layers],
            "holdout_layers": [int(v) for v in holdout_layers] if heldout_preds else [],
            "transfer_layers": [int(v) for v in holdout_layers] if transfer_tables else [],
            "group_column": columns[0] if heldout_preds else None,
            "holdout_columns": list(columns) if heldout_preds else [],
            "holdout_error_kinds": list(ERROR_KINDS),
            "holdout_references": list(REFERENCES),
            "mlp_fitted_layers": [int(v) for v in fitted] if mlp_preds else [],
            "prompts": prompts,
            "n_entities": int(n),
            "dataset": dataset.name,
            "dataset_hash": dataset.content_hash,
            "neuron_basis": basis,
            **mlp_info,
            "config": config.to_dict(),
            "options": {  # the MLP search's fixed grids (and, as analyses before "config"
                # recorded them, the options that are also in "config")
                "mlp": config.mlp,
                "mlp_hidden": mlp_hidden,
                "mlp_weight_decays": list(WEIGHT_DECAYS),
                "mlp_max_extensions": MAX_EXTENSIONS,
                "mlp_folds": FOLDS,
                "mlp_cv": config.mlp_cv,
                "mlp_layers": None if mlp_layers is None else [int(v) for v in mlp_layers],
                "k_neurons": config.k_neurons,
                "seed": seed,
            },
        },
    )
