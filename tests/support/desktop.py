"""A fresh Linux desktop profile for the double-click tests: the freedesktop tools
(`xdg-mime`, `update-mime-database`, `gio`) answer what a file is and what opens it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS = ("xdg-mime", "update-mime-database", "gio")
needs_desktop_tools = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS),
                                         reason="needs xdg-utils, shared-mime-info and gio")


@pytest.fixture
def desktop_env(tmp_path, monkeypatch):
    """A fresh user profile: nothing registered yet. GNOME's tools (gio) are what
    xdg-mime asks on a real desktop; the generic fallback (`file`) ignores MIME
    databases altogether."""
    env = dict(os.environ)
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_DIRS="/usr/share", XDG_CURRENT_DESKTOP="GNOME", HOME=str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "data").mkdir()
    (tmp_path / "config").mkdir()
    return env


def query(env, *args) -> str:
    return subprocess.run(["xdg-mime", "query", *args], env=env, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def bundle_like(path: Path) -> Path:
    """The first bytes of a real bundle: the format marker frame, then zstd data."""
    import zstandard
    from studypack.bundle.format import MARKER
    path.write_bytes(MARKER + zstandard.ZstdCompressor().compress(b"studypack" * 100))
    return path


def assert_registered(env, data_home: Path, bundle: Path) -> None:
    """After `studypack-gui --register`: a .studypack file is a studypack bundle, opens
    with studypack by default, and the .desktop entry hands it the file."""
    assert query(env, "filetype", str(bundle)) == "application/x-studypack"
    assert query(env, "default", "application/x-studypack") == "studypack.desktop"
    desktop = (data_home / "applications" / "studypack.desktop").read_text()
    assert "MimeType=application/x-studypack;" in desktop
    exec_line = next(line for line in desktop.splitlines() if line.startswith("Exec="))
    assert exec_line.endswith(" %f") and "studypack" in exec_line
    assert (data_home / "icons/hicolor/scalable/apps/studypack.svg").is_file()
