"""Between / within groups for a results folder, and the within-group probe beside it.

Two files join a result (each listed in its manifest, with checksums):

``between_within.parquet``
    per (grouping, predictor, layer): the test rows' R², R²_between, R²_within, the
    within-group correlation and the share of R² the groups explain
    (:mod:`core.probe.within`), each with its 95% paired-bootstrap interval
    (``<stat>_lo``, ``<stat>_hi``); predictor "probe" for each layer, "name_only" and
    "group_mean" (layer -1) from the stored baselines. From stored predictions only:
    :func:`add_between_within` (run by ``core.results.upgrade``) needs no model.
``within.parquet`` and ``within_predictions.npy``
    the within-group probe (target: value minus its group's training mean; groups with
    at least ``MIN_GROUP_TRAIN`` training rows): per (predictor, layer, split) its R²,
    alpha and training leave-one-out R², with the test R²'s 95% interval (``lo``,
    ``hi``); predictor "probe" per layer and "name_only" (layer -1); and
    [2, n_entities, n_targets] float32 predictions of the offset by the probe at the
    layer its training rows choose and by the name-only ridge (NaN outside the probe's
    rows). It needs activations: the build writes it, and
    :func:`add_within_probe` adds it to a finished result from its activation cache
    (``python -m core.results.within``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.common.cache import (
    MANIFEST,
    CacheError,
    artifact_dir,
    atomic_dir,
    build_lock,
    read_manifest,
    write_manifest,
)
from core.common.config import ProbeSpec
from core.probe.bootstrap import N_BOOT, SEED, Interval, interval, r2_samples, resample_counts
from core.probe.within import (
    MIN_GROUP_TRAIN,
    STATS,
    WithinFit,
    centred_by_group,
    decomposition_samples,
    fit_within_probes,
    group_codes,
    within_target,
)
from core.results.probe_results import ProbeResults, best_layer_of

log = logging.getLogger(__name__)

BETWEEN_WITHIN = "between_within.parquet"
WITHIN = "within.parquet"
WITHIN_PREDICTIONS = "within_predictions.npy"
WITHIN_PREDICTORS: tuple[str, ...] = ("probe", "name_only")

# The groupings each dataset is split by (the first one present with two or more groups
# of at least MIN_GROUP_TRAIN training rows is its within-group probe's); other datasets:
# a space table's container column, a time table's era, century and decade.
GROUPINGS: dict[str, tuple[str, ...]] = {
    "world_places": ("country",),
    "us_places": ("state",),
    "nyc_places": ("borough",),
    "historical_figures": ("era", "century"),
    "artworks": ("era", "decade"),
    "dated_events": ("era", "decade"),
}
SPACE_GROUPINGS = ("borough", "state", "country")
TIME_GROUPINGS = ("era", "century", "decade")


# ------------------------------------------------------------------------- groupings
def labels_of(entities: pd.DataFrame, column: str) -> np.ndarray | None:
    """Each entity's group under `column` ("era" from the year when the table has no era
    column); None when the table cannot be grouped so."""
    if column == "era":
        from core.results.intervals import era_labels

        labels = era_labels(entities)
        return None if labels is None else labels.to_numpy(dtype=object)
    if column not in entities:
        return None
    return entities[column].astype("string").fillna("").astype(str).to_numpy(dtype=object)


def groupings_of(res: ProbeResults) -> list[str]:
    """The groupings of a result that split its test rows into two or more groups."""
    ent = res.entities
    wanted = GROUPINGS.get(res.dataset)
    if wanted is None:
        wanted = SPACE_GROUPINGS if res.kind == "space" else TIME_GROUPINGS
        if res.kind == "space":  # the innermost container only
            wanted = tuple(c for c in wanted if c in ent and ent[c].nunique() > 1)[:1]
    test = ent["is_test"].to_numpy(dtype=bool)
    out = []
    for column in wanted:
        labels = labels_of(ent, column)
        if labels is None:
            continue
        codes, _ = group_codes(labels[test])
        if len(set(codes[codes >= 0].tolist())) >= 2:
            out.append(column)
    return out


def probe_grouping(res: ProbeResults, min_train: int = MIN_GROUP_TRAIN) -> str | None:
    """The grouping the within-group probe reads: the first of :func:`groupings_of` with
    two or more groups of at least `min_train` training rows."""
    is_test = res.entities["is_test"].to_numpy(dtype=bool)
    y = res.entities[list(res.target_names)].to_numpy(dtype=np.float64)
    for column in groupings_of(res):
        labels = labels_of(res.entities, column)
        assert labels is not None
        target = within_target(y, labels, is_test, min_train)
        if len(target.kept_groups) >= 2 and (target.rows & is_test).sum() >= 2:
            return column
    return None


# --------------------------------------------------------------------- decomposition
def _truth(res: ProbeResults) -> tuple[np.ndarray, np.ndarray]:
    y = res.entities[list(res.target_names)].to_numpy(dtype=np.float64)
    return y, res.entities["is_test"].to_numpy(dtype=bool)


def decomposition_table(res: ProbeResults, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Between / within statistics of every grouping, layer and stored baseline, each
    with its 95% interval (one seeded set of resamples of the test rows per result)."""
    y, test = _truth(res)
    predictors: list[tuple[str, int, np.ndarray]] = [
        ("probe", int(layer), np.asarray(res.predictions[i], dtype=np.float64))
        for i, layer in enumerate(res.layers)
    ]
    for name in ("name_only", "group_mean"):
        pred = res.baseline_prediction(name)
        if pred is not None:
            predictors.append((name, -1, np.asarray(pred, dtype=np.float64)))
    stacked = np.stack([p[test] for _, _, p in predictors])
    counts = resample_counts(int(test.sum()), n_boot, SEED)
    rows = []
    for column in groupings_of(res):
        labels = labels_of(res.entities, column)
        assert labels is not None
        codes, names = group_codes(labels[test])
        full = decomposition_samples(y[test], stacked, codes, np.ones((1, len(codes))))[0]
        samples = decomposition_samples(y[test], stacked, codes, counts)
        n_groups = len(set(codes[codes >= 0].tolist()))
        for j, (name, layer, _) in enumerate(predictors):
            row: dict[str, Any] = {
                "grouping": column,
                "predictor": name,
                "layer": layer,
                "n": int((codes >= 0).sum()),
                "n_groups": n_groups,
            }
            for s, stat in enumerate(STATS):
                iv = interval(full[j, s], samples[:, j, s])
                row[stat], row[f"{stat}_lo"], row[f"{stat}_hi"] = iv.point, iv.lo, iv.hi
            rows.append(row)
    return pd.DataFrame(rows)


