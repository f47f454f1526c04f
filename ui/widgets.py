"""Small widgets shared by the wizard and the replay window."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase, QTextCursor
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from studypack.fsutil import human_size
from studypack.progress import Progress

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
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)

    def add(self, line: str) -> None:
        self.appendPlainText(line.rstrip("\n"))
        self.moveCursor(QTextCursor.MoveOperation.End)


class TaskPanel(QWidget):
    """Progress bar + status line + Cancel for one long operation.

    ``start(func, on_done)`` runs ``func(report, cancel)`` through :func:`tasks.run_task`;
    progress messages also go to ``log`` when one is attached."""

    started = Signal()
    ended = Signal()

    def __init__(self, parent: Optional[QWidget] = None, log: Optional[LogView] = None):
        super().__init__(parent)
        self.log = log
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

    @property
    def running(self) -> bool:
        return self.task is not None and self.task.running

    def start(self, func, on_done, on_error=None) -> None:
        self.bar.setRange(0, 0)
        self.bar.setFormat("")
        self.cancel_button.setEnabled(True)
        self.status.setText("Starting\u2026")
        self.started.emit()

        def error(exc, details):
            from studypack.errors import Cancelled
            self.status.setText("Cancelled." if isinstance(exc, Cancelled)
                                else f"Stopped: {getattr(exc, 'message', exc)}")
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
        self.ended.emit()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.status.setText("Cancelling\u2026")
            self.cancel_button.setEnabled(False)

    def progressed(self, p: Progress) -> None:
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
            self.status.setText(p.message if len(p.message) < 200 else p.message[:197] + "\u2026")
            if self.log is not None:
                self.log.add(p.message)

    def finish(self, text: str) -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.bar.setFormat("done")
        self.status.setText(text)
