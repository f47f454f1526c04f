"""The replay window: open a bundle, see what study it holds, check that it is intact
and who signed it, replay it and read, output by output, whether it reproduced.

Opened from argv (a double-click), File > Open, drag-and-drop, or macOS FileOpen.
Every read of the bundle (info, verify, signature, replay) runs off the GUI thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QStandardPaths, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QStackedWidget

from . import backend
from .bundle_view import BundleView, WelcomePage
from .dialogs import show_error

BUNDLE_FILTER = "studypack bundles (*.studypack);;All files (*)"

class ReplayWindow(QMainWindow):
    def __init__(self):
        super().__init__()
        self.bundle_path: Optional[Path] = None
        self.info = None
        self.verified = None
        self.replay_result = None
        self.output_dir: Optional[Path] = None
        self.replays_dir: Optional[Path] = None   # where replays are kept (default: app data)
        self.setWindowTitle("studypack")
        self.setAcceptDrops(True)
        self.resize(1000, 720)
        self.stack = QStackedWidget()
        self.welcome = WelcomePage(self)
        self.view = BundleView(self)
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.view)
        self.setCentralWidget(self.stack)
        self._menus()
        self.statusBar().showMessage("Open a .studypack bundle, or drop one here.")

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = QAction("&Open a bundle\u2026", self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self.choose_bundle)
        new_action = QAction("&Create a bundle\u2026", self)
        new_action.setShortcut(QKeySequence.StandardKey.New)
        new_action.triggered.connect(self.start_wizard)
        close_action = QAction("&Close window", self)
        close_action.setShortcut(QKeySequence.StandardKey.Close)
        close_action.triggered.connect(self.close)
        for action in (open_action, new_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(close_action)

    # ------------------------------------------------------------ opening
    def choose_bundle(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a study bundle", "", BUNDLE_FILTER)
        if path:
            self.open_bundle(Path(path))

    def start_wizard(self) -> None:
        from PySide6.QtWidgets import QApplication
        app = QApplication.instance()
        if hasattr(app, "new_wizard"):
            app.new_wizard()
        else:
            from .wizard import BundleWizard
            self._wizard = BundleWizard(None)
            self._wizard.show()

    def dragEnterEvent(self, event) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_bundle(Path(url.toLocalFile()))
                event.acceptProposedAction()
                return

    def open_bundle(self, path: Path) -> None:
        if self.view.replay_panel.running or self.view.verify_panel.running:
            show_error(self, backend.UsageError(
                "This window is still busy with the open bundle.",
                "Cancel first, or open the bundle from File > Open in a new window."))
            return
        path = Path(path).expanduser().absolute()
        self.statusBar().showMessage(f"Reading {path.name}\u2026")
        from . import tasks
        tasks.run_task(lambda report, cancel: backend.read_info(path),
                       lambda info: self._info_read(path, info),
                       on_error=lambda exc, details: self._open_failed(path, exc, details))

    def _open_failed(self, path: Path, exc, details: str) -> None:
        self.statusBar().showMessage(f"Could not open {path.name}.")
        show_error(self, exc, details)

    def _info_read(self, path: Path, info) -> None:
        self.bundle_path, self.info = path, info
        self.verified = self.replay_result = None
        self.output_dir = None
        self.setWindowTitle(f"{path.name} \u2014 studypack")
        self.view.show_info(info)
        self.view.report.table.setRowCount(0)
        self.view.report.headline.setText("")
        self.view.log.clear()
        self.view.open_outputs.setEnabled(False)
        self.view.problems.hide()
        self.stack.setCurrentWidget(self.view)
        self.statusBar().showMessage(f"Checking {path.name}\u2026")
        self.start_verify()

    # ------------------------------------------------------------ verify
    def start_verify(self) -> None:
        path = self.bundle_path
        self.view.integrity.set_status("info", "Checking every checksum\u2026")
        self.view.signature.set_status("info", "Signature: waiting for the check")
        self.view.replay_button.setEnabled(False)

        def work(report, cancel):
            result = backend.verify(path, report=report, cancel=cancel)
            signature = backend.signature_status(path, result.tagmanifest) if result.ok else None
            return result, signature

        self.view.verify_panel.start(work, self._verified, on_error=self._verify_failed)

    def _verified(self, outcome) -> None:
        result, signature = outcome
        self.verified = result
        if result.ok:
            self.view.integrity.set_status(
                "ok", f"Intact: {result.checked} files match their checksums.")
            self.view.verify_panel.finish("")
            self.view.replay_button.setEnabled(True)
        else:
            self._show_damaged(result.problems)
        self._show_signature(signature)
        self.statusBar().showMessage("Ready." if result.ok else "This bundle is damaged.")

    def _verify_failed(self, exc, details) -> None:
        from studypack.errors import BundleError, Cancelled
        if isinstance(exc, Cancelled):
            self.view.integrity.set_status("warn", "Integrity not checked (cancelled).")
            self.view.replay_button.setEnabled(True)
            return
        if isinstance(exc, BundleError):
            self._show_damaged([exc.full_text()])
            return
        self.view.integrity.set_status("bad", "The integrity check could not run.")
        show_error(self, exc, details)

    def _show_damaged(self, problems: list[str]) -> None:
        shown = problems[:12] + ([f"\u2026 and {len(problems) - 12} more"] if len(problems) > 12 else [])
        self.view.integrity.set_status(
            "bad", "This bundle is DAMAGED: its content does not match its checksums. "
                   "Do not trust its results; get a fresh copy from its source.")
        self.view.problems.setText("\n".join(shown))
        self.view.problems.show()
        self.view.verify_panel.set_status("")
        self.statusBar().showMessage("This bundle is damaged.")
        self.view.signature.set_status("warn", "Signature not checked: the bundle is damaged.")
        self.view.replay_button.setEnabled(False)

    def _show_signature(self, status) -> None:
        if status is None:
            return
        state = status.state
        if state == "signed":
            text = f"Signed by key {status.key_id}"
            if not status.trusted_key:
                text += " (the key named in the signature; compare it with the author's)"
            self.view.signature.set_status("ok", text)
        elif state == "unsigned":
            self.view.signature.set_status("info", "Unsigned")
        elif state == "mismatch":
            self.view.signature.set_status("bad", "Signature does not match: " + status.message)
        else:
            self.view.signature.set_status("warn", status.message)

    # ------------------------------------------------------------ replay
    def start_replay(self) -> None:
        if self.bundle_path is None:
            return
        path = self.bundle_path
        mode = self.view.mode.currentData()
        base = self.replays_dir or Path(QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.AppDataLocation)) / "replays"
        stem = f"{path.name.removesuffix('.studypack')}-{time.strftime('%Y%m%d-%H%M%S')}"
        keep, n = base / stem, 1
        while keep.exists():   # a replay never writes into an earlier one's folder
            n += 1
            keep = base / f"{stem}-{n}"
        self.view.log.clear()
        self.view.report.table.setRowCount(0)
        self.view.report.headline.setText("")
        self.view.replay_button.setEnabled(False)
        self.view.open_outputs.setEnabled(False)
        self.view.tabs.setCurrentIndex(2)
        self.view.log.add(f"Replaying {path.name} (mode: {mode}); work folder {keep}")
        self.view.replay_panel.start(
            lambda report, cancel: backend.replay(path, mode, keep, report=report, cancel=cancel),
            self._replayed, on_error=self._replay_failed)

    def _replay_failed(self, exc, details) -> None:
        self.view.replay_button.setEnabled(True)
        from studypack.errors import Cancelled
        if isinstance(exc, Cancelled):
            self.view.log.add("Cancelled.")
            return
        self.view.log.add(f"Stopped: {getattr(exc, 'message', exc)}")
        show_error(self, exc, details)

    def _replayed(self, result) -> None:
        from studypack.replay.report import headline, report_dict
        self.replay_result = result
        self.view.replay_button.setEnabled(True)
        expected, actual = backend.replay_roots(result)
        self.output_dir = actual
        self.view.open_outputs.setEnabled(actual is not None)
        from studypack.replay import run_failure
        text = headline(report_dict(result))
        for line in result.notes:
            self.view.log.add(f"note: {line}")
        failure = run_failure(result)
        if failure is not None:
            text += " " + failure.message
            self.view.log.add(failure.full_text())
        self.view.replay_panel.finish("")
        self.view.report.show_result(result, f"{text}  (mode {result.mode})", expected, actual)
        self.view.log.add(text)
        self.statusBar().showMessage(text)

    def open_output_folder(self) -> None:
        if self.output_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.output_dir)))

    def closeEvent(self, event) -> None:
        for panel in (self.view.replay_panel, self.view.verify_panel):
            if panel.running:
                panel.cancel()
        super().closeEvent(event)
