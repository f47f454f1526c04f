"""Shared fixtures: a real virtualenv with numpy for the example study, and real
bundles made from real ReproZip traces, built once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docker_fixtures import base_image, docker_engine, registry  # noqa: F401 (fixtures)
from tests.support.helpers import copy_example, run_cli

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def study_python(tmp_path_factory) -> Path:
    """A virtualenv with numpy: the example study's own environment (not studypack's)."""
    venv = tmp_path_factory.mktemp("study-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", "numpy"], check=True)
    return venv / "bin" / "python"


@pytest.fixture
def example_study(tmp_path, study_python) -> Path:
    return copy_example(tmp_path, study_python)


@pytest.fixture(scope="session")
def example_bundle(tmp_path_factory, study_python) -> Path:
    """One real bundle of the example study (traced, no image), shared read-only."""
    base = tmp_path_factory.mktemp("example-bundle")
    study = copy_example(base, study_python)
    out = base / "heat-diffusion.studypack"
    result = run_cli("create", study, "-o", out, "--no-image", "-q")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def qapp_cls():
    """GUI tests run inside the real application class (FileOpen handling, windows)."""
    from studypack_gui.app import StudypackApplication
    return StudypackApplication


@pytest.fixture
def immediate_tasks():
    """GUI tasks run at once on the calling thread; dialogs are recorded, not shown."""
    from studypack_gui import dialogs, tasks
    tasks.set_immediate(True)
    dialogs.recorder = []
    dialogs.answers, dialogs.questions = [], []
    yield dialogs.recorder
    tasks.set_immediate(False)
    dialogs.recorder = None
    dialogs.answers, dialogs.questions = None, []


@pytest.fixture
def gui_settings(tmp_path, monkeypatch):
    """The app's settings (recent bundles, replay folder) in a folder of this test."""
    from PySide6.QtCore import QSettings
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "settings"))
    yield tmp_path / "settings"
