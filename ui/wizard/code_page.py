"""Page 2: the code — which files go in as code, and which version of it (git)."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (QFormLayout, QLineEdit, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout)

from .. import backend
from ..backend import DEFAULT_EXCLUDES, human_size
from ..widgets import StatusLabel
from .base import WizardPage, note


class CodePage(WizardPage):
    TITLE = "The code"
    SUBTITLE = ("Every file of the study folder that is not input data or a result is packed "
                "as code. Leave out what a reader does not need.")

    def __init__(self, state):
        super().__init__(state)
        self.folder = note()
        self.git = StatusLabel()
        self.excludes = QLineEdit()
        self.excludes.setPlaceholderText("e.g. scratch/, *.log")
        self.excludes.setToolTip("Always left out: " + ", ".join(DEFAULT_EXCLUDES))
        # rescanned a moment after typing stops: Enter still means Next
        self.rescan = QTimer(self)
        self.rescan.setSingleShot(True)
        self.rescan.setInterval(600)
        self.rescan.timeout.connect(self._refresh_files)
        self.excludes.textEdited.connect(lambda *_: self.rescan.start())
        self.files = QTreeWidget()
        self.files.setRootIsDecorated(False)
        self.files.setHeaderLabels(["Code file", "Size"])
        self.files.setColumnWidth(0, 560)
        self.summary = note()
        self.panel = self.task_panel(work="listing the files")
        form = QFormLayout()
        form.addRow("Folder:", self.folder)
        form.addRow("Version:", self.git)
        form.addRow("&Leave out:", self.excludes)
        layout = QVBoxLayout(self.body)
        layout.addLayout(form)
        layout.addWidget(self.panel)
        layout.addWidget(self.files, 1)
        layout.addWidget(self.summary)

    def initializePage(self) -> None:
        self.folder.setText(str(self.state.folder))
        self.excludes.setText(", ".join(self.state.spec.exclude))
        self.git.set_status("info", "Looking at git\u2026")
        folder = self.state.folder
        self.panel.start(lambda report, cancel: backend.git_status(folder), self._git_done)

    def _git_done(self, facts) -> None:
        if facts is None:
            self.git.set_status("warn", "This folder is not a git repository: the bundle will "
                                "hold the code as it is now, without a version name.")
        elif facts.get("dirty"):
            self.git.set_status(
                "warn", f"Commit {facts['commit'][:12]} on {facts.get('branch') or '?'}, with "
                "UNCOMMITTED CHANGES. The bundle stores the diff, but commit first so that the "
                "bundle names an exact version of the code.")
        else:
            self.git.set_status("ok", f"Commit {facts['commit'][:12]} on "
                                f"{facts.get('branch') or '?'}, no uncommitted changes.")
        self._refresh_files()

    def _apply_excludes(self) -> None:
        self.state.spec.exclude = [p.strip() for p in self.excludes.text().split(",") if p.strip()]

    def _refresh_files(self) -> None:
        if self.panel.running:
            self.rescan.start()   # again once this listing is done
            return
        self._apply_excludes()
        spec = self.state.spec
        self.panel.start(lambda report, cancel: backend.plan_files(spec), self._files_done)

    def _files_done(self, plan) -> None:
        self.state.files = plan
        self.files.clear()
        for f in plan.code:
            QTreeWidgetItem(self.files, [f.relpath, human_size(f.size)])
        total = sum(f.size for f in plan.code)
        text = (f"{len(plan.code)} code files, {human_size(total)}. "
                "Data and results are on the next pages.")
        if plan.missing:
            text += (" " + ", ".join(plan.missing) + " does not exist yet: the run on the "
                     "Run page writes it.")
        self.summary.setText(text)
        self.panel.finish("")

    def isComplete(self) -> bool:
        return True   # a listing in progress is a preview; it never holds Next back

    def validatePage(self) -> bool:
        self.stop_tasks()
        self.apply()
        return True

    def apply(self) -> None:
        self.rescan.stop()
        self._apply_excludes()
