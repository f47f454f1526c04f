"""Small widgets shared by the wizard and the replay window."""

from __future__ import annotations

import re
from typing import Optional

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFont, QFontDatabase, QGuiApplication, QTextCursor
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from .backend import Cancelled, Progress, human_size, printable
from . import tasks

STATUS_COLOURS = {"ok": "#1a7f37", "bad": "#cf222e", "warn": "#9a6700", "info": "#444444"}

# A live log keeps only the last lines: a chatty run must not grow memory for ever.
LOG_MAX_LINES = 5000


def mono_font() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def heading(text: str, size_delta: int = 4) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setPointSize(font.pointSize() + size_delta)
    font.setBold(True)
    label.setFont(font)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def buddy_label(text: str, buddy: QWidget) -> QLabel:
    """A form label whose &-shortcut focuses ``buddy`` (needed when the field is a layout)."""
    label = QLabel(text)
    label.setBuddy(buddy)
    return label


def wrapped(text: str = "", selectable: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                      | Qt.TextInteractionFlag.LinksAccessibleByMouse)
    return label


class StatusLabel(QLabel):
    """A one-line verdict in colour, with a symbol so it does not rely on colour alone."""

    SYMBOLS = {"ok": "\u2714", "bad": "\u2716", "warn": "\u26a0", "info": "\u2022"}

    def __init__(self, text: str = "", parent: Optional[QWidget] = None):
        super().__init__(text, parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state = "info"

    def set_status(self, state: str, text: str) -> None:
        self.state = state
        colour = STATUS_COLOURS.get(state, "#444444")
        symbol = self.SYMBOLS.get(state, "")
        self.setStyleSheet(f"color: {colour}; font-weight: bold;")
        self.setText(f"{symbol} {text}".strip())


class LogView(QPlainTextEdit):
    """A read-only, monospaced, bounded log that follows its end."""

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setFont(mono_font())
        self.setMaximumBlockCount(LOG_MAX_LINES)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)

    def add(self, line: str) -> None:
        # what a study printed, or a bundle's names: no escape sequence reaches the screen
        self.appendPlainText(printable(line.rstrip("\n"), keep_newlines=True))
        self.moveCursor(QTextCursor.MoveOperation.End)
        self._last_shape = None

    def add_progress(self, line: str) -> None:
        """A progress message: one that only differs from the previous one by its
        numbers ("running… 3 s") replaces it instead of filling the log."""
        shape = re.sub(r"\d+", "#", line)
        if shape == getattr(self, "_last_shape", None):
            cursor = self.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.select(QTextCursor.SelectionType.BlockUnderCursor)
            cursor.removeSelectedText()
        self.add(line)
        self._last_shape = shape


class TaskPanel(QWidget):
    """Progress bar + status line + Cancel for one long operation.

    ``start(func, on_done)`` runs ``func(report, cancel)`` through :func:`tasks.run_task`;
    progress messages also go to ``log`` when one is attached."""

    started = Signal()
    ended = Signal()

    def __init__(self, parent: Optional[QWidget] = None, log: Optional[LogView] = None):
        super().__init__(parent)
        self.log = log
        self.output_lines = 0      # lines of the study's own output streamed so far
        self.task: Optional[tasks.TaskHandle] = None
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("")
        # the bar and Cancel show only while something runs; the status line stays
        self.bar.hide()
        self.cancel_button.hide()
        self.status.hide()

    @property
    def running(self) -> bool:
        return self.task is not None and self.task.running

    def start(self, func, on_done, on_error=None) -> None:
        self.bar.setRange(0, 0)
        self.bar.setFormat("")
        self.cancel_button.setEnabled(True)
        self.bar.show()
        self.cancel_button.show()
        self.set_status("Starting\u2026")
        self.output_lines = 0
        self.started.emit()

        def error(exc, details):
            # the caller shows the cause itself; the panel only says that it stopped
            self.set_status("Cancelled." if isinstance(exc, Cancelled) else "Stopped.")
            if on_error:
                on_error(exc, details)
            else:
                from .dialogs import show_error
                show_error(self.window(), exc, details)

        self.task = tasks.run_task(func, on_done, on_progress=self.progressed, on_error=error,
                                   on_end=self._end)

    def _end(self) -> None:
        self.cancel_button.setEnabled(False)
        if self.bar.maximum() == 0:  # indeterminate until the end
            self.bar.setRange(0, 1)
            self.bar.setValue(1)
        self.bar.hide()
        self.cancel_button.hide()
        self.ended.emit()

    def set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.set_status("Cancelling\u2026")
            self.cancel_button.setEnabled(False)

    def progressed(self, p: Progress) -> None:
        if p.phase == "output":   # a line the study itself printed: for the log only
            if self.log is not None:
                self.log.add(p.message)
            self.output_lines += 1
            return
        if p.total:
            # QProgressBar holds ints: scale byte counts into 0..1000
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * min(p.done, p.total) / p.total))
            amount = (f"{human_size(p.done)} of {human_size(p.total)}" if p.unit == "B"
                      else f"{p.done} of {p.total} {p.unit}")
            self.bar.setFormat(f"{p.phase}: %p%  ({amount})")
        else:
            self.bar.setRange(0, 0)
        if p.message:
            first = p.message.splitlines()[0] if p.message.strip() else p.message
            self.set_status(first if len(first) < 200 else first[:197] + "\u2026")
            if self.log is not None:
                self.log.add_progress(p.message)

    def finish(self, text: str) -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.bar.setFormat("done")
        self.set_status(text)


def open_folder(parent: Optional[QWidget], folder: Path) -> bool:
    """Show ``folder`` in the file manager; without one, say so and copy its path."""
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
        return True
    QGuiApplication.clipboard().setText(str(folder))
    from .dialogs import inform
    inform(parent, "No file manager",
           f"No file manager could open the folder, so here is where it is:\n\n{folder}\n\n"
           "Its path is on the clipboard: paste it into a terminal or a file dialog.")
    return False
