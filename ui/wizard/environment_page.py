"""Page 4: the software environment — which Python, which packages, how it is locked."""

from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPlainTextEdit, QPushButton, QVBoxLayout)

from .. import backend
from ..widgets import StatusLabel, buddy_label, mono_font
from .base import WizardPage, note

KINDS = [("auto", "Detect it from the study's interpreter"),
         ("venv", "A virtualenv (pip packages)"),
         ("conda", "A conda environment"),
         ("system", "The system Python")]


class EnvironmentPage(WizardPage):
    TITLE = "The software environment"
    SUBTITLE = ("studypack locks the exact version of every package, with checksums, and "
                "stores the packages themselves so the environment can be rebuilt offline.")

    def __init__(self, state):
        super().__init__(state)
        self.found = StatusLabel()
        self.kind = QComboBox()
        for value, text in KINDS:
            self.kind.addItem(text, value)
        self.python = QLineEdit()
        self.python.setPlaceholderText("found on PATH, or in the active virtualenv/conda env")
        self.python.editingFinished.connect(self._detect)
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        detect = QPushButton("&Detect again")
        detect.clicked.connect(self._detect)
        python_row = QHBoxLayout()
        python_row.addWidget(self.python, 1)
        python_row.addWidget(browse)
        python_row.addWidget(detect)
        self.lock_label = QLabel("Lock preview:")
        self.lock = QPlainTextEdit()
        self.lock.setReadOnly(True)
        self.lock.setFont(mono_font())
        self.panel = self.task_panel(work="detecting the environment")
        form = QFormLayout()
        form.addRow("Found:", self.found)
        form.addRow("&Kind:", self.kind)
        form.addRow(buddy_label("&Interpreter:", self.python), python_row)
        layout = QVBoxLayout(self.body)
        layout.addLayout(form)
        layout.addWidget(self.panel)
        layout.addWidget(self.lock_label)
        layout.addWidget(self.lock, 1)
        layout.addWidget(note("The lock file, the packages (a wheelhouse or a local conda "
                              "channel) and a Dockerfile go into the bundle."))

    def initializePage(self) -> None:
        env = self.state.spec.environment
        self.kind.setCurrentIndex(max(0, self.kind.findData(env.kind)))
        self.python.setText(env.python)
        self._detect()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "The study's Python interpreter",
                                              str(self.state.folder))
        if path:
            self.python.setText(path)
            self._detect()

    def _detect(self) -> None:
        if self.panel.running:
            return
        self.apply()
        spec = self.state.spec
        self.found.set_status("info", "Asking the study's interpreter\u2026")
        self.lock.clear()
        self.panel.start(lambda report, cancel: backend.detect_environment(spec, report, cancel),
                         self._detected, on_error=self._failed)

    def _detected(self, view) -> None:
        self.state.environment = view
        self.found.set_status("ok", view.description)
        self.lock_label.setText(view.lock_name or "Lock preview:")
        self.lock.setPlainText(view.lock_text or "(no packages)")
        self.panel.finish("")

    def _failed(self, exc, details) -> None:
        self.found.set_status("bad", backend.message_of(exc))
        self.fail(exc, details)

    def apply(self) -> None:
        env = self.state.spec.environment
        env.kind = self.kind.currentData()
        env.python = self.python.text().strip()
