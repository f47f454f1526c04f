"""Page 7: review what will go into the bundle before anything is written."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QTreeWidget, QTreeWidgetItem, QVBoxLayout

from .. import backend
from ..backend import human_size
from ..widgets import StatusLabel
from .base import WizardPage, note


class ReviewPage(WizardPage):
    TITLE = "Review the bundle"
    SUBTITLE = "What the bundle will hold. Nothing has been written yet."
    WORK = "planning the bundle"

    def __init__(self, state):
        super().__init__(state)
        self.total = StatusLabel()
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["In the bundle", "Files", "Size"])
        self.tree.setColumnWidth(0, 460)
        self.secrets = QTreeWidget()
        self.secrets.setRootIsDecorated(False)
        self.secrets.setHeaderLabels(["Environment variable left out", "Why"])
        self.secrets.setColumnWidth(0, 280)
        self.warnings = note(colour="#9a6700")
        self.panel = self.task_panel()
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tree)
        splitter.addWidget(self.secrets)
        splitter.setSizes([320, 120])
        layout = QVBoxLayout(self.body)
        layout.addWidget(self.panel)
        layout.addWidget(self.total)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.warnings)

    def initializePage(self) -> None:
        session = self.state.session
        self.state.plan = None
        self.tree.clear()
        written = self.state.result
        self.setSubTitle(self.SUBTITLE if written is None else
                         f"What the bundle will hold. {written.path.name} was written "
                         "already; Create the bundle on the next page writes it again.")
        if session is None:
            return
        self.panel.start(session.make_plan, self._planned)

    def _planned(self, plan: backend.PlanView) -> None:
        self.state.plan = plan
        self.tree.clear()
        for area in plan.areas:
            top = QTreeWidgetItem(self.tree, [area.label, str(area.files), human_size(area.size)])
            for name, file_size in area.first:
                QTreeWidgetItem(top, [name, "", human_size(file_size)])
            if area.files > len(area.first):
                QTreeWidgetItem(top, [f"\u2026 and {area.files - len(area.first)} more", "", ""])
        self.total.set_status("ok", f"{plan.files} files, {human_size(plan.size)} "
                              "before compression (zstd makes the bundle smaller).")
        self.secrets.clear()
        for name, why in sorted(plan.secrets_dropped.items()):
            QTreeWidgetItem(self.secrets, [name, why])
        if not plan.secrets_dropped:
            QTreeWidgetItem(self.secrets, ["(none: no variable looked like a secret)", ""])
        lines = [f"\u26a0 {w}" for w in plan.warnings] + [f"\u2022 {m}" for m in plan.messages]
        self.warnings.setText("\n".join(lines))
        self.panel.finish("")
        self.completeChanged.emit()

    def ready(self) -> bool:
        return self.state.plan is not None
