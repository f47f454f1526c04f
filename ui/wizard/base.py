"""What every wizard page shares: the state, saving the spec, running a task."""

from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import QLabel, QWizardPage

from studypack.errors import StudypackError

from ..dialogs import show_error
from ..widgets import TaskPanel


class WizardPage(QWizardPage):
    TITLE = ""
    SUBTITLE = ""

    def __init__(self, state):
        super().__init__()
        self.state = state
        self.setTitle(self.TITLE)
        self.setSubTitle(self.SUBTITLE)
        self.panels: list[TaskPanel] = []

    def task_panel(self, log=None) -> TaskPanel:
        panel = TaskPanel(log=log)
        panel.started.connect(self.completeChanged)
        panel.ended.connect(self.completeChanged)
        self.panels.append(panel)
        return panel

    @property
    def busy(self) -> bool:
        return any(p.running for p in self.panels)

    def isComplete(self) -> bool:
        return not self.busy and self.ready()

    def ready(self) -> bool:
        return True

    def stop_tasks(self) -> None:
        for panel in self.panels:
            if panel.running:
                panel.cancel()

    def apply(self) -> None:
        """Copy the page's fields into ``self.state.spec`` (override)."""

    def validatePage(self) -> bool:
        if self.busy:
            return False
        try:
            self.apply()
            if self.state.spec is not None and self.state.folder is not None:
                self.state.save()
        except StudypackError as exc:
            show_error(self, exc)
            return False
        return True

    def fail(self, exc: BaseException, details: str = "") -> None:
        show_error(self, exc, details)


def note(text: str = "", colour: Optional[str] = None) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if colour:
        label.setStyleSheet(f"color: {colour};")
    return label
