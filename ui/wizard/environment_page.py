"""Page 4: the software environment — which Python, which packages, how it is locked."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPlainTextEdit, QPushButton, QTabWidget,
                               QVBoxLayout, QWidget)

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
        self.lock_all = QCheckBox("&Lock the whole environment (not only what the run used)")
        self.lock_all.setToolTip("Every installed package goes into the lock file and the "
                                 "bundle, not only those the traced run imported.")
        self.lock_all.toggled.connect(self._detect)
        self.lock_label = QLabel("Lock preview:")
        self.lock = self._text_box()
        self.sections: dict[str, QPlainTextEdit] = {}
        self.tabs = QTabWidget()
        python_tab = QWidget()
        python_layout = QVBoxLayout(python_tab)
        python_layout.setContentsMargins(4, 4, 4, 4)
        python_layout.addWidget(self.lock_label)
        python_layout.addWidget(self.lock, 1)
        self.tabs.addTab(python_tab, "&Python packages")
        for kind, title in (("debian", "&Debian packages"), ("r", "&R packages")):
            self.sections[kind] = self._text_box()
            self.tabs.addTab(self.sections[kind], title)
        self.panel = self.task_panel(work="detecting the environment")
        self.checks = StatusLabel()   # the create session's plan step: what it found
        form = QFormLayout()
        form.addRow("Found:", self.found)
        form.addRow("&Kind:", self.kind)
        form.addRow(buddy_label("&Interpreter:", self.python), python_row)
        form.addRow("", self.lock_all)
        layout = QVBoxLayout(self.body)
        layout.addLayout(form)
        layout.addWidget(self.panel)
        layout.addWidget(self.checks)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(note("The lock file, the packages (a wheelhouse or a local conda "
                              "channel) and a Dockerfile go into the bundle."))

    @staticmethod
    def _text_box() -> QPlainTextEdit:
        box = QPlainTextEdit()
        box.setReadOnly(True)
        box.setFont(mono_font())
        return box

    def initializePage(self) -> None:
        env = self.state.spec.environment
        self.kind.setCurrentIndex(max(0, self.kind.findData(env.kind)))
        self.python.setText(env.python)
        self.lock_all.blockSignals(True)
        self.lock_all.setChecked(env.lock == "all")
        self.lock_all.blockSignals(False)
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
        self.checks.set_status("info", "")
        self.lock.clear()
        for box in self.sections.values():
            box.clear()
        self.panel.start(lambda report, cancel: backend.detect_environment(spec, report, cancel),
                         self._detected, on_error=self._failed)

    def _detected(self, view) -> None:
        self.state.environment = view
        self.found.set_status("ok", view.description)
        self.lock_label.setText(view.lock_name or "Lock preview:")
        self.lock.setPlainText(view.lock_text or "(no packages)")
        for section in view.sections:
            box = self.sections[section.kind]
            box.setPlainText(f"Not part of this study: {section.absent}." if section.absent
                             else f"# {section.lock_name}\n" * bool(section.lock_name)
                             + ("\n".join(section.lines) or "(none yet)"))
        self.panel.finish("")
        self._plan()

    def _plan(self) -> None:
        """The create session's plan step, before the traced run: a wheelhouse that is
        not there, a package that needs the index… found in seconds, not after the run."""
        if self.state.session is None:
            self.state.session = backend.CreateSession(self.state.spec)
        session = self.state.session
        session.spec = self.state.spec
        self.checks.set_status("info", "Checking the study and its environment\u2026")
        self.panel.start(session.plan, self._planned, on_error=self._plan_failed)

    def _planned(self, findings: list[str]) -> None:
        self.plan_findings = findings
        self.checks.set_status("ok", "Checked before the run: " + "; ".join(findings) + "."
                               if findings else "Checked before the run: nothing to report.")
        self.panel.finish("")

    def _plan_failed(self, exc, details) -> None:
        self.plan_findings = [backend.message_of(exc)]
        explained = backend.explain(exc)
        self.checks.set_status("bad", "Found before the run: " + backend.message_of(exc)
                               + (f" {explained.hint}" if explained and explained.hint else ""))
        self.panel.finish("")

    def _failed(self, exc, details) -> None:
        self.found.set_status("bad", backend.message_of(exc))
        self.fail(exc, details)

    def apply(self) -> None:
        env = self.state.spec.environment
        env.kind = self.kind.currentData()
        env.python = self.python.text().strip()
        env.lock = "all" if self.lock_all.isChecked() else "used"
