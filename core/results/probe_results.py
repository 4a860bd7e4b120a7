"""ProbeResults: everything the dashboard draws, saved without activations.

Folder layout (``cache/results/<key>/``)::

    manifest.json       resolved spec, model/dataset info, checksums, command
    entities.parquet    one row per entity: name, text, targets, is_test, groups; kept
                        once per content in ``results/_shared/<sha256>.parquet``
                        (every model on a dataset has the same table) and listed in the
                        manifest's "shared_files"; an own copy in the folder also loads
    metrics.parquet     one row per (layer, split): alpha, r2, r2_<t>, spearman_<t>,
                        mae_<t>, and for space km_mean, km_median, proximity_error
    predictions.npy     [n_layers, n_entities, n_targets]: float16 minus a per-target
                        offset (manifest "prediction_offset") when float16's step there
                        is at most 1% of the target's spread, else float32 in target
                        units; loaded back as target units (see `encode_predictions`)
    coef.npy            [n_layers, n_targets, d_model] float32, target units
    intercept.npy       [n_layers, n_targets] float32
    alphas.npy          [n_layers] float64, the ridge penalty chosen per layer
    baselines.parquet   one row per (baseline, split): name-only, group-mean and
                        train-mean metrics (`core.probe.baselines`); absent from results
                        built before them
    baseline_predictions.npy
                        [n_baselines, n_entities, n_targets] float32, target units: each
                        baseline's prediction of every entity, names in the manifest's
                        "baseline_predictions"; absent from results built before them
                        (`core.results.upgrade` adds it without the model)
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.common.cache import (
    CacheError,
    artifact_file,
    atomic_dir,
    put_shared,
    read_manifest,
    verify_files,
    write_manifest,
)
from core.common.config import ProbeSpec
from core.data.prompts import compose
from core.probe.globe import GLOBE_AXES, from_globe, to_globe
from core.results.meta import ROWS_KEY, ResultMeta, rows_key_of

if TYPE_CHECKING:
    from core.extract.models import LoadedModel
    from core.probe.ridge import RidgeProbe

ENTITIES = "entities.parquet"
BASELINES = "baselines.parquet"
BASELINE_PREDICTIONS = "baseline_predictions.npy"
FILES = (
    ENTITIES,
    "metrics.parquet",
    "predictions.npy",
    "coef.npy",
    "intercept.npy",
    "alphas.npy",
)


@dataclass(eq=False)
class ProbeResults:
    """Per-layer probes of one (model, dataset, prompt) run."""

    kind: str  # "space" | "time"
    target_names: tuple[str, ...]
    layers: np.ndarray  # [n_layers] block indices (0-based)
    n_model_layers: int
    entities: pd.DataFrame
    predictions: np.ndarray  # [n_layers, n_entities, n_targets]
    coef: np.ndarray  # [n_layers, n_targets, d_model]
    intercept: np.ndarray  # [n_layers, n_targets]
    alphas: np.ndarray  # [n_layers]
    metrics: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    baselines: pd.DataFrame = field(default_factory=pd.DataFrame)
    # baseline name -> [n_entities, n_targets] in target units (empty for older results)
    baseline_preds: dict[str, np.ndarray] = field(default_factory=dict)
    # the rows key computed from `entities` when the manifest lacks one (id, length, key)
    _rows_cache: tuple[int, int, str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    # ----------------------------------------------------------------- queries
    @property
    def meta(self) -> ResultMeta:
        """The typed view of this result's manifest (:class:`ResultMeta`), with its own
        kind, layers and entities; the rows key computed from the entities when the
        manifest predates it."""
        meta = ResultMeta.from_manifest(
            self.manifest,
            kind=self.kind,
            layers=[int(v) for v in self.layers],
            n_entities=len(self.entities),
            n_model_layers=int(self.n_model_layers) or None,
            d_model=int(self.coef.shape[-1]) if self.coef.ndim else None,
            key=self.path.name if self.path is not None else None,
        )
        if not meta.rows_key:
            meta = dataclasses.replace(meta, rows_key=self._entity_rows_key())
        return meta

    def _entity_rows_key(self) -> str:
        ident = (id(self.entities), len(self.entities))
        if self._rows_cache is None or self._rows_cache[:2] != ident:
            self._rows_cache = (*ident, rows_key_of(self.entities))
        return self._rows_cache[2]

    @property
    def model(self) -> str:
        return self.meta.model

    @property
    def dataset(self) -> str:
        return self.meta.dataset

    @property
    def prompt(self) -> str:
        return self.meta.prompt

    @property
    def test_mask(self) -> np.ndarray:
        """[n_entities] bool: the held-out (test) rows."""
        return self.entities["is_test"].to_numpy(dtype=bool)

    def truth(self) -> np.ndarray:
        """[n_entities, n_targets] float64: every entity's true targets."""
        return self.entities[list(self.target_names)].to_numpy(dtype=np.float64)

    def layer_position(self, layer: int) -> int:
        """Index into the stored arrays of a model layer number."""
        hits = np.flatnonzero(self.layers == layer)
        if hits.size == 0:
            raise KeyError(f"layer {layer} not in results (have {self.layers.tolist()})")
        return int(hits[0])

    def probe(self, layer: int) -> RidgeProbe:
        """The fitted ridge of one model layer (also ``results[layer]``), as the build
        fitted it: ``probe.predict(acts)`` on that layer's activations ``[n, d_model]``
        reads the `probe_axes` (lat, lon or a year; x, y, z for a globe probe), and
        ``probe.alpha_`` is its penalty. Its coefficients are the stored float32 ones."""
        from core.probe.ridge import RidgeProbe

        i = self.layer_position(layer)
        probe = RidgeProbe.from_spec(self.probe_spec())
        probe.coef_ = np.asarray(self.coef[i], dtype=np.float64)
        probe.intercept_ = np.asarray(self.intercept[i], dtype=np.float64)
        probe.alpha_ = float(self.alphas[i])
        probe.n_targets_ = probe.coef_.shape[0]
        probe.n_features_in_ = probe.coef_.shape[1]
        probe._y_1d = False
        return probe

    def __getitem__(self, layer: int) -> RidgeProbe:
        """``results[layer]``: :meth:`probe` of that model layer."""
        return self.probe(layer)

    def predictions_at(self, layer: int) -> pd.DataFrame:
        """Entities joined with predicted targets (``pred_<t>``) at one layer."""
        frame = self.entities.copy()
        preds = self.predictions[self.layer_position(layer)].astype(np.float64)
        for j, target in enumerate(self.target_names):
            frame[f"pred_{target}"] = preds[:, j]
        return frame

    def best_layer(self) -> int:
        """The layer chosen on training rows (:func:`best_layer_of`)."""
        return best_layer_of(self.metrics)

    def baseline(self, name: str, metric: str = "r2", split: str = "test") -> float:
        """A baseline's metric ("name_only", "group_mean"); nan when it was not built."""
        table = self.baselines
        if table.empty or metric not in table:
            return float("nan")
        rows = table[(table["baseline"] == name) & (table["split"] == split)]
        return float(rows[metric].iloc[0]) if len(rows) else float("nan")

    def baseline_prediction(self, name: str) -> np.ndarray | None:
        """A baseline's stored prediction of every entity, [n_entities, n_targets] in target
        units ("name_only", "group_mean", "train_mean"); None when it was not stored."""
        pred = self.baseline_preds.get(name)
        return None if pred is None else np.asarray(pred)

    @property
    def baseline_names(self) -> tuple[str, ...]:
        """The baselines whose predictions are stored, in their stored order."""
        return tuple(self.baseline_preds)

    def baseline_values(self, control: ProbeResults | None = None) -> dict[str, float]:
        """Label -> test R² of what this result should be read beside: the name-only and
        group-mean baselines and, given its random-init control, that control's test R²
        at the layer it chooses on its own training rows."""
        group = (self.manifest.get("dataset_info") or {}).get("reference_column")
        values = {
            "names only": self.baseline("name_only"),
            f"{group} mean" if group else "group mean": self.baseline("group_mean"),
        }
        if control is not None:
            values["random init"] = control.metric_at(control.best_layer())
        return values

    def metric_at(self, layer: int, metric: str = "r2", split: str = "test") -> float:
        """One metric of one layer's probe on one split (nan when absent)."""
        rows = self.metrics[(self.metrics["split"] == split) & (self.metrics["layer"] == layer)]
        if rows.empty or metric not in rows:
            return float("nan")
        return float(rows[metric].iloc[0])

    def probe_spec(self) -> ProbeSpec:
        """The probe settings the manifest records (the baselines are fitted with them)."""
        return probe_spec_of(self.manifest)

    @property
    def probe_target(self) -> str:
        """What the probes read: "latlon" (the targets themselves) or "globe" (x, y, z)."""
        return self.meta.target

    @property
    def probe_axes(self) -> tuple[str, ...]:
        """The rows of each layer's coef: the target names, or x, y, z for a globe probe."""
        return GLOBE_AXES if self.probe_target == "globe" else tuple(self.target_names)

    def read_probes(self, activations: np.ndarray) -> np.ndarray:
        """Every layer's raw probe output (in `probe_axes`), shaped as :meth:`predict`'s."""
        acts = np.asarray(activations, dtype=np.float32)
        coef = self.coef.astype(np.float32)
        if acts.ndim == 2:
            return np.einsum("ld,ltd->lt", acts, coef) + self.intercept
        return np.einsum("lnd,ltd->lnt", acts, coef) + self.intercept[:, None, :]

    def predict(self, activations: np.ndarray) -> np.ndarray:
        """Apply every layer's probe.

        activations: [n_layers, d_model] (one entity) or [n_layers, n, d_model];
        returns [n_layers, n_targets] or [n_layers, n, n_targets] in target units (a globe
        probe's x, y, z read back as lat, lon).
        """
        raw = self.read_probes(activations)
        return from_globe(raw) if self.probe_target == "globe" else raw

    @property
    def prompt_text(self) -> str | None:
        """The prefix the texts were built with (None when the results do not record it)."""
        meta = self.meta
        if meta.prompt_text is None and meta.prompt == "empty":
            return ""
        return meta.prompt_text

    def incompatibility(self, loaded: LoadedModel) -> str | None:
        """Why these probes cannot read `loaded`'s activations (None if they can)."""
        d_probe = int(self.coef.shape[-1])
        if loaded.d_model != d_probe:
            return (
                f"the probes expect d_model={d_probe}, but {loaded.name} "
                f"has d_model={loaded.d_model}"
            )
        needed = int(np.max(self.layers)) + 1 if len(self.layers) else 0
        if loaded.n_layers < needed:
            return (
                f"the probes use layer {needed - 1}, but {loaded.name} has {loaded.n_layers} layers"
            )
        from core.extract.activations import start_token_name

        fitted = self.meta.start_token
        here = start_token_name(loaded)
        if fitted not in (None, "auto") and fitted != here:
            return (
                f"the probes were fitted on texts starting with {fitted!r}, but {loaded.name} "
                f"starts them with {here!r}"
            )
        return None

    def predict_names(
        self,
        loaded: LoadedModel,
        names: Sequence[str],
        prompt_text: str | None = None,
        *,
        max_tokens: int = 64,
    ) -> dict[str, np.ndarray]:
        """Typed names -> ``{name: [n_layers, n_targets]}``: every layer's probe on the
        model's activations of ``prompt_text + name`` (default: the results' own prompt).
        ``core.predict_names(loaded, results, names, prompt_text)`` is the same call."""
        if not names:
            return {}
        problem = self.incompatibility(loaded)
        if problem:
            raise ValueError(problem)
        prefix = self.prompt_text if prompt_text is None else prompt_text
        if prefix is None:
            raise ValueError(f"the results do not record prompt {self.prompt!r}: pass prompt_text")
        from core.extract.activations import last_token_activations

        texts = [compose(prefix, name) for name in names]
        layers = [int(v) for v in self.layers]
        acts = last_token_activations(loaded, texts, max_tokens=max_tokens, layers=layers)
        preds = self.predict(acts)  # [n_layers, n_names, n_targets]
        return {name: np.asarray(preds[:, i, :], dtype=np.float64) for i, name in enumerate(names)}

    def to_probe_axes(self, targets: np.ndarray) -> np.ndarray:
        """Targets [..., n_targets] in the coordinates the probes read (`probe_axes`)."""
        return to_globe(targets) if self.probe_target == "globe" else np.asarray(targets)

    # --------------------------------------------------------------------- io
    def save(self, folder: Path, extra_manifest: dict[str, Any] | None = None) -> Path:
        """Write atomically into `folder` (replaced only once complete)."""
        folder = Path(folder)
        stored, offset = encode_predictions(self.predictions, self.entities, self.target_names)
        shared = {ENTITIES: put_shared(folder, entity_table_bytes(self.entities), ".parquet")}
        with atomic_dir(folder) as tmp:
            self.metrics.reset_index(drop=True).to_parquet(tmp / "metrics.parquet", index=False)
            np.save(tmp / "predictions.npy", stored)
            np.save(tmp / "coef.npy", self.coef.astype(np.float32))
            np.save(tmp / "intercept.npy", self.intercept.astype(np.float32))
            np.save(tmp / "alphas.npy", self.alphas.astype(np.float64))
            if not self.baselines.empty:
                self.baselines.reset_index(drop=True).to_parquet(tmp / BASELINES, index=False)
            baseline_names = self.write_baseline_predictions(tmp)
            manifest = dict(self.manifest)
            manifest.update(extra_manifest or {})
            manifest.update(
                {
                    "artifact": "results",
                    "kind": self.kind,
                    "target_names": list(self.target_names),
                    "layers": [int(x) for x in self.layers],
                    "n_model_layers": int(self.n_model_layers),
                    "n_entities": int(len(self.entities)),
                    "d_model": int(self.coef.shape[-1]),
                    "shared_files": shared,
                    "prediction_offset": offset,
                    ROWS_KEY: rows_key_of(self.entities),
                }
            )
            if baseline_names:
                manifest["baseline_predictions"] = baseline_names
            else:
                manifest.pop("baseline_predictions", None)
            write_manifest(tmp, manifest)
        self.path = folder
        self.manifest = read_manifest(folder)
        return folder

    def write_baseline_predictions(self, folder: Path) -> list[str]:
        """Write the stored baselines' predictions into `folder`; their names (none: no file)."""
        if not self.baseline_preds:
            return []
        shape = (len(self.entities), len(self.target_names))
        stacked = np.stack(
            [np.asarray(p, dtype=np.float32).reshape(shape) for p in self.baseline_preds.values()]
        )
        np.save(Path(folder) / BASELINE_PREDICTIONS, stacked)
        return list(self.baseline_preds)

    @classmethod
    def load(cls, folder: Path, verify: bool = False, rebuild_hint: str = "") -> ProbeResults:
        folder = Path(folder)
        manifest = read_manifest(folder)
        if manifest.get("artifact") != "results":
            raise CacheError(f"{folder}: not a results artifact")
        missing = [name for name in FILES if not artifact_file(folder, manifest, name).is_file()]
        if missing:
            hint = rebuild_hint or str(manifest.get("command", ""))
            raise CacheError(
                f"{folder}: missing {missing}" + (f"; rebuild with: {hint}" if hint else "")
            )
        if verify:
            verify_files(folder, manifest, rebuild_hint or str(manifest.get("command", "")))
        try:
            return cls(
                kind=manifest["kind"],
                target_names=tuple(manifest["target_names"]),
                layers=np.asarray(manifest["layers"], dtype=int),
                n_model_layers=int(manifest["n_model_layers"]),
                entities=pd.read_parquet(artifact_file(folder, manifest, ENTITIES)),
                metrics=pd.read_parquet(folder / "metrics.parquet"),
                predictions=decode_predictions(
                    np.load(folder / "predictions.npy", mmap_mode="r", allow_pickle=False),
                    manifest.get("prediction_offset"),
                ),
                coef=np.load(folder / "coef.npy", allow_pickle=False),
                intercept=np.load(folder / "intercept.npy", allow_pickle=False),
                alphas=np.load(folder / "alphas.npy", allow_pickle=False),
                manifest=manifest,
                path=folder,
                baselines=pd.read_parquet(folder / BASELINES)
                if (folder / BASELINES).is_file()
                else pd.DataFrame(),
                baseline_preds=_load_baseline_predictions(folder, manifest),
            )
        except (KeyError, ValueError, OSError) as exc:
            raise CacheError(
                f"{folder}: unreadable results ({exc})"
                + (f"; rebuild with: {rebuild_hint or manifest.get('command', '')}")
            ) from exc


