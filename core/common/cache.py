"""Cache layout, manifests and atomic writes.

Layout under the cache root::

    models/<name>/                  converted safetensors folders
    activations/<key>/              per-layer activations + manifest.json
    results/<key>/                  probe results + manifest.json
    analysis/<results key>/         research analyses of those results (core.analysis)
    datasets/<name>/                built entity tables (parquet)
    <kind>/_shared/<sha256>.<ext>   content-addressed files that several artifacts of one
                                    kind share (a dataset's entity table is the same for
                                    every model); listed under "shared_files" in each
                                    artifact's manifest and checked with its own files

`artifact_dir` is the one function that turns a key into a path; keys are
validated so that no key can escape the cache root.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core.common.hashing import sha256_file

log = logging.getLogger(__name__)

ARTIFACT_KINDS: tuple[str, ...] = (
    "activations",
    "results",
    "models",
    "datasets",
    "downloads",
    "analysis",
    "steering",
)
MANIFEST = "manifest.json"
# Keys must start with a letter or digit, so this folder can never be an artifact.
SHARED = "_shared"
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class CacheError(RuntimeError):
    """A cache artifact is missing, partial or corrupted."""


def default_cache_root() -> Path:
    """`$SPACETIME_CACHE` if set, else `cache/` of the checkout the package runs from
    (beside pyproject.toml), else `./cache` (an installed wheel: not site-packages)."""
    env = os.environ.get("SPACETIME_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return (checkout / "cache").resolve()
    return (Path.cwd() / "cache").resolve()


def validate_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key) or ".." in key:
        raise ValueError(f"invalid cache key {key!r}: use letters, digits, '.', '_' and '-' only")
    return key


def artifact_dir(root: Path, kind: str, key: str) -> Path:
    """The one function that maps (kind, key) to a folder inside the cache root."""
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}; expected one of {ARTIFACT_KINDS}")
    root = Path(root).resolve()
    path = (root / kind / validate_key(key)).resolve()
    if root not in path.parents:
        raise ValueError(f"cache key {key!r} escapes the cache root {root}")
    return path


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {}
    for name in ("numpy", "torch", "transformers", "scikit-learn", "pandas", "gguf"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return versions


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def io_threads() -> int:
    """Threads for file work that runs without the GIL (hashing, copying into memory
    maps): a 7B-sized activation cache (32 files, ~10 GB) then takes seconds on many
    cores, not a minute on one."""
    return max(1, min(8, os.cpu_count() or 1))


def file_checksums(folder: Path, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under `folder` except the manifest (or of `names`)."""
    folder = Path(folder)
    if names is None:
        names = [
            path.relative_to(folder).as_posix()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != MANIFEST
        ]
    with ThreadPoolExecutor(max_workers=io_threads()) as pool:
        digests = list(pool.map(lambda rel: sha256_file(folder / rel), names))
    return {
        rel: {"sha256": digest, "bytes": (folder / rel).stat().st_size}
        for rel, digest in zip(names, digests, strict=True)
    }


def write_manifest(folder: Path, manifest: dict[str, Any], with_checksums: bool = True) -> None:
    """Write `manifest` (plus checksums of every file in `folder`) atomically."""
    body = dict(manifest)
    body.setdefault("created_at", now_iso())
    body.setdefault("library_versions", library_versions())
    if with_checksums:
        body["files"] = file_checksums(folder)
    write_json_atomic(Path(folder) / MANIFEST, body, indent=2, sort_keys=True, default=str)


def write_json_atomic(path: Path, obj: Any, **dump_options: Any) -> None:
    """Write `obj` to a temporary file, fsync it and rename it over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(obj, handle, **dump_options)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_json_or_none(path: Path) -> Any:
    """The parsed file, or None when it is missing or unreadable (a torn write)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise CacheError(f"{folder}: no {MANIFEST}; the artifact is missing or was never finished")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CacheError(f"{path}: manifest is not valid JSON ({exc})") from exc
    return data


def shared_path(folder: Path, name: str) -> Path:
    """Where a shared file `name` listed in the manifest of artifact `folder` lives."""
    if "/" in name or "\\" in name or name.startswith("."):
        raise CacheError(f"{folder}: invalid shared file name {name!r} in the manifest")
    return Path(folder).parent / SHARED / name


def put_shared(folder: Path, data: bytes, suffix: str) -> dict[str, Any]:
    """Store `data` once beside the artifacts of `folder`'s kind, named by its sha256.

    Returns the manifest entry (name, sha256, bytes). A file already there with the
    right checksum is reused; a damaged one is replaced, so a rebuild heals it.
    """
    sha = hashlib.sha256(data).hexdigest()
    path = shared_path(folder, sha + suffix)
    if not (path.is_file() and path.stat().st_size == len(data) and sha256_file(path) == sha):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}-{_owner_tag()}")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return {"name": path.name, "sha256": sha, "bytes": len(data)}


def shared_entries(
    folder: Path, manifest: dict[str, Any]
) -> list[tuple[str, dict[str, Any], Path]]:
    """(file name in the artifact, manifest entry, path) of each shared file it lists."""
    listed = manifest.get("shared_files", {})
    return [
        (rel, meta, shared_path(folder, str(meta["name"]))) for rel, meta in sorted(listed.items())
    ]


def artifact_file(folder: Path, manifest: dict[str, Any], rel: str) -> Path:
    """Path of file `rel` of an artifact: its own copy, else the shared one it lists."""
    own = Path(folder) / rel
    if own.is_file():
        return own
    return next((path for name, _, path in shared_entries(folder, manifest) if name == rel), own)


