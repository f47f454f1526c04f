"""Page 1: what the study is — title, description, authors, license, keywords.

These become the bundle's metadata, its RO-Crate, and a Zenodo deposit's record.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QHBoxLayout,
                               QHeaderView, QLineEdit, QPlainTextEdit, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from .. import backend
from ..backend import COMMON_LICENSES, Author, UsageError, slugify
from .base import WizardPage, note

AFFILIATION_URL = Qt.ItemDataRole.UserRole

NAME, ORCID, AFFILIATION = range(3)


class AuthorsTable(QWidget):
    """Authors as rows; an ORCID iD is checked as it is typed (bare or as its
    https://orcid.org/ address) and stored in its bare form."""

    def __init__(self, on_change):
        super().__init__()
        self.on_change = on_change
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Name (Family, Given)", "ORCID iD (optional)",
                                              "Affiliation"])
        self.table.horizontalHeaderItem(NAME).setToolTip(
            "Family name, a comma, then given names \u2014 e.g. Lovelace, Ada \u2014 as "
            "citations and archives list them.")
        self.table.horizontalHeaderItem(ORCID).setToolTip(
            "Your own iD from orcid.org: 16 digits such as 0000-000X-XXXX-XXXX, or the "
            "https://orcid.org/… address of your record.")
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setTabKeyNavigation(False)   # Tab leaves the table; arrows move in it
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(ORCID, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(AFFILIATION, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(90)
        self.table.setMaximumHeight(170)
        self.table.itemChanged.connect(self._changed)
        add = QPushButton("&Add author")
        add.clicked.connect(lambda: self.add_author(Author(name=""), edit=True))
        remove = QPushButton("Remove author")
        remove.clicked.connect(self._remove)
        self.problem = note(colour="#cf222e")
        self.names_note = note(colour="#9a6700")
        self.problem.hide()
        self.names_note.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.problem)
        layout.addWidget(self.names_note)

    def set_authors(self, authors: list[Author]) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        self.table.blockSignals(False)
        for author in authors:
            self.add_author(author)
        if not authors:
            self.add_author(Author(name=""))

    def add_author(self, author: Author, edit: bool = False) -> None:
        row = self.table.rowCount()
        self.table.blockSignals(True)
        self.table.insertRow(row)
        for col, value in enumerate((backend.author_label(author), author.orcid,
                                     author.affiliation)):
            self.table.setItem(row, col, QTableWidgetItem(value))
        # not a column, but not lost either: the affiliation's web page (RO-Crate)
        self.table.item(row, NAME).setData(AFFILIATION_URL, author.affiliation_url)
        self.table.blockSignals(False)
        self._changed()
        if edit:
            self.table.setCurrentCell(row, NAME)
            self.table.editItem(self.table.item(row, NAME))

    def _remove(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedItems()}, reverse=True)
        for row in rows or [self.table.currentRow()]:
            if row >= 0:
                self.table.removeRow(row)
        self._changed()

    def _text(self, row: int, col: int) -> str:
        item = self.table.item(row, col)
        return item.text().strip() if item else ""

    def authors(self) -> list[Author]:
        out = []
        for row in range(self.table.rowCount()):
            name = self._text(row, NAME)
            if name:
                orcid, _problem = backend.parse_orcid(self._text(row, ORCID))
                url = self.table.item(row, NAME).data(AFFILIATION_URL) or ""
                out.append(backend.author_from(name, orcid, self._text(row, AFFILIATION), url))
        return out

    def problems(self) -> list[str]:
        found = []
        for row in range(self.table.rowCount()):
            orcid = self._text(row, ORCID)
            _bare, problem = backend.parse_orcid(orcid)
            if problem:
                who = self._text(row, NAME) or f"row {row + 1}"
                found.append(f"ORCID iD of {who}: {problem}")
            if orcid and not self._text(row, NAME):
                found.append(f"Row {row + 1} has an ORCID iD but no name.")
        return found

    def _changed(self, *_):
        self.table.blockSignals(True)
        for row in range(self.table.rowCount()):
            item = self.table.item(row, ORCID)
            if item is None:
                continue
            _bare, problem = backend.parse_orcid(item.text())
            item.setBackground(QBrush(QColor("#ffd7d5")) if problem else QBrush())
            item.setToolTip(problem or "")
        self.table.blockSignals(False)
        self.problem.setText("\n".join(self.problems()))
        self.problem.setVisible(bool(self.problems()))
        notes = backend.name_notes(self.authors())
        self.names_note.setText("\n".join(notes))
        self.names_note.setVisible(bool(notes))
        self.on_change()


