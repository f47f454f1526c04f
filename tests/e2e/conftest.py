"""Bundles of the small test studies (tests/support/studies), made once per session with
the real `studypack create` (a real ReproZip trace) and shared by the replay tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import STUDIES, run_cli


@pytest.fixture(scope="session")
def plain_python(tmp_path_factory) -> Path:
    """An empty virtualenv: the small test studies need only the standard library."""
    venv = tmp_path_factory.mktemp("plain-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


def make_study(dest: Path, name: str, python: Path, extra_toml: str = "") -> Path:
    study = dest / name
    shutil.copytree(STUDIES / name, study, ignore=shutil.ignore_patterns("results"))
    spec = study / "studypack.toml"
    spec.write_text(spec.read_text() + f'\n[environment]\nkind = "venv"\npython = "{python}"\n'
                    + extra_toml)
    return study


def create(study: Path, out: Path, *args: str) -> Path:
    result = run_cli("create", study, "-o", out, "-q", *args)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def timestamp_bundle(tmp_path_factory, plain_python) -> Path:
    base = tmp_path_factory.mktemp("timestamp")
    return create(make_study(base, "timestamp", plain_python), base / "timestamp.studypack",
                  "--no-image")


@pytest.fixture(scope="session")
def random_bundle(tmp_path_factory, plain_python) -> Path:
    base = tmp_path_factory.mktemp("random")
    return create(make_study(base, "unseeded-random", plain_python),
                  base / "unseeded-random.studypack", "--no-image")
