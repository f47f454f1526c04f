"""Double-click support on Linux desktops (freedesktop): ``studypack-gui --register``.

Installs, for the current user only (no root needed), under ``$XDG_DATA_HOME``
(default ``~/.local/share``):

* ``mime/packages/studypack-mime.xml``: the ``application/x-studypack`` type
  (``*.studypack`` glob + the zstd magic), then ``update-mime-database``;
* ``applications/studypack.desktop``: the launcher (``Exec=... %f``), then
  ``update-desktop-database``;
* the icon under ``icons/hicolor/scalable/{apps,mimetypes}/``;
* and makes studypack the default application for the type (``xdg-mime default``).

The files installed are the ones in ``packaging/`` (shipped inside the package as
``studypack_gui/freedesktop/``); only ``Exec=`` is rewritten to the absolute path of
this installation, so double-click works even when the virtualenv is not on PATH.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .backend import UsageError, WriteError

MIME_TYPE = "application/x-studypack"
DESKTOP_ID = "studypack.desktop"
MIME_XML = "studypack-mime.xml"
ICON_NAME = "studypack"
MIME_ICON_NAME = MIME_TYPE.replace("/", "-")

_HERE = Path(__file__).resolve().parent


@dataclass
class RegisterResult:
    installed: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # what a tool said, or why it was skipped


def data_home() -> Path:
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / ".local" / "share"


def _source(name: str) -> Path:
    """The packaging file: from the source tree if run from it, else the shipped copy."""
    for candidate in (_HERE.parent / "packaging" / name, _HERE / "freedesktop" / name,
                      _HERE.parent / "resources" / "icons" / name, _HERE / "icons" / name):
        if candidate.is_file():
            return candidate
    raise UsageError(f"The file {name} is missing from this studypack installation.",
                     "Reinstall studypack.")


def launcher_command() -> str:
    """How the desktop should start this installation of the GUI."""
    script = Path(sys.executable).with_name("studypack-gui")
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script))
    found = shutil.which("studypack-gui")
    if found:
        return shlex.quote(found)
    return f"{shlex.quote(sys.executable)} -m studypack_gui"


def desktop_entry_text(command: str) -> str:
    lines = []
    for line in _source(DESKTOP_ID).read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = f"Exec={command} %f"
        elif line.startswith("TryExec="):
            continue  # the absolute Exec makes it redundant
        lines.append(line)
    return "\n".join(lines) + "\n"


def _run(args: list[str], result: RegisterResult, env: dict | None = None) -> None:
    if shutil.which(args[0]) is None:
        result.messages.append(f"{args[0]} is not installed; skipped.")
        return
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    # update-mime-database exits 0 even when it skipped a file it could not parse
    if proc.returncode != 0 or "Failed to parse" in proc.stderr:
        result.messages.append(f"{' '.join(args)} failed: {proc.stderr.strip() or proc.returncode}")


def _write(target: Path, data: bytes, result: RegisterResult) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        raise WriteError(f"Cannot write {target}: {exc.strerror}.",
                         "Check the permissions of your XDG data folder.") from exc
    result.installed.append(target)


def _targets(home: Path) -> dict[str, Path]:
    icons = home / "icons" / "hicolor" / "scalable"
    return {
        "mime": home / "mime" / "packages" / MIME_XML,
        "desktop": home / "applications" / DESKTOP_ID,
        "app_icon": icons / "apps" / f"{ICON_NAME}.svg",
        "mime_icon": icons / "mimetypes" / f"{MIME_ICON_NAME}.svg",
    }


def register(command: str | None = None) -> RegisterResult:
    """Install the MIME type, launcher and icon for the current user."""
    if not sys.platform.startswith("linux") and not os.environ.get("XDG_DATA_HOME"):
        raise UsageError("--register installs freedesktop files, used on Linux desktops only.",
                         "On macOS and Windows the installer declares the file type.")
    home = data_home()
    result = RegisterResult()
    targets = _targets(home)
    icon = _source(f"{ICON_NAME}.svg").read_bytes()
    _write(targets["mime"], _source(MIME_XML).read_bytes(), result)
    _write(targets["desktop"], desktop_entry_text(command or launcher_command()).encode(), result)
    _write(targets["app_icon"], icon, result)
    _write(targets["mime_icon"], icon, result)
    _run(["update-mime-database", str(home / "mime")], result)
    _run(["update-desktop-database", str(home / "applications")], result)
    if (home / "icons" / "hicolor" / "index.theme").exists():
        _run(["gtk-update-icon-cache", "-q", "-t", str(home / "icons" / "hicolor")], result)
    _run(["xdg-mime", "default", DESKTOP_ID, MIME_TYPE], result)
    return result


def unregister() -> RegisterResult:
    """Remove what :func:`register` installed (nothing else)."""
    home = data_home()
    result = RegisterResult()
    for target in _targets(home).values():
        if target.exists():
            target.unlink()
            result.removed.append(target)
    _run(["update-mime-database", str(home / "mime")], result)
    _run(["update-desktop-database", str(home / "applications")], result)
    return result