def load_between_within(res: ProbeResults) -> pd.DataFrame | None:
    """The stored decomposition of a result (None when it has none)."""
    if res.path is None or not (Path(res.path) / BETWEEN_WITHIN).is_file():
        return None
    return pd.read_parquet(Path(res.path) / BETWEEN_WITHIN)


def between_within(res: ProbeResults, n_boot: int = N_BOOT) -> pd.DataFrame:
    """The stored decomposition, else computed now from the stored predictions."""
    stored = load_between_within(res)
    return stored if stored is not None else decomposition_table(res, n_boot)


def default_grouping(res: ProbeResults) -> str | None:
    """The grouping a page splits a result by: the within-group probe's, else the first
    of :func:`groupings_of` (None when the result cannot be grouped)."""
    groupings = groupings_of(res)
    return probe_grouping(res) or (groupings[0] if groupings else None)


def group_offsets(
    res: ProbeResults, layer: int, grouping: str | None = None, min_test: int = 2
) -> pd.DataFrame | None:
    """Per test entity of a group with at least `min_test` test rows: ``name``, ``group``,
    and per target ``true_<t>`` (its value minus its group's true centre) and ``pred_<t>``
    (its prediction at `layer` minus its group's predicted centre); the centres are the
    test rows' group means, as in the decomposition. None when the result cannot be
    grouped by `grouping` (default: :func:`default_grouping`)."""
    grouping = grouping or default_grouping(res)
    labels = labels_of(res.entities, grouping) if grouping else None
    if labels is None:
        return None
    y, test = _truth(res)
    codes, names = group_codes(labels[test])
    sizes = np.bincount(codes[codes >= 0], minlength=len(names))
    codes = np.where((codes >= 0) & (sizes[np.clip(codes, 0, None)] >= min_test), codes, -1)
    pred = np.asarray(res.predictions[res.layer_position(int(layer))], dtype=np.float64)[test]
    true_off = centred_by_group(y[test], codes)
    pred_off = centred_by_group(pred, codes)
    keep = codes >= 0
    frame = pd.DataFrame(
        {
            "name": res.entities["name"].to_numpy()[test][keep],
            "group": np.asarray(names, dtype=object)[codes[keep]] if keep.any() else [],
        }
    )
    for t, target in enumerate(res.target_names):
        frame[f"true_{target}"] = true_off[keep, t]
        frame[f"pred_{target}"] = pred_off[keep, t]
    frame.attrs["grouping"] = grouping
    return frame


