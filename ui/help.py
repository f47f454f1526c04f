"""Help > User guide (shipped with the app, readable offline) and Help > About."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

from . import backend

GUIDE = Path(__file__).resolve().parent / "guide.md"

# Tests look at the dialogs instead of running them.
shown: Optional[list] = None


def guide_text() -> str:
    try:
        return GUIDE.read_text(encoding="utf-8")
    except OSError:
        return "The user guide is missing from this installation; reinstall studypack."


def show_guide(parent: Optional[QWidget]) -> QDialog:
    dialog = QDialog(parent)
    dialog.setWindowTitle("studypack \u2014 user guide")
    browser = QTextBrowser()
    browser.setOpenExternalLinks(True)
    browser.setMarkdown(guide_text())
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.close)
    layout = QVBoxLayout(dialog)
    layout.addWidget(browser)
    layout.addWidget(buttons)
    screen = parent.screen().availableGeometry() if parent is not None and parent.screen() else None
    dialog.resize(min(760, screen.width()) if screen else 760,
                  min(640, screen.height() - 60) if screen else 640)
    if shown is not None:
        shown.append(("guide", browser.toPlainText()))
        return dialog
    dialog.show()
    return dialog


def about_text() -> str:
    rows = "".join(f"<tr><td>{name}</td><td>{version}</td></tr>"
                   for name, version in backend.versions().items())
    return ("<p><b>studypack</b> packs a research study \u2014 code, data, software "
            "environment and one real run \u2014 into one checksummed bundle, and replays "
            "bundles to check that their results reproduce.</p>"
            f"<table>{rows}</table>")


def show_about(parent: Optional[QWidget]) -> None:
    if shown is not None:
        shown.append(("about", about_text()))
        return
    QMessageBox.about(parent, "About studypack", about_text())
