"""Page 6: the environment recipe (Dockerfile), the image built from it, and whether
to save that image inside the bundle (exact and offline replays, but bigger)."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QPushButton, QVBoxLayout)

from .. import backend
from ..backend import Cancelled, human_size
from ..widgets import StatusLabel, mono_font
from .base import WizardPage, note


class ImagePage(WizardPage):
    TITLE = "The environment image"
    SUBTITLE = ("studypack locks and downloads the packages, writes a Dockerfile that rebuilds "
                "the environment offline, and can build the image now and keep it in the bundle.")

    def __init__(self, state):
        super().__init__(state)
        self.engine = StatusLabel()
        self.build = QCheckBox("B&uild the image now (checks that the recipe works)")
        self.save = QCheckBox("&Save the image inside the bundle (exact replays without "
                              "building; makes the bundle bigger)")
        self.base_image = QLineEdit()
        self.base_image.setPlaceholderText("default: the official python:X.Y-slim image of the "
                                           "run's Python")
        self.base_image.setToolTip("A Docker image on this computer or in a registry; studypack "
                                   "pins it by digest.")
        self.base_image.textEdited.connect(self._options_changed)
        self.skip = QCheckBox("Continue &without the environment recipe (the bundle still "
                              "replays from its traced files)")
        self.skip.hide()
        self.skip.toggled.connect(self._skip_toggled)
        self.build.toggled.connect(self._options_changed)
        self.save.toggled.connect(self._options_changed)
        self.prepare = QPushButton("&Prepare the environment")
        self.prepare.clicked.connect(self.start)
        self.verdict = StatusLabel()
        self.dockerfile = QPlainTextEdit()
        self.dockerfile.setReadOnly(True)
        self.dockerfile.setFont(mono_font())
        self.dockerfile.setPlaceholderText("The Dockerfile appears here once the environment "
                                           "is prepared.")
        self.messages = note()
        self.panel = self.task_panel(work="preparing the environment")
        # offered when the base image cannot be pulled: make one here (debootstrap)
        self.make_base = QPushButton("Build a &Debian base image here")
        self.make_base.setToolTip("From the Debian mirror, with debootstrap (needs root); "
                                  "takes a few minutes; then prepare the environment again.")
        self.make_base.clicked.connect(self.start_base_image)
        self.make_base.hide()
        self.base_panel = self.task_panel(work="building the base image")
        self.base_panel.hide()
        self.base_suite = ""
        self.base_image_ref = None   # where the image goes (None: the core's default)
        row = QHBoxLayout()
        row.addWidget(self.prepare)
        row.addWidget(self.panel, 1)
        form = QFormLayout()
        form.addRow("Base &image:", self.base_image)
        layout = QVBoxLayout(self.body)
        layout.addWidget(self.engine)
        layout.addLayout(form)
        layout.addWidget(self.build)
        layout.addWidget(self.save)
        layout.addLayout(row)
        layout.addWidget(self.verdict)
        base_row = QHBoxLayout()
        base_row.addWidget(self.make_base)
        base_row.addWidget(self.base_panel, 1)
        layout.addLayout(base_row)
        layout.addWidget(self.skip)
        layout.addWidget(QLabel("Dockerfile:"))
        layout.addWidget(self.dockerfile, 1)
        layout.addWidget(self.messages)
        self.engine_ok = False
        self.prepared_with: tuple | None = None

    def initializePage(self) -> None:
        self.base_image.setText(self.state.spec.environment.base_image)
        self.engine.set_status("info", "Looking for a container engine\u2026")
        self.panel.start(lambda report, cancel: backend.engine_status(), self._engine_known)

    def _engine_known(self, status) -> None:
        self.engine_ok, sentence = status
        self.engine.set_status("ok" if self.engine_ok else "warn", sentence)
        self.build.setEnabled(self.engine_ok)
        self.save.setEnabled(self.engine_ok)
        if not self.engine_ok:
            self.build.setChecked(False)
            self.save.setChecked(False)
        elif self.prepared_with is None:
            self.build.setChecked(self.state.build_image)
        self.panel.finish("")
        session = self.state.session
        if self.prepared_with is not None and (session is None or not session.environment_ready):
            self.prepared_with = None
            self.dockerfile.clear()
            self.messages.clear()
        if self.prepared_with is None:
            self.verdict.set_status("info", "Choose the options above, then press Prepare the "
                                    "environment (locking downloads the packages).")

    def _options_changed(self, *_):
        if self.save.isChecked() and not self.build.isChecked():
            self.build.setChecked(True)
        self.state.build_image = self.build.isChecked()
        self.state.save_image = self.save.isChecked()
        self.completeChanged.emit()

    def options(self) -> tuple[bool, bool, str]:
        return self.build.isChecked(), self.save.isChecked(), self.base_image.text().strip()

    def apply(self) -> None:
        self.state.spec.environment.base_image = self.base_image.text().strip()

    def start(self) -> None:
        session = self.state.session
        if session is None or self.panel.running:
            return
        build, save, _base = self.options()
        options = self.options()
        self.apply()   # the recipe is made from what the page says
        self.state.image = self.state.plan = None
        self.skip.hide()
        self.skip.setChecked(False)
        self.prepare.setEnabled(False)
        self.verdict.set_status("info", "Locking and downloading the packages"
                                + (", building the image" if build else "") + "\u2026")
        self.panel.start(
            lambda report, cancel: session.capture_environment(build, save, report, cancel),
            lambda env: self._prepared(env, options), on_error=self._failed)

    def _failed(self, exc, details) -> None:
        self.prepare.setEnabled(True)
        if isinstance(exc, Cancelled):
            self.verdict.set_status("warn", "Cancelled.")
            return
        self.verdict.set_status("bad", backend.message_of(exc))
        self.skip.show()
        self.fail(exc, details)

    def _prepared(self, env: backend.EnvironmentOutcome, options) -> None:
        self.prepare.setEnabled(True)
        self.prepared_with = options
        self.state.image = env
        self.dockerfile.setPlainText(env.dockerfile
                                     or "(no Dockerfile: the environment was not captured)")
        parts = ["The packages are locked and stored." if env.locked
                 else "The environment was not captured."]
        if env.image_tag:
            parts.append(f"Image built: {env.image_tag}.")
        if env.image_tar_bytes:
            parts.append(f"The saved image adds {human_size(env.image_tar_bytes)} "
                         "(before compression) to the bundle.")
        elif env.image_bytes:
            size = human_size(env.image_bytes)
            parts.append(f"Saving the image would add about {size} (before compression).")
            self.save.setText(f"&Save the image inside the bundle (about {size} "
                              "more before compression; replays need no build)")
        self.verdict.set_status("ok", " ".join(parts))
        self.messages.setText("\n".join(env.messages))
        self.offer_base_image(env.debian_suite)
        self.panel.finish("Environment ready.")
        self.completeChanged.emit()

    # ---------------------------------------------------------------- base image
    def offer_base_image(self, suite: str) -> None:
        """The base image could not be pulled: offer to make a Debian ``suite`` one."""
        self.base_suite = suite
        self.make_base.setText(f"Build a &Debian {suite} base image here" if suite else "")
        self.make_base.setVisible(bool(suite))
        self.make_base.setEnabled(bool(suite))

    def start_base_image(self) -> None:
        suite, ref = self.base_suite, self.base_image_ref
        if not suite or self.base_panel.running:
            return
        self.make_base.setEnabled(False)
        self.prepare.setEnabled(False)
        self.base_panel.show()
        self.verdict.set_status("info", f"Building a Debian {suite} base image from the "
                                "Debian mirror (a few minutes)\u2026")
        self.base_panel.start(
            lambda report, cancel: backend.make_base_image(suite, ref, report, cancel),
            self._base_made, on_error=self._base_failed)

    def _base_made(self, ref: str) -> None:
        self.base_panel.finish("")
        self.prepare.setEnabled(True)
        self.make_base.hide()
        self.base_image.setText(ref)
        self.apply()
        self.verdict.set_status("ok", f"The base image {ref} is ready. Press Prepare the "
                                "environment again to build on it.")
        self.completeChanged.emit()

    def _base_failed(self, exc, details) -> None:
        self.prepare.setEnabled(True)
        self.make_base.setEnabled(True)
        if isinstance(exc, Cancelled):
            self.verdict.set_status("warn", "Cancelled: no base image was made.")
            return
        self.verdict.set_status("bad", backend.message_of(exc))
        self.fail(exc, details)

    def _skip_toggled(self, checked: bool) -> None:
        if checked and self.state.session is not None:
            self.state.session.skip_environment()
        self.completeChanged.emit()

    def ready(self) -> bool:
        if self.skip.isChecked():
            return True
        # a new traced run drops the environment captured for the previous one
        session = self.state.session
        return (session is not None and session.environment_ready
                and self.prepared_with == self.options())
