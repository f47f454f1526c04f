"""Lock what the run used: the distributions the traced run opened a file of, and
everything they declare they need.

A venv made for a notebook holds a hundred packages the study's script never imports;
packing them all makes a bundle a hundred times its study. ReproZip's trace says which
files the run opened; a distribution's RECORD says which files are its own.
"""

from __future__ import annotations

import email.parser
import os
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

LEFT_OUT_REASON = "the traced run used none of its files, nor needs it a package it used"


def distribution_files(location: str) -> set[str] | None:
    """Absolute paths of a distribution's files (from its RECORD), or None when it has no
    RECORD to tell (then it is kept: better too much than a broken replay)."""
    dist_info = Path(location)
    record = dist_info / "RECORD"
    if not record.is_file():
        record = dist_info / "installed-files.txt"    # an egg-info install
        if not record.is_file():
            return None
    site = dist_info.parent if dist_info.name.endswith(".dist-info") else dist_info
    files = set()
    for line in record.read_text(encoding="utf-8", errors="replace").splitlines():
        rel = line.rsplit(",", 2)[0] if line.count(",") >= 2 else line
        if rel:
            files.add(os.path.normpath(site / rel))
    return files


def requirements_of(location: str, target_env: dict[str, str]) -> set[str]:
    """Canonical names of what a distribution requires on the target (extras left out)."""
    metadata = Path(location) / "METADATA"
    if not metadata.is_file():
        metadata = Path(location) / "PKG-INFO"
        if not metadata.is_file():
            return set()
    headers = email.parser.Parser().parsestr(
        metadata.read_text(encoding="utf-8", errors="replace"), headersonly=True)
    names = set()
    for text in headers.get_all("Requires-Dist") or []:
        try:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({**target_env, "extra": ""}):
                continue
        except (InvalidRequirement, InvalidMarker, UndefinedEnvironmentName):
            continue
        names.add(canonicalize_name(req.name))
    return names


def target_environment(python_version: str, implementation: str) -> dict[str, str]:
    """Marker values of the replay's target: Linux x86_64 and the run's interpreter."""
    return {"python_version": ".".join(python_version.split(".")[:2]),
            "python_full_version": python_version, "implementation_name": implementation,
            "platform_python_implementation": {"cpython": "CPython",
                                               "pypy": "PyPy"}.get(implementation,
                                                                   implementation),
            "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "platform_machine": "x86_64"}


def used_by_run(dists: list, opened: set[str], target_env: dict[str, str]
                ) -> tuple[list, dict[str, str]]:
    """(kept, left out name -> reason). ``dists`` carry ``key`` and ``location``."""
    by_key = {d.key: d for d in dists}
    opened = {os.path.normpath(p) for p in opened}
    wanted: list[str] = []
    for dist in dists:
        files = distribution_files(dist.location) if dist.location else None
        if files is None or files & opened:
            wanted.append(dist.key)
    kept: set[str] = set()
    while wanted:
        key = wanted.pop()
        if key in kept or key not in by_key:
            continue
        kept.add(key)
        location = by_key[key].location
        wanted.extend(requirements_of(location, target_env) if location else ())
    left_out = {d.name: LEFT_OUT_REASON for d in dists if d.key not in kept}
    return [d for d in dists if d.key in kept], left_out
