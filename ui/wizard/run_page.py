"""Page 5: run the study once, for real, under a ReproZip trace.

The log is streamed into the page while it runs (read from the files the run writes),
Cancel stops it, and the results it wrote are listed for the user to confirm.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QHBoxLayout, QLineEdit, QPushButton,
                               QSplitter, QTreeWidget, QTreeWidgetItem, QVBoxLayout)
from PySide6.QtCore import Qt

from .. import backend
from ..backend import Cancelled, RunStep, UsageError, human_size
from ..widgets import LogView, StatusLabel
from .base import WizardPage

TAIL_INTERVAL_MS = 200
TAIL_CHUNK = 64 * 1024   # read at most this much per tick: the GUI thread stays quick


class LogTail:
    """Follows a file that another process appends to, and hands new lines over."""

    def __init__(self, path: Path, prefix: str, sink):
        self.path, self.prefix, self.sink = path, prefix, sink
        self.offset = 0
        self.partial = b""

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(TAIL_CHUNK)
        except OSError:
            return
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        for line in lines:
            self.sink(self.prefix + line.decode("utf-8", errors="replace"))

    def flush(self) -> None:
        self.poll()
        if self.partial:
            self.sink(self.prefix + self.partial.decode("utf-8", errors="replace"))
            self.partial = b""


class RunPage(WizardPage):
    TITLE = "Run the study"
    SUBTITLE = ("studypack runs your command once and records everything it touches "
                "(ReproZip). This is the run that the bundle preserves and that a replay "
                "must reproduce.")

    def __init__(self, state):
        super().__init__(state)
        self.command = QLineEdit()
        self.command.setPlaceholderText("python analysis.py")
        self.command.textEdited.connect(self._invalidate)
        self.workdir = QLineEdit()
        self.workdir.textEdited.connect(self._invalidate)
        self.outputs = QLineEdit()
        self.outputs.setPlaceholderText("results/")
        self.outputs.setToolTip("Folders, files or globs, relative to the study folder, "
                                "separated by commas.")
        self.outputs.editingFinished.connect(self._list_outputs)
        self.run_button = QPushButton("&Run and trace")
        self.run_button.clicked.connect(self.start_run)
        self.verdict = StatusLabel()
        self.log = LogView()
        self.log.setPlaceholderText("The command's output appears here while it runs.")
        self.panel = self.task_panel(log=None, work="the traced run")
        self.found = QTreeWidget()
        self.found.setRootIsDecorated(False)
        self.found.setHeaderLabels(["Result file written by the run", "Size"])
        self.found.setColumnWidth(0, 480)
        self.confirm = QCheckBox("These are the study's results: a replay compares them.")
        self.confirm.toggled.connect(self.completeChanged)
        form = QFormLayout()
        form.addRow("&Command:", self.command)
        form.addRow("&Working folder:", self.workdir)
        form.addRow("Res&ults:", self.outputs)
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.panel, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.log)
        splitter.addWidget(self.found)
        layout = QVBoxLayout(self.body)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.verdict)
        layout.addWidget(self.confirm)   # in sight on a small screen: Next waits for it
        layout.addWidget(splitter, 1)
        self.tails: list[LogTail] = []
        self.timer = QTimer(self)
        self.timer.setInterval(TAIL_INTERVAL_MS)
        self.timer.timeout.connect(self._poll_logs)

    def initializePage(self) -> None:
        spec = self.state.spec
        run = spec.runs[0]
        self.command.setText(shlex.join(run.command))
        self.workdir.setText(run.workdir)
        self.outputs.setText(", ".join(spec.output_paths))
        if self.state.trace is None:
            self.verdict.set_status("info", "Not run yet. Press Run: the command runs now, on "
                                    "this computer, with its real data.")

    def _invalidate(self, *_):
        if self.state.trace is not None:
            self.state.trace = None
            self.verdict.set_status("warn", "The command changed: run it again.")
        self.completeChanged.emit()

    def apply(self) -> None:
        try:
            command = shlex.split(self.command.text())
        except ValueError as exc:
            raise UsageError(f"The command cannot be read: {exc}.",
                             "Check its quotes.") from None
        if not command:
            raise UsageError("Type the command that runs the study, e.g. python analysis.py.")
        spec = self.state.spec
        spec.runs = [RunStep(command=command, workdir=self.workdir.text().strip() or ".")] + \
            spec.runs[1:]
        spec.output_paths = [p.strip() for p in self.outputs.text().split(",") if p.strip()]

    # ---------------------------------------------------------------- run
    def start_run(self) -> None:
        try:
            self.apply()   # what is traced is what the page says (saved only later)
        except UsageError as exc:
            self.fail(exc)
            return
        if self.state.session is None:
            self.state.session = backend.CreateSession(self.state.spec)
        session = self.state.session
        session.spec = self.state.spec
        self.state.trace = self.state.image = self.state.plan = None
        self.confirm.setChecked(False)
        self.found.clear()
        self.log.clear()
        self.log.add(f"$ {self.command.text()}")
        self.verdict.set_status("info", "Running\u2026")
        self.run_button.setEnabled(False)
        stdout, stderr = session.run_logs(1)
        self.tails = [LogTail(stdout, "", self.log.add), LogTail(stderr, "[stderr] ", self.log.add)]
        self.timer.start()
        self.panel.start(session.trace, self._traced, on_error=self._failed)

    def _poll_logs(self) -> None:
        for tail in self.tails:
            tail.poll()

    def _stop_tailing(self) -> None:
        self.timer.stop()
        for tail in self.tails:
            tail.flush()
        self.tails = []

    def _failed(self, exc, details) -> None:
        self._stop_tailing()
        self.run_button.setEnabled(True)
        if isinstance(exc, Cancelled):
            self.verdict.set_status("warn", "Cancelled: the run was stopped. Run it again to go on.")
            return
        self.verdict.set_status("bad", backend.message_of(exc))
        self.fail(exc, details)

    def _traced(self, traced: backend.TraceView) -> None:
        self._stop_tailing()
        self.run_button.setEnabled(True)
        self.state.trace = traced
        self.verdict.set_status(
            "ok", f"The run finished (exit code {traced.exit_code}) in "
                  f"{traced.duration_s:.1f} s; {traced.files_used} files of the system were used.")
        self.panel.finish("Traced.")
        self._list_outputs()

    def _list_outputs(self) -> None:
        if self.state.trace is None or self.panel.running:
            self.completeChanged.emit()
            return
        self.state.spec.output_paths = [p.strip() for p in self.outputs.text().split(",")
                                        if p.strip()]
        spec = self.state.spec
        self.panel.start(lambda report, cancel: backend.plan_files(spec), self._outputs_listed)

    def _outputs_listed(self, plan) -> None:
        self.state.files = plan
        self.found.clear()
        for f in plan.outputs:
            QTreeWidgetItem(self.found, [f.relpath, human_size(f.size)])
        if not plan.outputs:
            item = QTreeWidgetItem(self.found, ["No result file found under these paths: "
                                                "check Results above.", ""])
            item.setForeground(0, Qt.GlobalColor.red)
        self.panel.finish(f"{len(plan.outputs)} result files found.")
        self.completeChanged.emit()

    def ready(self) -> bool:
        return self.state.trace is not None and self.confirm.isChecked()

    def stop_tasks(self) -> None:
        super().stop_tasks()
        self.timer.stop()
