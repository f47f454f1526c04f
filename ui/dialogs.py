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

from .backend import Cancelled, StudypackError, explain, versions

# Tests set this to collect dialogs instead of blocking on exec().
recorder: Optional[list] = None


def _versions() -> str:
    return ", ".join(f"{k} {v}" for k, v in versions().items()) + f", {platform.platform()}"


def error_texts(exc: BaseException, details: str = "") -> tuple[str, str, str]:
    """(title, sentence + hint, details) for an exception, as the dialog shows them."""
    explained = explain(exc)
    if explained is not None:
        body = explained.message if not explained.hint else \
            f"{explained.message}\n\n{explained.hint}"
        return explained.title, body, explained.details
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


# Tests answer questions here instead of a blocking dialog: answers are taken in order
# (none left: the last, safe choice), and each question is recorded.
answers: Optional[list] = None
questions: list = []


def ask(parent: Optional[QWidget], title: str, text: str, choices: list[str]) -> Optional[str]:
    """A question with named buttons; the last choice is the safe one (Esc, default).
    Returns the chosen text, or None when the dialog was dismissed."""
    if answers is not None:
        questions.append((title, text, list(choices)))
        return answers.pop(0) if answers else choices[-1]
    box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
    by_button = {}
    for index, choice in enumerate(choices):
        role = (QMessageBox.ButtonRole.RejectRole if index == len(choices) - 1
                else QMessageBox.ButtonRole.AcceptRole if index == 0
                else QMessageBox.ButtonRole.DestructiveRole)
        by_button[box.addButton(choice, role)] = choice
    safe = next(b for b, c in by_button.items() if c == choices[-1])
    box.setDefaultButton(safe)
    box.setEscapeButton(safe)
    box.exec()
    return by_button.get(box.clickedButton())


def inform(parent: Optional[QWidget], title: str, text: str) -> None:
    """A plain message (recorded in tests like errors)."""
    if recorder is not None:
        recorder.append((title, text, ""))
        return
    QMessageBox.information(parent, title, text)