def decomposition_of(
    res: ProbeResults,
    layer: int,
    grouping: str | None = None,
    n_boot: int = N_BOOT,
    predictor: str = "probe",
) -> dict[str, Interval] | None:
    """stat -> Interval of one layer's probe (or of a stored baseline: `predictor`
    "name_only" / "group_mean") under one grouping (default: the within probe's, else the
    first): from the stored table, else computed now for that predictor alone."""
    groupings = groupings_of(res)
    grouping = grouping or default_grouping(res)
    if grouping is None or grouping not in groupings:
        return None
    want = int(layer) if predictor == "probe" else -1
    stored = load_between_within(res)
    if stored is not None:
        return decomposition_at(stored, grouping, predictor, want)
    if predictor == "probe":
        pred = np.asarray(res.predictions[res.layer_position(want)], dtype=np.float64)
    else:
        found = res.baseline_prediction(predictor)
        if found is None:
            return None
        pred = np.asarray(found, dtype=np.float64)
    y, test = _truth(res)
    labels = labels_of(res.entities, grouping)
    assert labels is not None
    codes, _ = group_codes(labels[test])
    full = decomposition_samples(y[test], pred[test], codes, np.ones((1, len(codes))))[0, 0]
    samples = decomposition_samples(
        y[test], pred[test], codes, resample_counts(int(test.sum()), n_boot, SEED)
    )[:, 0]
    return {s: interval(full[i], samples[:, i]) for i, s in enumerate(STATS)}


def decomposition_at(
    table: pd.DataFrame, grouping: str, predictor: str = "probe", layer: int = -1
) -> dict[str, Interval] | None:
    """stat -> Interval of one row of a decomposition table (None when absent)."""
    if table.empty:
        return None
    hit = table[
        (table["grouping"] == grouping)
        & (table["predictor"] == predictor)
        & (table["layer"] == layer)
    ]
    if hit.empty:
        return None
    row = hit.iloc[0]
    return {s: Interval(float(row[s]), float(row[f"{s}_lo"]), float(row[f"{s}_hi"])) for s in STATS}


