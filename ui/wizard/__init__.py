"""The bundle wizard: a guided editor of ``studypack.toml`` that ends with a bundle.

Pages, in order: Folder, Study, Code, Data, Environment, Run, Image, Review, Export.
Each page starts from what was detected in the folder, and writes the spec when the
user presses Next, so `studypack create FOLDER` can repeat the same bundle later.
The state shared between pages lives in :class:`WizardState`, not in the pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QWizard

from studypack.spec import StudySpec

from .. import backend


@dataclass
class WizardState:
    folder: Optional[Path] = None
    spec: Optional[StudySpec] = None
    spec_existed: bool = False
    spec_path: Optional[Path] = None
    files: Any = None            # backend.FilePlan
    environment: Any = None      # backend.EnvironmentView
    session: Any = None          # the core's create session (trace, plan, pack)
    trace: Any = None            # the trace result of the Run page
    image: Any = None            # the build result of the Image page
    save_image: bool = False
    build_image: bool = True
    result: Any = None           # the CreateResult of the Export page
    notes: list[str] = field(default_factory=list)

    def save(self) -> Path:
        """Write studypack.toml now (the user accepted the folder on the first page)."""
        self.spec_path = backend.save_study(self.spec, self.folder)
        return self.spec_path


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
        self.pages = {}
        for cls in (FolderPage, StudyPage, CodePage, DataPage, EnvironmentPage, RunPage,
                    ImagePage, ReviewPage, ExportPage):
            page = cls(self.state)
            self.pages[cls.__name__] = page
            self.addPage(page)
        self.resize(QSize(960, 700))
        self.setMinimumSize(QSize(760, 560))

    def page_named(self, name: str):
        return self.pages[name]

    def reject(self) -> None:
        for page in self.pages.values():
            stop = getattr(page, "stop_tasks", None)
            if stop:
                stop()
        super().reject()

    def done(self, result: int) -> None:
        if self.state.session is not None and not any(p.busy for p in self.pages.values()):
            self.state.session.close()   # the traced files and wheels are in the bundle now
            self.state.session = None
        super().done(result)
