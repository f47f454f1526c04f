"""The reproduction report: one row per output (reproduced / differs / missing ...),
and below it what differs — a coloured text diff, or the two images side by side."""

from __future__ import annotations

import difflib
import html
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel,
                               QScrollArea, QSplitter, QStackedWidget, QTableWidget,
                               QTableWidgetItem, QTextBrowser, QVBoxLayout, QWidget)

from .backend import human_size, printable

from .widgets import mono_font, wrapped

STATUS_TEXT = {
    "reproduced": ("\u2714 reproduced", "#1a7f37"),
    "differs": ("\u2716 differs", "#cf222e"),
    "missing": ("\u2716 missing", "#cf222e"),
    "new": ("\u26a0 new file", "#9a6700"),
    "ignored": ("\u2013 ignored", "#6e7781"),
    "produced": ("\u2022 produced", "#0969da"),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
# Above this size a text diff would freeze the GUI thread; the details list suffices.
MAX_DIFF_BYTES = 100_000


class ImagePair(QWidget):
    """Expected and actual image, side by side, each with its caption."""

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        self.sides = []
        for caption in ("Original run", "Replay"):
            column = QVBoxLayout()
            title = QLabel(f"<b>{caption}</b>")
            image = QLabel()
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            scroll = QScrollArea()
            scroll.setWidget(image)
            scroll.setWidgetResizable(True)
            column.addWidget(title)
            column.addWidget(scroll, 1)
            layout.addLayout(column, 1)
            self.sides.append(image)

    def show_pair(self, expected: Optional[Path], actual: Optional[Path]) -> None:
        for label, path in zip(self.sides, (expected, actual)):
            pixmap = QPixmap(str(path)) if path and path.is_file() else QPixmap()
            if pixmap.isNull():
                label.setText("(no image)")
            else:
                label.setPixmap(pixmap.scaled(420, 420, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation))


class ReportView(QWidget):
    """``show_result(result, expected_root, actual_root)``: the roots are the study
    roots of the original run and of the replay, where output paths are relative to."""

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.result = None
        self.expected_root: Optional[Path] = None
        self.actual_root: Optional[Path] = None
        self.headline = wrapped("")
        font = self.headline.font()
        font.setPointSize(font.pointSize() + 2)
        font.setBold(True)
        self.headline.setFont(font)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Output", "Result", "Details"])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selected)
        self.diff = QTextBrowser()
        self.diff.setFont(mono_font())
        self.images = ImagePair()
        self.detail = QStackedWidget()
        self.detail.addWidget(self.diff)
        self.detail.addWidget(self.images)
        self.table.setMinimumHeight(60)
        self.detail.setMinimumHeight(60)   # a small screen: both stay, smaller
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.headline)
        layout.addWidget(splitter, 1)

    def clear(self) -> None:
        """No result on screen (a new replay starts, or another bundle opened)."""
        self.result = None
        self.table.setRowCount(0)
        self.headline.setText("")
        self.diff.clear()
        self.detail.setCurrentWidget(self.diff)

    def show_result(self, result, headline: str, expected_root: Optional[Path],
                    actual_root: Optional[Path]) -> None:
        self.result = result
        self.expected_root, self.actual_root = expected_root, actual_root
        reproduced = headline and getattr(result, "compared", True) and all(
            o.status in ("reproduced", "ignored", "new") for o in result.outputs)
        colour = "#1a7f37" if reproduced else "#cf222e"
        self.headline.setStyleSheet(f"color: {colour};")
        self.headline.setText(printable(headline))
        outputs = list(result.outputs)
        self.table.setRowCount(len(outputs))
        for row, output in enumerate(outputs):
            text, colour = STATUS_TEXT.get(output.status, (output.status, "#444444"))
            path_item = QTableWidgetItem(printable(output.path))
            status_item = QTableWidgetItem(text)
            status_item.setForeground(QColor(colour))
            shown = [printable(d) for d in output.details]   # names come from the bundle
            details = "; ".join(shown[:3]) if shown else _size_line(output)
            detail_item = QTableWidgetItem(details)
            detail_item.setToolTip("\n".join(shown))
            for col, item in enumerate((path_item, status_item, detail_item)):
                self.table.setItem(row, col, item)
        if outputs:
            first_bad = next((i for i, o in enumerate(outputs) if o.status in ("differs", "missing")), 0)
            self.table.selectRow(first_bad)

    def status_of(self, path: str) -> Optional[str]:
        if self.result is None:
            return None
        return next((o.status for o in self.result.outputs if o.path == path), None)

    def _selected(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if not rows or self.result is None:
            return
        output = self.result.outputs[min(rows)]
        expected = self.expected_root / output.path if self.expected_root else None
        actual = self.actual_root / output.path if self.actual_root else None
        if output.path.lower().endswith(IMAGE_SUFFIXES):
            self.images.show_pair(expected, actual)
            self.detail.setCurrentWidget(self.images)
            return
        self.detail.setCurrentWidget(self.diff)
        self.diff.setHtml(_diff_html(output, expected, actual))


def _size_line(output) -> str:
    sizes = [human_size(s) for s in (output.expected_size, output.actual_size) if s is not None]
    return " / ".join(sizes)


def _read(path: Optional[Path]) -> Optional[list[str]]:
    if path is None or not path.is_file() or path.stat().st_size > MAX_DIFF_BYTES:
        return None
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError):
        return None


def _diff_html(output, expected: Optional[Path], actual: Optional[Path]) -> str:
    parts = [f"<p><b>{html.escape(printable(output.path))}</b></p>"]
    if output.details:
        parts.append("<ul>" + "".join(f"<li>{html.escape(printable(d))}</li>"
                                      for d in output.details[:20])
                     + "</ul>")
    if output.status == "reproduced":
        parts.append("<p>The replay wrote exactly what the original run wrote"
                     + (f" ({html.escape(output.method)})" if output.method else "") + ".</p>")
        return "".join(parts)
    old, new = _read(expected), _read(actual)
    if old is None or new is None:
        return "".join(parts)
    lines = list(difflib.unified_diff(old, new, "original run", "replay", lineterm="", n=2))
    colours = {"+": "#1a7f37", "-": "#cf222e", "@": "#0969da"}
    body = []
    for line in lines[:2000]:
        colour = colours.get(line[:1], "#222222")
        body.append(f'<span style="color:{colour}">{html.escape(printable(line))}</span>')
    parts.append("<pre>" + "\n".join(body) + "</pre>")
    return "".join(parts)
