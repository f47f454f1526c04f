"""Which files of the study folder go into the bundle, in which role."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import UsageError
from .spec import StudySpec


@dataclass(frozen=True)
class StudyFile:
    relpath: str        # POSIX path relative to the study root
    path: Path          # on disk
    size: int
    role: str           # "code" | "data" | "output"


def is_excluded(relpath: Path | str, patterns: list[str]) -> bool:
    rel = PurePosixPath(relpath)
    text = rel.as_posix()
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatchcase(text, pattern) or any(
                fnmatch.fnmatchcase(part, pattern) for part in rel.parts):
            return True
    return False


def _under(rel: str, prefixes: list[str]) -> bool:
    for prefix in prefixes:
        p = prefix.rstrip("/")
        if p in ("", "."):
            return True
        if rel == p or rel.startswith(p + "/"):
            return True
    return False


def walk(root: Path, patterns: list[str]):
    """Yield (relpath, path) of regular files below root, sorted, skipping excludes."""
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_base = base.relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if not is_excluded(rel_base / d, patterns)
                             and not (base / d).is_symlink())
        for name in sorted(filenames):
            rel = rel_base / name
            if is_excluded(rel, patterns):
                continue
            path = base / name
            if path.is_symlink() or not path.is_file():
                continue
            yield rel.as_posix(), path


def collect_study(spec: StudySpec, *, missing_outputs_ok: bool = False
                  ) -> tuple[list[StudyFile], list[StudyFile]]:
    """(inputs, outputs): code and data files needed to run; the run's outputs.

    ``missing_outputs_ok``: a run that failed (packed with --allow-failure) may not have
    written its outputs; that is a warning for the caller, not an error.
    """
    root = spec.root
    for p in spec.data_paths + ([] if missing_outputs_ok else spec.output_paths):
        if not (root / p).exists():
            kind = "data" if p in spec.data_paths else "outputs"
            raise UsageError(f"[{kind}] paths names {p!r}, which does not exist in {root}.")
    referenced = [r.path for r in spec.data_references]
    inputs, outputs = [], []
    for rel, path in walk(root, spec.excludes):
        if rel in referenced:
            continue  # kept outside the bundle by reference (fetch.txt)
        size = path.stat().st_size
        if _under(rel, spec.output_paths):
            outputs.append(StudyFile(rel, path, size, "output"))
        else:
            role = "data" if _under(rel, spec.data_paths) else "code"
            inputs.append(StudyFile(rel, path, size, role))
    return inputs, outputs