def _check_file(path: Path, meta: dict[str, Any], hint: str, label: str = "") -> None:
    where = f"{path} ({label})" if label else str(path)
    if not path.is_file():
        raise CacheError(f"{where}: listed in the manifest but missing{hint}")
    if path.stat().st_size != meta["bytes"]:
        raise CacheError(
            f"{where}: size {path.stat().st_size} != {meta['bytes']} in the manifest "
            f"(truncated?){hint}"
        )
    if sha256_file(path) != meta["sha256"]:
        raise CacheError(f"{where}: checksum differs from the manifest (altered?){hint}")


def verify_files(folder: Path, manifest: dict[str, Any], rebuild_hint: str = "") -> None:
    """Check each file's size and checksum (own and shared) against the manifest."""
    hint = f"; rebuild with: {rebuild_hint}" if rebuild_hint else ""
    checks = [
        (path, meta, f"shared {rel} of {Path(folder).name}")
        for rel, meta, path in shared_entries(folder, manifest)
    ]
    checks += [(Path(folder) / rel, meta, "") for rel, meta in manifest.get("files", {}).items()]
    with ThreadPoolExecutor(max_workers=io_threads()) as pool:
        # list() re-raises the first failure in manifest order, so the message is stable
        list(pool.map(lambda check: _check_file(check[0], check[1], hint, check[2]), checks))


def _owner_tag() -> str:
    """``<pid>@<host>`` of this process (host reduced to letters and digits)."""
    host = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40]
    return f"{os.getpid()}@{host}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def remove_stale_tmp(final: Path) -> list[Path]:
    """Delete ``.tmp-<name>-<pid>@<host>-*`` folders left beside `final` by dead processes.

    A process killed inside :func:`atomic_dir` (SIGKILL, power loss) cannot clean up
    after itself; the next writer of the same artifact does, but only for folders of
    this host whose process is gone, so a concurrent writer's folder is never touched.
    """
    final = Path(final)
    if not final.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.tmp-{re.escape(final.name)}-(\d+)@([A-Za-z0-9]*)-[a-z0-9_]+$")
    host = _owner_tag().split("@", 1)[1]
    removed = []
    for sibling in final.parent.iterdir():
        match = pattern.match(sibling.name)
        if not match or not sibling.is_dir() or match.group(2) != host:
            continue
        if not _pid_alive(int(match.group(1))):
            log.info("removing %s, left by a killed writer", sibling)
            shutil.rmtree(sibling, ignore_errors=True)
            removed.append(sibling)
    return removed


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; rename it into place on success.

    A crash leaves only a `.tmp-*` folder, never a half-written `final`; the next
    write of the same artifact removes such leftovers (:func:`remove_stale_tmp`).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-{_owner_tag()}-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


LOCKS = "_locks"


@contextlib.contextmanager
def build_lock(root: Path, kind: str, key: str) -> Iterator[None]:
    """Hold the build of one artifact: a second process building the same key waits
    here, then finds it finished (or resumes it), rather than writing the same partial
    folder at the same time. The kernel drops the lock when its holder dies, so a
    SIGKILLed build never blocks the next one. The lock files (empty) stay in
    ``<kind>/_locks/``; like ``_shared`` that name can never be an artifact key.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): builds are not guarded against each other
        yield
        return
    folder = Path(root) / kind / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{validate_key(key)}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another process is building %s/%s; waiting for it to finish", kind, key)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def folder_stamp(folder: Path) -> str:
    """Names, sizes and modification times of every file in `folder` (cheap: stat only).

    Changes whenever any file is rewritten, so it can key a cached verification.
    """
    folder = Path(folder)
    files = [(path.relative_to(folder).as_posix(), path) for path in sorted(folder.rglob("*"))]
    # a missing or malformed manifest is reported by the verification this stamp keys
    with contextlib.suppress(CacheError, OSError, AttributeError, KeyError, TypeError):
        files += [(rel, path) for rel, _, path in shared_entries(folder, read_manifest(folder))]
    parts = []
    for rel, path in files:
        if path.is_file():
            st = path.stat()
            parts.append(f"{rel}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


def folder_bytes(folder: Path) -> int:
    """Bytes on disk: an unfinished build's layer files are sparse until written."""
    stats = [p.stat() for p in Path(folder).rglob("*") if p.is_file()]
    return sum(min(st.st_size, st.st_blocks * 512) for st in stats)


def list_artifacts(root: Path, kind: str) -> list[tuple[Path, dict[str, Any]]]:
    """Finished artifacts of one kind (those with a manifest), sorted by folder name."""
    base = Path(root) / kind
    found: list[tuple[Path, dict[str, Any]]] = []
    if not base.is_dir():
        return found
    for folder in sorted(base.iterdir()):
        if folder.is_dir() and not folder.name.startswith(".") and (folder / MANIFEST).is_file():
            try:
                found.append((folder, read_manifest(folder)))
            except CacheError as exc:
                log.warning("skipping %s: %s", folder, exc)
    return found


def shared_files(root: Path, kind: str) -> list[tuple[Path, bool]]:
    """The shared files of one artifact kind, each with whether a manifest lists it."""
    folder = Path(root) / kind / SHARED
    if not folder.is_dir():
        return []
    listed = {
        str(meta.get("name"))
        for _, manifest in list_artifacts(root, kind)
        for meta in manifest.get("shared_files", {}).values()
    }
    return [(path, path.name in listed) for path in sorted(folder.iterdir()) if path.is_file()]


def prune_shared(root: Path, kind: str, min_age_s: float = 600.0) -> list[Path]:
    """Delete shared files no finished artifact lists; keep recent ones (a build in
    progress writes its shared files before its manifest)."""
    removed = []
    for path, referenced in shared_files(root, kind):
        if not referenced and time.time() - path.stat().st_mtime > min_age_s:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
