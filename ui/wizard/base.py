"""What every wizard page shares: the state, a scrolling body, running a task."""

from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget, QWizardPage

from ..backend import StudypackError
from ..dialogs import show_error
from ..widgets import TaskPanel


class WizardPage(QWizardPage):
    TITLE = ""
    SUBTITLE = ""
    WORK = "work"   # what a task of this page is, for "Still running: ..."

    def __init__(self, state):
        super().__init__()
        self.state = state
        self.setTitle(self.TITLE)
        self.setSubTitle(self.SUBTITLE)
        self.panels: list[TaskPanel] = []
        # the page's own widgets go into ``body``: on a small screen it scrolls
        # instead of pushing Next and Cancel off the screen
        self.body = QWidget()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def task_panel(self, log=None, work: Optional[str] = None) -> TaskPanel:
        panel = TaskPanel(log=log)
        panel.work = work or self.WORK
        panel.started.connect(self.completeChanged)
        panel.ended.connect(self.completeChanged)
        self.panels.append(panel)
        return panel

    @property
    def busy(self) -> bool:
        return any(p.running for p in self.panels)

    def busy_with(self) -> list[str]:
        return [p.work for p in self.panels if p.running]

    def isComplete(self) -> bool:
        return not self.busy and self.ready()

    def ready(self) -> bool:
        return True

    def stop_tasks(self) -> None:
        for panel in self.panels:
            if panel.running:
                panel.cancel()

    def cleanupPage(self) -> None:
        """Back: what this page started stops (a pack must not go on behind the user)."""
        self.stop_tasks()
        super().cleanupPage()

    def apply(self) -> None:
        """Copy the page's fields into ``self.state.spec`` (override)."""

    def validatePage(self) -> bool:
        if self.busy:
            return False
        try:
            self.apply()
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
