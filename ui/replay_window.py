"""The replay window: open a bundle, see what study it holds, check that it is intact
and who signed it, replay it and read, output by output, whether it reproduced.

Opened from argv (a double-click), File > Open, File > Recent, drag-and-drop, or macOS
FileOpen. Every read of the bundle (info, verify, signature, files, replay) runs off
the GUI thread; the window reaches the core only through ``backend``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSettings, QStandardPaths, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QMainWindow, QStackedWidget

from . import backend, dialogs, tasks
from .bundle_view import BundleView, WelcomePage
from .dialogs import show_error
from .help import show_about, show_guide
from .widgets import open_folder

BUNDLE_FILTER = "studypack bundles (*.studypack);;All files (*)"
MAX_RECENT = 8
FILES_TAB, REPLAY_TAB = 1, 2


def settings() -> QSettings:
    """The app's own settings (recent bundles, replay folder), one INI file per user."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                     "studypack", "studypack-gui")


def recent_bundles() -> list[str]:
    value = settings().value("recent", []) or []
    return [value] if isinstance(value, str) else list(value)


def remember_bundle(path: Path) -> None:
    recent = [str(path)] + [p for p in recent_bundles() if p != str(path)]
    settings().setValue("recent", recent[:MAX_RECENT])


def replays_folder() -> Path:
    chosen = settings().value("replays/folder", "")
    if chosen:
        return Path(chosen)
    return Path(QStandardPaths.writableLocation(
        QStandardPaths.StandardLocation.GenericDataLocation)) / "studypack" / "replays"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class ReplayWindow(QMainWindow):
    def __init__(self):
        super().__init__()
        self.bundle_path: Optional[Path] = None
        self.failed_path: Optional[Path] = None   # the last file that could not be opened
        self.info = None
        self.choices: list[backend.ModeChoice] = []
        self.verified = None
        self.replay_result = None
        self.output_dir: Optional[Path] = None
        self.replays_dir: Optional[Path] = None   # None: the settings' folder
        self.sizes: Optional[dict[str, int]] = None
        self.replay_started = 0.0
        self.original_s: Optional[float] = None
        self.setWindowTitle("studypack")
        self.setAcceptDrops(True)
        self.stack = QStackedWidget()
        self.welcome = WelcomePage(self)
        self.view = BundleView(self)
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.view)
        self.setCentralWidget(self.stack)
        self.state = QLabel()
        self.statusBar().addPermanentWidget(self.state)
        self.clock = QTimer(self)
        self.clock.setInterval(1000)
        self.clock.timeout.connect(self._tick)
        self.view.tabs.currentChanged.connect(self._tab_changed)
        self._menus()
        self._fit_screen()
        self.set_state("No bundle open", "Open a .studypack bundle, or drop one here.")
        self._show_replay_files()

    def _fit_screen(self) -> None:
        screen = self.screen().availableGeometry() if self.screen() else None
        width, height = 1000, 720
        if screen is not None:
            width, height = min(width, screen.width()), min(height, screen.height() - 40)
        self.resize(width, height)
        self.setMinimumSize(min(640, width), min(420, height))

    def set_state(self, state: str, message: str = "") -> None:
        """The state on the right of the status bar; a message on the left."""
        self.state.setText(state)
        self.statusBar().showMessage(message or state)

    def _menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open a bundle\u2026", self.choose_bundle, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._action(file_menu, "&Create a bundle\u2026", self.start_wizard, QKeySequence.StandardKey.New)
        file_menu.addSeparator()
        self.save_report_action = self._action(file_menu, "&Save the report as HTML\u2026",
                                               self.save_report, QKeySequence.StandardKey.Save)
        self.save_report_action.setEnabled(False)
        file_menu.addSeparator()
        self._action(file_menu, "&Close window", self.close, QKeySequence.StandardKey.Close)
        replay_menu = bar.addMenu("&Replay")
        self._action(replay_menu, "&Show the replay files", self.show_replay_files)
        self._action(replay_menu, "&Choose the replay files folder\u2026", self.choose_replays_dir)
        self._action(replay_menu, "&Remove replay files\u2026", self.remove_replay_files)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&User guide", lambda: show_guide(self), QKeySequence.StandardKey.HelpContents)
        self._action(help_menu, "&About studypack", lambda: show_about(self))

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in recent_bundles() if Path(p).is_file()]
        for path in recent:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_bundle(Path(p)))
        if not recent:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    # ------------------------------------------------------------ opening
    def choose_bundle(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a study bundle", "", BUNDLE_FILTER)
        if path:
            self.open_bundle(Path(path))

    def start_wizard(self) -> None:
        app = QApplication.instance()
        if hasattr(app, "new_wizard"):
            app.new_wizard()
        else:
            from .wizard import BundleWizard
            self._wizard = BundleWizard(None)
            self._wizard.on_done_open = self.open_bundle
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

    @property
    def busy(self) -> bool:
        return self.view.replay_panel.running or self.view.verify_panel.running

    def open_bundle(self, path: Path) -> None:
        if self.busy:
            show_error(self, backend.UsageError(
                "This window is still busy with the open bundle.",
                "Cancel first, or open the bundle from File > Open in a new window."))
            return
        path = Path(path).expanduser().absolute()
        self.set_state("Reading", f"Reading {path.name}\u2026")

        def work(report, cancel):
            info = backend.read_info(path)
            return info, backend.replay_choices(info)

        tasks.run_task(work, lambda outcome: self._info_read(path, *outcome),
                       on_error=lambda exc, details: self._open_failed(path, exc, details))

    def _open_failed(self, path: Path, exc, details: str) -> None:
        self.failed_path = path
        if self.bundle_path is None:
            self.set_state("No bundle open", f"Could not open {path.name}.")
        else:
            self.set_state(self.state.text(), f"Could not open {path.name}; "
                           f"{self.bundle_path.name} is still open.")
        show_error(self, exc, details)

    def _info_read(self, path: Path, info, choices: list) -> None:
        self.bundle_path, self.info, self.choices = path, info, choices
        self.failed_path = None
        self.verified = None
        self.sizes = None
        self._clear_result()
        remember_bundle(path)
        self.original_s = backend.original_duration(info)
        self.setWindowTitle(f"{path.name} \u2014 studypack")
        self.view.show_info(info)
        self.view.show_modes(choices)
        self.view.log.clear()
        self.view.problems.hide()
        self.view.preview_text.clear()
        self.view.extract_button.setEnabled(False)
        self.stack.setCurrentWidget(self.view)
        self.set_state("Checking", f"Checking {path.name}\u2026")
        self.start_verify()
        if self.view.tabs.currentIndex() == FILES_TAB:
            self._load_sizes()

    def _clear_result(self) -> None:
        self.replay_result = None
        self.output_dir = None
        self.view.report.clear()
        self.view.open_outputs.setEnabled(False)
        self.view.save_report.setEnabled(False)
        self.save_report_action.setEnabled(False)

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

    def _can_replay(self) -> bool:
        return self.view.mode.count() > 0

    def _verified(self, outcome) -> None:
        result, signature = outcome
        self.verified = result
        if result.ok:
            self.view.integrity.set_status(
                "ok", f"Intact: {result.checked} files match their checksums.")
            self.view.verify_panel.finish("")
            self.view.replay_button.setEnabled(self._can_replay())
            self.set_state("Intact", "Intact. " + ("Choose a mode and press Replay."
                                                   if self._can_replay() else
                                                   "No replay mode can run this bundle here."))
        else:
            self._show_damaged(result.problems)
        self._show_signature(signature)

    def _verify_failed(self, exc, details) -> None:
        if isinstance(exc, backend.Cancelled):
            self.view.integrity.set_status("warn", "Integrity not checked (cancelled).")
            self.view.replay_button.setEnabled(self._can_replay())
            self.set_state("Not checked", "The integrity check was cancelled.")
            return
        if isinstance(exc, backend.BundleError):
            self._show_damaged([backend.message_of(exc)])
            return
        self.view.integrity.set_status("bad", "The integrity check could not run.")
        self.set_state("Not checked", "The integrity check could not run.")
        show_error(self, exc, details)

    def _show_damaged(self, problems: list[str]) -> None:
        shown = problems[:12] + ([f"\u2026 and {len(problems) - 12} more"] if len(problems) > 12 else [])
        self.view.integrity.set_status(
            "bad", "This bundle is DAMAGED: its content does not match its checksums. "
                   "Do not trust its results; get a fresh copy from its source.")
        self.view.problems.setText("\n".join(backend.printable(p) for p in shown))
        self.view.problems.show()
        self.view.verify_panel.set_status("")
        self.set_state("Damaged", "This bundle is damaged.")
        self.view.signature.set_status("warn", "Signature not checked: the bundle is damaged.")
        self.view.replay_button.setEnabled(False)

    def _show_signature(self, status) -> None:
        if status is None:
            return
        state = status.state
        key_id, message = backend.printable(status.key_id), backend.printable(status.message)
        if state == "signed":
            text = f"Signed by key {key_id}"
            if not status.trusted_key:
                text += " (the key named in the signature; compare it with the author's)"
            self.view.signature.set_status("ok", text)
        elif state == "unsigned":
            self.view.signature.set_status("info", "Unsigned")
        elif state == "mismatch":
            self.view.signature.set_status("bad", "Signature does not match: " + message)
        else:
            self.view.signature.set_status("warn", message)

    # ------------------------------------------------------------ files
    def _tab_changed(self, index: int) -> None:
        if index == FILES_TAB and self.bundle_path is not None and self.sizes is None:
            self._load_sizes()

    def _load_sizes(self) -> None:
        if self.view.files_panel.running:
            return
        path = self.bundle_path
        self.view.files_panel.start(
            lambda report, cancel: backend.member_sizes(path, report, cancel),
            self._sizes_read)

    def _sizes_read(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.view.fill_sizes(sizes)
        self.view.files_panel.finish(f"{len(sizes)} files in the bundle.")

    def preview_selected(self) -> None:
        members = self.view.selected_members()
        self.view.extract_button.setEnabled(bool(members))
        if len(members) != 1 or self.bundle_path is None or self.view.files_panel.running:
            return
        member, path = members[0], self.bundle_path
        scratch = Path(tempfile.mkdtemp(prefix="studypack-preview-"))

        def work(report, cancel):
            try:
                shown, = backend.extract_members(path, [member], scratch, report, cancel)
                text = backend.preview_text(shown)
                image = None
                if text is None and shown.suffix.lower() in backend.IMAGE_SUFFIXES:
                    from PySide6.QtGui import QImage   # a QImage may be made off the GUI thread
                    image = QImage(str(shown))
                return text, image
            finally:
                import shutil
                shutil.rmtree(scratch, ignore_errors=True)

        self.view.files_panel.start(work, self._previewed)

    def _previewed(self, outcome) -> None:
        text, image = outcome
        self.view.files_panel.finish("")
        self.view.show_preview(image, text)

    def extract_selected(self) -> None:
        members = self.view.selected_members()
        if not members or self.bundle_path is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Extract the selected files into")
        if folder:
            self.extract_to(members, Path(folder))

    def extract_to(self, members: list[str], folder: Path) -> None:
        path = self.bundle_path
        self.view.files_panel.start(
            lambda report, cancel: backend.extract_members(path, members, folder, report, cancel),
            lambda written: self.view.files_panel.finish(
                f"Extracted {len(written)} file(s) into {folder}."))

    # ------------------------------------------------------------ replay
    def replays_base(self) -> Path:
        return self.replays_dir or replays_folder()

    def start_replay(self) -> None:
        if self.bundle_path is None or self.busy:
            return
        mode = self.view.mode.currentData()
        usable = {c.name for c in self.choices if c.usable}
        self._clear_result()
        if mode not in usable:   # refused here, before anything is unpacked
            reason = next((c.reason for c in self.choices if c.name == mode), "")
            show_error(self, backend.UsageError(
                f"The {mode} mode cannot run this bundle here" + (f": {reason}." if reason else "."),
                "Choose another mode in the Mode list."))
            return
        path = self.bundle_path
        base = self.replays_base()
        removed, freed = backend.remove_replays(base, keep=backend.KEEP_REPLAYS - 1,
                                                older_than_days=backend.KEEP_DAYS)
        keep = backend.new_replay_folder(base, path)
        self.view.log.clear()
        self.view.replay_button.setEnabled(False)
        self.view.tabs.setCurrentIndex(REPLAY_TAB)
        self.view.log.add(f"Replaying {path.name} (mode: {mode}); replay files in {keep}")
        if removed:
            self.view.log.add(f"Removed {removed} old replay folder(s) ({backend.human_size(freed)}).")
        self.replay_started = time.monotonic()
        self.clock.start()
        self._tick()
        self.view.replay_panel.start(
            lambda report, cancel: backend.replay(path, mode, keep, report=report, cancel=cancel),
            self._replayed, on_error=self._replay_failed)

    def _tick(self) -> None:
        elapsed = _clock(time.monotonic() - self.replay_started)
        against = (f" (the original run took {_clock(self.original_s)})"
                   if self.original_s else "")
        self.set_state("Replaying", f"Replaying: {elapsed} so far{against}.")

    def _replay_ended(self) -> None:
        self.clock.stop()
        self.view.replay_button.setEnabled(self._can_replay())
        self._show_replay_files()

    def _replay_failed(self, exc, details) -> None:
        self._replay_ended()
        if isinstance(exc, backend.Cancelled):
            self.view.log.add("Cancelled.")
            self.set_state("Cancelled", "The replay was cancelled.")
            return
        self.view.log.add(f"Stopped: {backend.message_of(exc)}")
        self.set_state("Failed", "The replay stopped: " + backend.message_of(exc))
        show_error(self, exc, details)

    def _replayed(self, result) -> None:
        self._replay_ended()
        verdict = backend.replay_verdict(result)
        self.replay_result = result
        self.output_dir = verdict.actual_root
        self.view.open_outputs.setEnabled(verdict.actual_root is not None)
        self.view.save_report.setEnabled(True)
        self.save_report_action.setEnabled(True)
        if not self.view.replay_panel.output_lines:   # not streamed while it ran
            for run in result.runs:
                for stream, text in (("", run.stdout), ("[stderr] ", run.stderr)):
                    for line in text.splitlines()[-200:]:
                        self.view.log.add(stream + line)
        for line in verdict.notes:
            self.view.log.add(f"note: {line}")
        text = verdict.headline
        if verdict.failure:
            text += " " + verdict.failure.splitlines()[0]
            self.view.log.add(verdict.failure)
        self.view.replay_panel.finish("")
        self.view.report.show_result(result, f"{text}  (mode {result.mode})",
                                     verdict.expected_root, verdict.actual_root)
        self.view.log.add(text)
        self.set_state("Reproduced" if verdict.reproduced else "Not reproduced", text)

    def save_report(self) -> None:
        if self.replay_result is None:
            return
        name = (self.bundle_path.name.removesuffix(backend.EXTENSION) if self.bundle_path
                else "replay") + "-report.html"
        path, _ = QFileDialog.getSaveFileName(self, "Save the replay report", name,
                                              "Web pages (*.html)")
        if path:
            self.save_report_to(Path(path))

    def save_report_to(self, path: Path) -> None:
        try:
            backend.save_text(path, backend.report_html(self.replay_result))
        except backend.StudypackError as exc:
            show_error(self, exc)
            return
        self.statusBar().showMessage(f"Report saved: {path}")

    def open_output_folder(self) -> None:
        if self.output_dir is not None:
            open_folder(self, self.output_dir)

    # ------------------------------------------------------------ replay files
    def _show_replay_files(self) -> None:
        base = self.replays_base()
        folders = backend.list_replays(base)
        size = sum(f.size for f in folders)
        self.view.replay_files.setText(
            f"Replay files: {base} \u2014 {len(folders)} replay(s), {backend.human_size(size)}. "
            f"The newest {backend.KEEP_REPLAYS} are kept; older ones, and any older than "
            f"{backend.KEEP_DAYS} days, are removed when a replay starts (Replay menu: show, "
            "move or remove them).")

    def show_replay_files(self) -> None:
        base = self.replays_base()
        base.mkdir(parents=True, exist_ok=True)
        open_folder(self, base)

    def choose_replays_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Keep replay files in",
                                                  str(self.replays_base()))
        if folder:
            self.set_replays_dir(Path(folder))

    def set_replays_dir(self, folder: Path) -> None:
        settings().setValue("replays/folder", str(folder))
        self.replays_dir = folder
        self._show_replay_files()

    def remove_replay_files(self) -> None:
        if self.view.replay_panel.running:
            show_error(self, backend.UsageError("A replay is running: its files are in use.",
                                                "Wait for it to end, or cancel it first."))
            return
        base = self.replays_base()
        folders = backend.list_replays(base)
        if not folders:
            dialogs.inform(self, "Replay files", f"There are no replay files in {base}.")
            return
        size = backend.human_size(sum(f.size for f in folders))
        if dialogs.ask(self, "Remove replay files",
                       f"Remove {len(folders)} replay folder(s), {size}, from {base}? "
                       "The bundles themselves are not touched.",
                       ["Remove", "Keep them"]) != "Remove":
            return
        removed, freed = backend.remove_replays(base, keep=0)
        if self.output_dir is not None and not self.output_dir.exists():
            self.output_dir = None
            self.view.open_outputs.setEnabled(False)
        self._show_replay_files()
        self.statusBar().showMessage(f"Removed {removed} replay folder(s), "
                                     f"{backend.human_size(freed)}.")

    # ------------------------------------------------------------ closing
    def closeEvent(self, event) -> None:
        if self.view.replay_panel.running:
            if dialogs.ask(self, "Stop the replay?",
                           "A replay is running. Closing the window stops it.",
                           ["Stop and close", "Keep replaying"]) != "Stop and close":
                event.ignore()
                return
        for panel in (self.view.replay_panel, self.view.verify_panel, self.view.files_panel):
            if panel.running:
                panel.cancel()
        self.clock.stop()
        super().closeEvent(event)