# ------------------------------------------------------------------ within-group probe
@dataclass(frozen=True)
class WithinProbe:
    """A stored within-group probe: its table, its chosen layer and its predictions."""

    grouping: str
    table: pd.DataFrame
    layer: int  # chosen on training rows
    predictions: np.ndarray  # [2, n, T]: probe at `layer`, name-only
    offset: np.ndarray  # [n, T] the target (NaN outside the rows)
    rows: np.ndarray  # [n] bool
    n_groups: int

    def curve(self) -> pd.DataFrame:
        """Per layer: ``layer``, test ``r2``, ``lo``, ``hi``."""
        t = self.table
        t = t[(t["predictor"] == "probe") & (t["split"] == "test")]
        return t[["layer", "r2", "lo", "hi"]].reset_index(drop=True)

    def test_r2(self, predictor: str = "probe", layer: int | None = None) -> Interval:
        """The test R² of the probe (at `layer`, default the chosen one) or of the
        name-only ridge, with its 95% interval."""
        t = self.table
        want = (self.layer if layer is None else layer) if predictor == "probe" else -1
        hit = t[(t["predictor"] == predictor) & (t["split"] == "test") & (t["layer"] == want)]
        if hit.empty:
            return Interval(float("nan"), float("nan"), float("nan"))
        row = hit.iloc[0]
        return Interval(float(row["r2"]), float(row["lo"]), float(row["hi"]))


def within_tables(
    fit: WithinFit, is_test: np.ndarray, n_boot: int = N_BOOT
) -> tuple[pd.DataFrame, int, np.ndarray]:
    """(per predictor/layer/split table, the layer chosen on training LOO R², [2, n, T]
    predictions at it and by the name-only ridge)."""
    rows_mask = fit.target.rows
    is_test = np.asarray(is_test, dtype=bool)
    z = fit.target.offset
    out = []
    test_rows = rows_mask & is_test
    counts = resample_counts(int(test_rows.sum()), n_boot, SEED)
    every = np.concatenate([fit.preds, fit.name_only[None]])  # [L+1, n, T]
    samples = r2_samples(z[test_rows], every[:, test_rows], counts)  # [B, L+1]
    labels = [("probe", layer) for layer in fit.layers] + [("name_only", -1)]
    for j, (name, layer) in enumerate(labels):
        for split, mask in (("train", rows_mask & ~is_test), ("test", test_rows)):
            if mask.sum() < 2:
                continue
            r2 = float(r2_samples(z[mask], every[j, mask], np.ones((1, int(mask.sum()))))[0])
            row: dict[str, Any] = {
                "predictor": name,
                "layer": int(layer),
                "split": split,
                "n": int(mask.sum()),
                "alpha": float(fit.alphas[j]) if name == "probe" else float("nan"),
                "alpha_at_edge": bool(fit.at_edge[j]) if name == "probe" else False,
                "loo_r2": float(fit.loo_r2[j])
                if name == "probe" and split == "train"
                else float("nan"),
                "r2": r2,
                "lo": float("nan"),
                "hi": float("nan"),
            }
            if split == "test":
                iv = interval(r2, samples[:, j])
                row["lo"], row["hi"] = iv.lo, iv.hi
            out.append(row)
    table = pd.DataFrame(out)
    probe_rows = table[table["predictor"] == "probe"]
    layer = best_layer_of(probe_rows)
    pos = fit.layers.index(layer)
    preds = np.stack([fit.preds[pos], fit.name_only]).astype(np.float32)
    return table, layer, preds


def load_within(res: ProbeResults) -> WithinProbe | None:
    """The stored within-group probe of a result (None when it was not built)."""
    if res.path is None:
        return None
    folder = Path(res.path)
    info = res.manifest.get("within")
    if not info or not (folder / WITHIN).is_file() or not (folder / WITHIN_PREDICTIONS).is_file():
        return None
    table = pd.read_parquet(folder / WITHIN)
    preds = np.load(folder / WITHIN_PREDICTIONS, allow_pickle=False)
    column = str(info["grouping"])
    labels = labels_of(res.entities, column)
    if labels is None:
        return None
    y, test = _truth(res)
    target = within_target(y, labels, test, int(info.get("min_train_rows", MIN_GROUP_TRAIN)))
    return WithinProbe(
        column,
        table,
        int(info["layer"]),
        np.asarray(preds, dtype=np.float64),
        target.offset,
        target.rows,
        len(target.kept_groups),
    )


