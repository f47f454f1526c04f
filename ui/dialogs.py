"""Error dialogs: one sentence for the cause, the hint for the fix, a details pane.

A StudypackError carries the sentence and the hint itself. Anything else is a bug:
it gets the crash dialog, whose details (traceback, versions) can be copied into
a bug report.
"""

from __future__ import annotations

import platform
import sys
import traceback
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

from studypack import __version__
from studypack.errors import Cancelled, StudypackError

# Tests set this to collect dialogs instead of blocking on exec().
recorder: Optional[list] = None


def _versions() -> str:
    try:
        from PySide6 import __version__ as qt_version
    except ImportError:  # pragma: no cover
        qt_version = "?"
    return (f"studypack {__version__}, Python {sys.version.split()[0]}, "
            f"PySide6 {qt_version}, {platform.platform()}")


def error_texts(exc: BaseException, details: str = "") -> tuple[str, str, str]:
    """(title, sentence + hint, details) for an exception, as the dialog shows them."""
    if isinstance(exc, StudypackError):
        body = exc.message if not exc.hint else f"{exc.message}\n\n{exc.hint}"
        more = f"{type(exc).__name__}: {exc.message}"
        if exc.hint:
            more += f"\nHint: {exc.hint}"
        if details and not isinstance(exc, Cancelled):
            more += "\n\n" + details
        return "studypack", body, more
    body = ("studypack met an unexpected error. This is a bug in studypack, not in your "
            "study.\n\nPlease copy the details below into a bug report.")
    tb = details or "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "studypack: unexpected error", body, f"{_versions()}\n\n{tb}"


def show_error(parent: Optional[QWidget], exc: BaseException, details: str = "") -> None:
    """Show ``exc`` to the user; a cancel the user asked for needs no dialog."""
    if isinstance(exc, Cancelled):
        return
    title, body, more = error_texts(exc, details)
    if recorder is not None:
        recorder.append((title, body, more))
        return
    box = QMessageBox(QMessageBox.Icon.Warning if isinstance(exc, StudypackError)
                      else QMessageBox.Icon.Critical, title, body, parent=parent)
    box.setDetailedText(more)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.addButton(QMessageBox.StandardButton.Ok)
    copy = box.addButton("Copy details", QMessageBox.ButtonRole.ActionRole)
    copy.clicked.disconnect()  # keep the dialog open after copying
    copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(f"{body}\n\n{more}"))
    box.exec()


def install_excepthook() -> None:
    """Unexpected exceptions in slots end in the crash dialog instead of stderr only."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        sys.stderr.write(details)
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        try:
            show_error(None, exc, details)
        except Exception:  # pragma: no cover - never recurse into the hook
            previous(exc_type, exc, tb)

    sys.excepthook = hook
