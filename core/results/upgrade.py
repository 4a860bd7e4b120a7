"""Add what newer builds store to results built before it, without the model.

Today that is the baselines' per-entity predictions (``baseline_predictions.npy``) and
the baseline table recomputed from them (with the train-mean rows), and the manifest's
rows key (:func:`core.results.meta.rows_key_of`): everything comes from the stored
entity table, so no activation is extracted again. The folder is
rewritten atomically (a temporary copy with the new files, then a rename) and its
manifest's checksums cover the new files; the files already there are copied
byte for byte, so predictions, coefficients and metrics stay exactly as they were.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.common.cache import (
    MANIFEST,
    artifact_file,
    atomic_dir,
    build_lock,
    read_manifest,
    verify_files,
    write_manifest,
)
from core.probe.baselines import baseline_predictions, baseline_table, reference_column
from core.results.meta import ROWS_KEY, rows_key_of
from core.results.probe_results import BASELINE_PREDICTIONS, BASELINES, ENTITIES, ProbeResults

log = logging.getLogger(__name__)


def needs_baselines(folder: Path) -> bool:
    """Whether a results folder lacks its baselines' stored predictions."""
    manifest = read_manifest(Path(folder))
    names = manifest.get("baseline_predictions")
    return not names or not (Path(folder) / BASELINE_PREDICTIONS).is_file()


def needs_rows_key(folder: Path) -> bool:
    """Whether a results folder's manifest lacks its rows key."""
    return not read_manifest(Path(folder)).get(ROWS_KEY)


def needs_upgrade(folder: Path) -> bool:
    """Whether a results folder lacks anything :func:`upgrade_results` adds."""
    return needs_baselines(folder) or needs_rows_key(folder)


def _copy(src: Path, dst: Path) -> None:
    """A hard link where the file system allows (the files are never written in place)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def add_baseline_predictions(folder: Path, lock: bool = True) -> bool:
    """Store the baselines' predictions of every entity in an existing results folder.

    Refits the name-only ridge (seconds to a minute: it reads only the entity texts) and
    the group and train means with the probe settings the manifest records, rewrites
    ``baselines.parquet`` from the same predictions, and re-saves the folder atomically
    with fresh checksums. Returns False when the folder already has them.
    `lock`: hold the results' build lock meanwhile (False when the caller holds it).
    """
    folder = Path(folder)
    if not needs_baselines(folder):
        return False
    if lock:
        with build_lock(folder.parent.parent, "results", folder.name):
            return add_baseline_predictions(folder, lock=False)
    results = ProbeResults.load(folder, verify=True)
    log.info("%s: fitting the baselines' predictions", folder.name)
    preds = baseline_predictions(results.entities, results.target_names, results.probe_spec())
    results.baseline_preds = preds
    table = baseline_table(results.entities, results.target_names, results.kind, predictions=preds)
    manifest = {k: v for k, v in results.manifest.items() if k != "files"}
    manifest[ROWS_KEY] = results.meta.rows_key  # from the entities when it had none
    # the group the group mean averages over can change with the rule (occupation first)
    info = dict(manifest.get("dataset_info") or {})
    info["reference_column"] = reference_column(results.entities)
    manifest["dataset_info"] = info
    with atomic_dir(folder) as tmp:
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name not in (MANIFEST, BASELINES, BASELINE_PREDICTIONS):
                _copy(path, tmp / path.name)
        table.to_parquet(tmp / BASELINES, index=False)
        manifest["baseline_predictions"] = results.write_baseline_predictions(tmp)
        write_manifest(tmp, manifest)
    return True


def add_rows_key(folder: Path, lock: bool = True) -> bool:
    """Write the rows key of an existing results folder's (verified) entity table into
    its manifest, rewritten atomically; every other file is kept byte for byte (hard
    links where the file system allows). Returns False when the manifest has one."""
    folder = Path(folder)
    if not needs_rows_key(folder):
        return False
    if lock:
        with build_lock(folder.parent.parent, "results", folder.name):
            return add_rows_key(folder, lock=False)
    manifest = read_manifest(folder)
    verify_files(folder, manifest, str(manifest.get("command", "")))
    entities = pd.read_parquet(
        artifact_file(folder, manifest, ENTITIES), columns=["name", "is_test"]
    )
    body = {k: v for k, v in manifest.items() if k != "files"}
    body[ROWS_KEY] = rows_key_of(entities)
    with atomic_dir(folder) as tmp:
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name != MANIFEST:
                _copy(path, tmp / path.name)
        write_manifest(tmp, body)
    return True


def upgrade_results(
    folders: list[Path], progress: Callable[[Path, bool], None] | None = None
) -> list[Path]:
    """:func:`add_baseline_predictions` and :func:`add_rows_key` of each folder; the
    folders they changed."""
    changed = []
    for folder in folders:
        added = add_baseline_predictions(folder)
        done = add_rows_key(folder) or added
        if done:
            changed.append(Path(folder))
        if progress:
            progress(Path(folder), done)
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m core.results.upgrade [--cache-root DIR] [--all]``: add the baselines'
    predictions and the rows key to the shipped results (every result folder with --all)."""
    import argparse

    from core.common.cache import default_cache_root, list_artifacts
    from core.results.index import shipped_names

    parser = argparse.ArgumentParser(
        prog="python -m core.results.upgrade",
        description="Store the baselines' predictions and the rows key in results built "
        "before them (no model, no activations; a minute or so per result on 2 cores "
        "when the baselines are missing, a second when only the rows key is).",
    )
    parser.add_argument("--cache-root", type=Path, default=None)
    parser.add_argument("--all", action="store_true", help="every result, not only the shipped")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    root = (args.cache_root or default_cache_root()).resolve()
    folders = [folder for folder, _ in list_artifacts(root, "results")]
    listed = shipped_names(root, "results")
    if not args.all and listed is not None:
        folders = [f for f in folders if f.name in listed]

    def report(folder: Path, done: bool) -> None:
        print(f"{'upgraded' if done else 'up to date'}: {folder.name}", flush=True)

    changed = upgrade_results(folders, report)
    print(f"{len(changed)} of {len(folders)} results gained baseline predictions or a rows key")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