class StudyPage(WizardPage):
    TITLE = "The study"
    SUBTITLE = ("Describe the study as a reader should see it. This becomes the bundle's "
                "metadata and, if you deposit it, its Zenodo record.")

    def __init__(self, state):
        super().__init__(state)
        self.title_edit = QLineEdit()
        self.title_edit.textChanged.connect(self._title_changed)
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("Used in file names: letters, digits, '.', '_' and '-'.")
        self.name_edit.textEdited.connect(self._name_edited)
        self.name_edit.textChanged.connect(self._check_name)
        self.description = QPlainTextEdit()
        self.description.setTabChangesFocus(True)
        self.description.setPlaceholderText("What the study does, in a few sentences.")
        self.description.setMaximumHeight(110)
        self.authors = AuthorsTable(self.completeChanged.emit)
        self.license = QComboBox()
        self.license.setEditable(True)
        self.license.addItems(COMMON_LICENSES)
        self.license.setToolTip("An SPDX license identifier. CC-BY-4.0 is common for data and "
                                "papers, MIT or Apache-2.0 for code.")
        self.title_problem = note(colour="#cf222e")
        self.name_problem = note(colour="#cf222e")
        self.title_problem.hide()
        self.name_problem.hide()
        self.keywords = QLineEdit()
        self.keywords.setPlaceholderText("heat equation, numerical methods")
        self._name_was_edited = False
        form = QFormLayout(self.body)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("&Title:", self.title_edit)
        form.addRow("", self.title_problem)
        form.addRow("&Short name:", self.name_edit)
        form.addRow("", self.name_problem)
        form.addRow("&Description:", self.description)
        form.addRow("Authors:", self.authors)
        form.addRow("&License:", self.license)
        form.addRow("&Keywords:", self.keywords)

    def initializePage(self) -> None:
        study = self.state.spec.study
        self.title_edit.setText(study.title)
        self.name_edit.setText(study.name)
        self._name_was_edited = self.state.spec_existed
        self.description.setPlainText(study.description)
        self.authors.set_authors(study.authors)
        self.license.setCurrentText(study.license or "CC-BY-4.0")
        self.keywords.setText(", ".join(study.keywords))

    def _title_changed(self, text: str) -> None:
        if not self._name_was_edited:
            self.name_edit.setText(slugify(text))
        problem = backend.title_problem(text)
        self.title_problem.setText(problem or "")
        self.title_problem.setVisible(bool(problem))
        self.completeChanged.emit()

    def _check_name(self, text: str) -> None:
        problem = backend.name_problem(text)
        self.name_problem.setText(problem or "")
        self.name_problem.setVisible(bool(problem))
        self.completeChanged.emit()

    def _name_edited(self, _text: str) -> None:
        self._name_was_edited = True

    def ready(self) -> bool:
        return (backend.title_problem(self.title_edit.text()) is None
                and backend.name_problem(self.name_edit.text()) is None
                and not self.authors.problems())

    def apply(self) -> None:
        if not self.authors.authors():
            raise UsageError("Name at least one author.",
                             "Archives such as Zenodo require a creator for every record.")
        study = self.state.spec.study
        study.title = self.title_edit.text().strip()
        study.name = self.name_edit.text().strip()
        study.description = self.description.toPlainText().strip()
        study.authors = self.authors.authors()
        study.license = self.license.currentText().strip()
        study.keywords = [k.strip() for k in self.keywords.text().split(",") if k.strip()]
