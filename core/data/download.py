"""Downloading a file once into the cache, with its sha256 recorded and verified on reuse."""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from core.common.cache import (
    CacheError,
    artifact_dir,
    atomic_dir,
    read_manifest,
    verify_files,
    write_manifest,
)
from core.data.schema import DatasetError

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total or 0 when unknown)
CHUNK = 1 << 16
MAX_BYTES = 200 * 1024 * 1024


def cached_download_path(url: str, key: str, filename: str, cache_root: Path) -> Path | None:
    """The verified cached copy of `url`, or None when absent, partial or altered."""
    folder = artifact_dir(cache_root, "downloads", key)
    if not (folder / filename).is_file():
        return None
    try:
        manifest = read_manifest(folder)
        if manifest.get("url") != url:
            return None
        verify_files(folder, manifest)
    except CacheError as exc:
        log.warning("re-downloading %s: %s", url, exc)
        return None
    return folder / filename


def download(
    url: str,
    key: str,
    filename: str,
    cache_root: Path,
    progress: ProgressFn | None = None,
    timeout: float = 60.0,
    max_bytes: int = MAX_BYTES,
) -> Path:
    """Fetch `url` into ``<cache_root>/downloads/<key>/<filename>`` unless already there.

    The write is atomic (temporary folder, then rename) and the manifest records the
    URL, size and sha256, which are checked whenever the cached copy is reused.
    """
    cached = cached_download_path(url, key, filename, cache_root)
    if cached is not None:
        return cached
    folder = artifact_dir(cache_root, "downloads", key)
    log.info("downloading %s", url)
    digest = hashlib.sha256()
    done = 0
    try:
        with atomic_dir(folder) as tmp, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0)
            if total > max_bytes:
                raise DatasetError(f"{url}: {total} bytes is over the {max_bytes}-byte limit")
            with open(tmp / filename, "wb") as out:
                while block := response.read(CHUNK):
                    done += len(block)
                    if done > max_bytes:
                        raise DatasetError(f"{url}: more than the {max_bytes}-byte limit")
                    digest.update(block)
                    out.write(block)
                    if progress is not None:
                        progress(done, total)
            if total and done != total:
                raise DatasetError(f"{url}: got {done} of {total} bytes (connection cut?)")
            write_manifest(
                tmp, {"kind": "download", "url": url, "sha256": digest.hexdigest(), "bytes": done}
            )
    except urllib.error.HTTPError as exc:
        raise DatasetError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DatasetError(f"{url}: download failed ({exc})") from exc
    log.info("downloaded %s (%d bytes, sha256 %s)", url, done, digest.hexdigest())
    return folder / filename