def probe_spec_of(manifest: dict[str, Any]) -> ProbeSpec:
    """The probe settings a results manifest records."""
    probe = dict(manifest.get("probe") or {})
    if "alpha_grid" in probe:
        probe["alpha_grid"] = tuple(probe["alpha_grid"])
    known = {k: v for k, v in probe.items() if k in ProbeSpec.__dataclass_fields__}
    return ProbeSpec(**known)


def _load_baseline_predictions(folder: Path, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    """name -> [n_entities, n_targets] (memory-mapped); empty for results without them."""
    names = manifest.get("baseline_predictions") or []
    path = Path(folder) / BASELINE_PREDICTIONS
    if not names or not path.is_file():
        return {}
    stored = np.load(path, mmap_mode="r", allow_pickle=False)
    expected = (len(names), int(manifest["n_entities"]), len(manifest["target_names"]))
    if stored.shape != expected:
        raise ValueError(f"{BASELINE_PREDICTIONS} has shape {stored.shape}, expected {expected}")
    return {str(name): stored[i] for i, name in enumerate(names)}


def best_layer_of(metrics: pd.DataFrame | None, layers: Sequence[int] | None = None) -> int:
    """The layer whose probe has the best training leave-one-out R² (test rows are
    reported, never used to choose); training R² for results that predate it.

    The one definition of "the best layer". With `layers`, only those are considered and,
    when the metrics carry no training rows for them (or there are no metrics), the last
    of `layers` is returned; without `layers` that is a ValueError.
    """
    train = pd.DataFrame()
    if metrics is not None and {"split", "layer"} <= set(metrics.columns):
        train = metrics[metrics["split"] == "train"]
    if layers is not None and not train.empty:
        train = train[train["layer"].isin([int(v) for v in layers])]
    if train.empty:
        if layers:
            return int(list(layers)[-1])
        raise ValueError("no training-split metrics to choose a layer on")
    metric = "loo_r2" if "loo_r2" in train and train["loo_r2"].notna().any() else "r2"
    return int(train.loc[train[metric].idxmax(), "layer"])


def entity_table_bytes(entities: pd.DataFrame) -> bytes:
    """The entity table as parquet bytes: deterministic, so equal tables share one file.

    zstd at a high level: names and ids are most of the shipped results' size, and the
    table is written once per dataset but read on every dashboard start.
    """
    buffer = io.BytesIO()
    entities.reset_index(drop=True).to_parquet(
        buffer, index=False, compression="zstd", compression_level=19
    )
    return buffer.getvalue()


# float16 rounding must stay far below any probe's error: at R² <= 0.99 the residual
# spread is >= 10% of the target's, so a step of 1% of it (error <= 0.5%) is invisible.
_MAX_STEP_OF_SPREAD = 0.01


def encode_predictions(
    predictions: np.ndarray, entities: pd.DataFrame, target_names: tuple[str, ...]
) -> tuple[np.ndarray, list[float] | None]:
    """Compact storage for predictions: float16 around a per-target offset, or float32.

    Subtracting the median prediction keeps float16's steps small where values are
    far from zero (NYC longitudes near -74 would otherwise round to a 5 km grid, years
    near 2000 to whole years). Returns (array to store, offsets or None for float32).
    """
    preds = np.asarray(predictions, dtype=np.float32)
    offsets = []
    for j, target in enumerate(target_names):
        column = preds[..., j]
        finite = column[np.isfinite(column)]
        offset = float(np.float32(np.median(finite))) if finite.size else 0.0
        spread = (
            float(np.nanstd(np.asarray(entities[target], dtype=np.float64)))
            if target in entities
            else 0.0
        )
        largest = float(np.max(np.abs(finite - offset))) if finite.size else 0.0
        step = float(np.spacing(np.float16(min(largest, 60000.0))))
        if not spread > 0 or largest > 60000.0 or step > _MAX_STEP_OF_SPREAD * spread:
            return preds, None
        offsets.append(offset)
    return (preds - np.asarray(offsets, dtype=np.float32)).astype(np.float16), offsets


def decode_predictions(stored: np.ndarray, offsets: list[float] | None) -> np.ndarray:
    """Target units again; float32 arrays (no offsets) stay memory-mapped."""
    if offsets is None:
        return stored
    return stored.astype(np.float32) + np.asarray(offsets, dtype=np.float32)