def _stored_layer_rows(store: Any) -> Callable[[int, np.ndarray], np.ndarray]:
    def rows_of(layer: int, rows: np.ndarray) -> np.ndarray:
        return np.asarray(store.layer(layer)[rows], dtype=np.float64)

    return rows_of


def fit_within(
    res: ProbeResults,
    layer_rows: Callable[[int, np.ndarray], np.ndarray],
    spec: ProbeSpec | None = None,
    min_train: int = MIN_GROUP_TRAIN,
    n_boot: int = N_BOOT,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]] | None:
    """The within-group probe of a result from its layers' activations (`layer_rows`):
    (table, predictions, manifest entry); None when no grouping qualifies."""
    column = probe_grouping(res, min_train)
    if column is None:
        return None
    labels = labels_of(res.entities, column)
    assert labels is not None
    y, test = _truth(res)
    target = within_target(y, labels, test, min_train)
    fit = fit_within_probes(
        layer_rows,
        [int(v) for v in res.layers],
        target,
        test,
        list(res.entities["text"].astype(str)),
        spec or res.probe_spec(),
        progress,
    )
    table, layer, preds = within_tables(fit, test, n_boot)
    info = {
        "grouping": column,
        "min_train_rows": int(min_train),
        "layer": int(layer),
        "n_groups": len(target.kept_groups),
        "n_rows": int(target.rows.sum()),
        "n_test": int((target.rows & test).sum()),
        "predictions": list(WITHIN_PREDICTORS),
    }
    return table, preds, info


# ------------------------------------------------------------------------- writing
def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _rewrite(
    folder: Path, writers: dict[str, Callable[[Path], None]], manifest_update: dict[str, Any]
) -> None:
    """Re-save `folder` atomically with the files `writers` write (name -> write(path))
    and the manifest updated; every other file is carried over byte for byte."""
    manifest = {k: v for k, v in read_manifest(folder).items() if k != "files"}
    manifest.update(manifest_update)
    with atomic_dir(folder) as tmp:
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name != MANIFEST and path.name not in writers:
                _link(path, tmp / path.name)
        for name, write in writers.items():
            write(tmp / name)
        write_manifest(tmp, manifest)


def add_between_within(folder: Path, lock: bool = True, force: bool = False) -> bool:
    """Store the decomposition in a results folder (stored predictions only, seconds).
    False when it is already there (and not `force`)."""
    folder = Path(folder)
    if not force and (folder / BETWEEN_WITHIN).is_file():
        return False
    if lock:
        with build_lock(folder.parent.parent, "results", folder.name):
            return add_between_within(folder, lock=False, force=force)
    res = ProbeResults.load(folder, verify=True)
    table = decomposition_table(res)
    if table.empty:
        return False
    _rewrite(
        folder,
        {BETWEEN_WITHIN: lambda p: table.to_parquet(p, index=False)},
        {"between_within": {"groupings": sorted(set(table["grouping"])), "n_boot": N_BOOT}},
    )
    return True


