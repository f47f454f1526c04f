"""Page 7: review what will go into the bundle before anything is written."""

from __future__ import annotations

from collections import defaultdict

from PySide6.QtWidgets import QSplitter, QTreeWidget, QTreeWidgetItem, QVBoxLayout
from PySide6.QtCore import Qt

from studypack.fsutil import human_size

from ..widgets import StatusLabel
from .base import WizardPage, note

# Beyond this many files in one area the tree shows a count instead of every name,
# so that filling it stays well under the GUI thread's budget.
MAX_LISTED = 300

AREAS = [
    ("data/study", "Code and input data"),
    ("data/outputs", "Results of the original run"),
    ("data/runs", "Run records (command, log, host, git)"),
    ("data/trace", "ReproZip trace"),
    ("data/rootfs", "System files the run used"),
    ("data/env", "Environment (lock, packages, Dockerfile)"),
    ("data/image", "Saved image"),
    ("data", "Description (RO-Crate, REPLAY.md, studypack.toml)"),
]


def summarise(plan) -> list[tuple[str, int, int, list[tuple[str, int]]]]:
    """(label, files, bytes, first files) per area of the bag: runs in the worker."""
    groups: dict[str, list] = defaultdict(list)
    for member in plan.payload:
        area = next(a for a, _ in AREAS if member.arcname.startswith(a + "/"))
        groups[area].append((member.arcname[len(area) + 1:], member.size))
    out = []
    for area, label in AREAS:
        members = groups.get(area, [])
        if members:
            out.append((f"{label} \u2014 {area}/", len(members), sum(s for _, s in members),
                        sorted(members)[:MAX_LISTED]))
    for url, size, arcname, _digest in plan.fetch:
        out.append((f"By reference: {arcname} from {url}", 1, size, []))
    return out


class ReviewPage(WizardPage):
    TITLE = "Review the bundle"
    SUBTITLE = "What the bundle will hold. Nothing has been written yet."

    def __init__(self, state):
        super().__init__(state)
        self.total = StatusLabel()
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["In the bundle", "Files", "Size"])
        self.tree.setColumnWidth(0, 520)
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
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel)
        layout.addWidget(self.total)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.warnings)
        self.planned = False

    def initializePage(self) -> None:
        session = self.state.session
        self.planned = False
        self.tree.clear()

        def work(report, cancel):
            plan = session.make_plan(report, cancel)
            return plan, summarise(plan)

        self.panel.start(work, self._planned)

    def _planned(self, outcome) -> None:
        plan, areas = outcome
        session = self.state.session
        self.tree.clear()
        for label, count, size, files in areas:
            top = QTreeWidgetItem(self.tree, [label, str(count), human_size(size)])
            for name, file_size in files:
                QTreeWidgetItem(top, [name, "", human_size(file_size)])
            if count > len(files):
                QTreeWidgetItem(top, [f"\u2026 and {count - len(files)} more", "", ""])
        self.total.set_status("ok", f"{plan.payload_count} files, {human_size(plan.payload_bytes)} "
                              "before compression (zstd makes the bundle smaller).")
        self.secrets.clear()
        for name, why in sorted(session.scrubber.dropped.items()):
            QTreeWidgetItem(self.secrets, [name, why])
        if not session.scrubber.dropped:
            QTreeWidgetItem(self.secrets, ["(none: no variable looked like a secret)", ""])
        lines = [f"\u26a0 {w}" for w in session.warnings]
        lines += [f"\u2022 {m}" for m in session.messages()
                  if not m.startswith("dropped environment variable")]
        self.warnings.setText("\n".join(lines))
        self.panel.finish("")
        self.planned = True
        self.state.result = None   # a new plan: an earlier bundle no longer matches it
        self.completeChanged.emit()

    def ready(self) -> bool:
        return self.planned
