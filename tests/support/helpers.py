"""Paths and helpers the test modules share: the repository, the example study, the
small test studies, and the real `studypack` command in a child process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "resources" / "examples" / "heat-diffusion"
STUDIES = Path(__file__).resolve().parent / "studies"


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real `studypack` command in a child process."""
    return subprocess.run([sys.executable, "-m", "studypack", *map(str, args)], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def copy_example(dest: Path, python: Path, name: str = "heat-diffusion") -> Path:
    """A copy of the example study whose spec points at ``python``."""
    study = dest / name
    shutil.copytree(EXAMPLE, study, ignore=shutil.ignore_patterns(".venv", "results"))
    spec = study / "studypack.toml"
    text = spec.read_text().replace('python = ".venv/bin/python"', f'python = "{python}"')
    spec.write_text(text)
    return study