def add_within_probe(
    folder: Path,
    activations: Path | None = None,
    lock: bool = True,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> bool:
    """Fit and store the within-group probe of a finished result from its activation
    cache (`activations`: the cache folder; default: the one its manifest's
    ``activation_key`` names under the same cache root). Refuses a cache of other rows.
    False when it is already there (and not `force`) or when no grouping qualifies."""
    from core.extract.store import ActivationStore

    folder = Path(folder)
    manifest = read_manifest(folder)
    if not force and manifest.get("within") and (folder / WITHIN).is_file():
        return False
    if activations is None:
        key = manifest.get("activation_key")
        if not key:
            raise CacheError(f"{folder}: its manifest names no activation cache")
        activations = artifact_dir(folder.parent.parent, "activations", str(key))
    store = ActivationStore(Path(activations))
    if lock:
        with build_lock(folder.parent.parent, "results", folder.name):
            return _add_within(folder, store, progress)
    return _add_within(folder, store, progress)


def _add_within(folder: Path, store: Any, progress: Callable[[int, int], None] | None) -> bool:
    res = ProbeResults.load(folder, verify=True)
    key = res.manifest.get("activation_key")
    if key and store.manifest.get("key") not in (None, key):
        raise CacheError(
            f"{store.folder}: activations {store.manifest.get('key')}, but {folder.name} was "
            f"fitted on {key}"
        )
    if store.n_entities != len(res.entities):
        raise CacheError(
            f"{store.folder}: {store.n_entities} entities, the results have {len(res.entities)}"
        )
    missing = [int(v) for v in res.layers if int(v) not in store.layers]
    if missing:
        raise CacheError(f"{store.folder}: no layers {missing}")
    found = fit_within(res, _stored_layer_rows(store), progress=progress)
    if found is None:
        log.info("%s: no grouping with two groups of enough training rows", folder.name)
        return False
    table, preds, info = found
    writers: dict[str, Callable[[Path], None]] = {
        WITHIN: lambda p: table.to_parquet(p, index=False),
        WITHIN_PREDICTIONS: lambda p: np.save(p, preds),
    }
    if not (folder / BETWEEN_WITHIN).is_file():
        decomposition = decomposition_table(res)
        if not decomposition.empty:
            writers[BETWEEN_WITHIN] = lambda p: decomposition.to_parquet(p, index=False)
            info_bw = {"groupings": sorted(set(decomposition["grouping"])), "n_boot": N_BOOT}
            _rewrite(folder, writers, {"within": info, "between_within": info_bw})
            return True
    _rewrite(folder, writers, {"within": info})
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.results.within [--cache-root DIR] [--all] [--activations DIR]
    [--force] [FOLDER ...]``: add the between/within decomposition to each result (no
    model) and the within-group probe wherever its activation cache is found."""
    import argparse

    from core.common.cache import default_cache_root, list_artifacts
    from core.results.index import shipped_names

    parser = argparse.ArgumentParser(
        prog="python -m core.results.within",
        description="Add the between/within decomposition (stored predictions only) and the "
        "within-group probe (needs the result's activation cache) to results folders.",
    )
    parser.add_argument("folders", nargs="*", type=Path, help="result folders (default: shipped)")
    parser.add_argument("--cache-root", type=Path, default=None)
    parser.add_argument("--all", action="store_true", help="every result, not only the shipped")
    parser.add_argument(
        "--activations",
        type=Path,
        default=None,
        help="the activation cache folder (one result only; default: the one each "
        "result's manifest names under the cache root)",
    )
    parser.add_argument("--force", action="store_true", help="refit / recompute what is there")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    root = (args.cache_root or default_cache_root()).resolve()
    folders = list(args.folders)
    if not folders:
        folders = [folder for folder, _ in list_artifacts(root, "results")]
        listed = shipped_names(root, "results")
        if not args.all and listed is not None:
            folders = [f for f in folders if f.name in listed]
    if args.activations is not None and len(folders) != 1:
        parser.error("--activations names one result's cache: give exactly one folder")
    n_probe = n_bw = 0
    for folder in folders:
        if add_between_within(folder, force=args.force):
            n_bw += 1
        manifest = read_manifest(folder)
        acts = args.activations or artifact_dir(
            folder.parent.parent, "activations", str(manifest.get("activation_key", "-"))
        )
        if not (Path(acts) / MANIFEST).is_file():
            print(f"no activations ({acts}): {folder.name}", flush=True)
            continue
        done = add_within_probe(folder, acts, force=args.force)
        n_probe += int(done)
        print(f"{'within probe added' if done else 'unchanged'}: {folder.name}", flush=True)
    print(
        f"{n_bw} of {len(folders)} results gained the decomposition, "
        f"{n_probe} the within-group probe"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
