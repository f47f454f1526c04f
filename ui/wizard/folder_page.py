"""Page 0: which folder holds the study. Everything else is detected from it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout

from .. import backend
from ..backend import SPEC_NAME, StudypackError
from .base import WizardPage, note


class FolderPage(WizardPage):
    TITLE = "Your study folder"
    SUBTITLE = ("Choose the folder that holds your study: its code, its input data, and "
                "where it writes its results. studypack looks at it and fills in the next pages.")

    def __init__(self, state):
        super().__init__(state)
        self.path_edit = QLineEdit(str(state.folder) if state.folder else "")
        self.path_edit.setPlaceholderText("/home/you/my-study")
        self.path_edit.textChanged.connect(self._changed)
        browse = QPushButton("&Browse\u2026")
        browse.clicked.connect(self._browse)
        label = QLabel("Study &folder:")
        label.setBuddy(self.path_edit)
        row = QHBoxLayout()
        row.addWidget(label)
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.found = note()
        layout = QVBoxLayout(self.body)
        layout.addLayout(row)
        layout.addWidget(self.found)
        layout.addStretch(1)
        layout.addWidget(note(
            f"When the bundle is written, studypack saves your answers into {SPEC_NAME} in "
            "this folder, so the same bundle can be made again later. Nothing in the folder "
            "changes before that (if you leave early, you are asked whether to save)."))
        self._changed()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the study folder",
                                                  self.path_edit.text())
        if folder:
            self.path_edit.setText(folder)

    def folder(self) -> Path:
        return Path(self.path_edit.text().strip()).expanduser()

    def _changed(self) -> None:
        text = self.path_edit.text().strip()
        folder = self.folder()
        if not text:
            self.found.setText("")
        elif not folder.is_dir():
            self.found.setStyleSheet("color: #cf222e;")
            self.found.setText("This folder does not exist.")
        elif (folder / SPEC_NAME).is_file():
            self.found.setStyleSheet("")
            self.found.setText(f"This folder already has a {SPEC_NAME}: the wizard starts from "
                               "it, and saves your changes into it when you say so.")
        else:
            self.found.setStyleSheet("")
            self.found.setText(f"A new study: its answers will be saved as {SPEC_NAME} in "
                               "this folder.")
        self.completeChanged.emit()

    def ready(self) -> bool:
        return bool(self.path_edit.text().strip()) and self.folder().is_dir()

    def validatePage(self) -> bool:
        folder = self.folder().resolve()
        try:
            spec, existed = backend.open_study(folder)
        except StudypackError as exc:
            self.fail(exc)
            return False
        if self.state.folder != folder or self.state.spec is None:
            if self.state.session is not None:   # a run of another folder is of no use
                self.state.session.close()
                self.state.session = None
            self.state.opened(folder, spec, existed)
        return super().validatePage()
