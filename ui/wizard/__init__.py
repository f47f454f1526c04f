"""The bundle wizard: a guided editor of ``studypack.toml`` that ends with a bundle.

Pages, in order: Folder, Study, Code, Data, Environment, Run, Image, Review, Export.
Each page starts from what was detected in the folder. Answers stay in memory until the
user saves them: ``studypack.toml`` is written when the bundle is written, or when the
user leaving the wizard chooses to save — never a half-made test command.
The state shared between pages lives in :class:`WizardState`, not in the pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget, QWizard

from .. import backend, dialogs
from ..backend import StudySpec

STEPS = ["Folder", "Study", "Code", "Data", "Environment", "Run", "Image", "Review",
         "Write"]


@dataclass
class WizardState:
    folder: Optional[Path] = None
    spec: Optional[StudySpec] = None
    spec_existed: bool = False
    saved_text: str = ""                              # the spec as last saved or opened
    files: Optional[backend.FilePlan] = None
    environment: Optional[backend.EnvironmentView] = None
    session: Optional[backend.CreateSession] = None   # trace, environment, plan, pack
    trace: Optional[backend.TraceView] = None         # the Run page's traced run
    image: Optional[backend.EnvironmentOutcome] = None  # the Image page's outcome
    plan: Optional[backend.PlanView] = None           # the Review page's plan
    save_image: bool = False
    build_image: bool = True
    result: Optional[backend.BundleWritten] = None    # the Export page's bundle

    @property
    def spec_path(self) -> Optional[Path]:
        return self.folder / backend.SPEC_NAME if self.folder else None

    def opened(self, folder: Path, spec: StudySpec, existed: bool) -> None:
        self.folder, self.spec, self.spec_existed = folder, spec, existed
        self.saved_text = backend.spec_text(spec)
        self.files = self.environment = self.trace = self.image = self.plan = None

    def save(self) -> Path:
        """Write studypack.toml now (the user asked: Save, or Create the bundle)."""
        path = backend.save_study(self.spec, self.folder)
        self.saved_text = backend.spec_text(self.spec)
        self.spec_existed = True
        return path

    def unsaved(self) -> bool:
        return self.spec is not None and backend.spec_text(self.spec) != self.saved_text


class StepList(QWidget):
    """Where the user is: the steps down the side, the current one marked."""

    def __init__(self):
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 12, 6)
        self.labels = []
        for number, name in enumerate(STEPS, 1):
            label = QLabel(f"{number}. {name}")
            self.labels.append(label)
            layout.addWidget(label)
        layout.addStretch(1)
        self.current = -1
        self.show_step(0)

    def show_step(self, index: int) -> None:
        self.current = index
        for i, label in enumerate(self.labels):
            mark = "\u25b6 " if i == index else ("\u2713 " if i < index else "   ")
            label.setText(f"{mark}{i + 1}. {STEPS[i]}")
            label.setStyleSheet("font-weight: bold;" if i == index
                                else ("color: #57606a;" if i > index else ""))


class BundleWizard(QWizard):
    def __init__(self, folder: Optional[Path] = None, parent=None):
        super().__init__(parent)
        from .code_page import CodePage
        from .data_page import DataPage
        from .environment_page import EnvironmentPage
        from .export_page import ExportPage
        from .folder_page import FolderPage
        from .image_page import ImagePage
        from .review_page import ReviewPage
        from .run_page import RunPage
        from .study_page import StudyPage

        self.state = WizardState(folder=Path(folder).resolve() if folder else None)
        self.setWindowTitle("Create a study bundle \u2014 studypack")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, False)
        self.setOption(QWizard.WizardOption.HaveHelpButton, False)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Do&ne")
        self.steps = StepList()
        self.setSideWidget(self.steps)
        self.pages = {}
        for cls in (FolderPage, StudyPage, CodePage, DataPage, EnvironmentPage, RunPage,
                    ImagePage, ReviewPage, ExportPage):
            page = cls(self.state)
            self.pages[cls.__name__] = page
            self.addPage(page)
        self._last_id = self.startId()
        self.currentIdChanged.connect(self._moved)
        self.on_done_open = None    # called with the bundle path when the user wants it open
        self.setMinimumSize(QSize(640, 440))
        screen = self.screen().availableGeometry() if self.screen() else None
        self.resize(QSize(min(980, screen.width()) if screen else 980,
                          min(700, screen.height() - 40) if screen else 700))

    def page_named(self, name: str):
        return self.pages[name]

    def _moved(self, page_id: int) -> None:
        ids = self.pageIds()
        if page_id in ids:
            self.steps.show_step(ids.index(page_id))
        went_back = page_id in ids and self._last_id in ids and \
            ids.index(page_id) < ids.index(self._last_id)
        self._last_id = page_id
        page = self.page(page_id)
        if went_back and page is not None and self.state.spec is not None:
            page.initializePage()   # what a later page ran may have changed this one

    # ---------------------------------------------------------------- leaving
    def _work_in_progress(self) -> list[str]:
        return [what for page in self.pages.values() for what in page.busy_with()]

    def confirm_leave(self) -> bool:
        """Ask before losing work or edits; True when the wizard may close."""
        try:
            self.currentPage().apply()   # what is typed on this page counts as an edit
        except backend.StudypackError:
            pass
        busy = self._work_in_progress()
        unsaved = self.state.unsaved()
        traced_unused = self.state.trace is not None and self.state.result is None
        if not busy and not unsaved and not traced_unused:
            return True
        lines = []
        if busy:
            lines.append("Still running: " + ", ".join(busy) + ". It will be stopped.")
        elif traced_unused:
            lines.append("The traced run and the prepared environment have not been "
                         "written into a bundle; they will be discarded.")
        if unsaved:
            lines.append(f"Your answers are not saved in {backend.SPEC_NAME}.")
        choices = (["Save and close", "Close without saving", "Keep working"] if unsaved
                   else ["Stop and close" if busy else "Close", "Keep working"])
        answer = dialogs.ask(self, "Leave the wizard?", "\n\n".join(lines), choices)
        if answer in (None, "Keep working"):
            return False
        if answer == "Save and close":
            try:
                self.state.save()
            except backend.StudypackError as exc:
                dialogs.show_error(self, exc)
                return False
        return True

    def reject(self) -> None:
        """Cancel, Esc and the window's close button all come here."""
        if not self.confirm_leave():
            return
        self._stop_and_close_session()
        super().reject()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.reject()   # the same question as Cancel, never a silent close
            return
        super().keyPressEvent(event)

    def _stop_and_close_session(self) -> None:
        for page in self.pages.values():
            page.stop_tasks()
        session = self.state.session
        self.state.session = None
        if session is None:
            return
        if not self._work_in_progress():
            session.close()
            return
        # the work stops at its next check; its folder goes once the last task ends
        def maybe_close():
            if not self._work_in_progress():
                session.close()
        for page in self.pages.values():
            for panel in page.panels:
                panel.ended.connect(maybe_close)

    def done(self, result: int) -> None:
        if result == QWizard.DialogCode.Accepted:
            self._stop_and_close_session()   # the traced files and wheels are in the bundle
            bundle = self.state.result.path if self.state.result else None
            super().done(result)
            if bundle is not None and self.on_done_open is not None and dialogs.ask(
                    self, "Bundle written", f"Open {bundle.name} to check and replay it?",
                    ["Open it", "Not now"]) == "Open it":
                self.on_done_open(bundle)
            return
        super().done(result)
