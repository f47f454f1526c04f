"""Page 8: write the bundle, show its checksum, and optionally archive it on Zenodo."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLineEdit, QMessageBox, QPushButton, QVBoxLayout)

from .. import backend
from ..backend import Cancelled, StudypackError, human_size
from ..widgets import StatusLabel, buddy_label, open_folder
from .base import WizardPage

SITES = [("Zenodo sandbox (for trying out)", "https://sandbox.zenodo.org"),
         ("Zenodo", "https://zenodo.org")]

# Tests answer the publish confirmation here instead of a blocking dialog.
confirm_publish = None


class ExportPage(WizardPage):
    TITLE = "Write the bundle"
    SUBTITLE = ("Choose where to write the bundle. A .sha256 file with its checksum is "
                "written beside it.")

    def __init__(self, state):
        super().__init__(state)
        self.path = QLineEdit()
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        self.overwrite = QCheckBox("&Replace the file if it exists")
        self.create_button = QPushButton("&Create the bundle")
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self.start)
        self.panel = self.task_panel(work="writing the bundle")
        self.verdict = StatusLabel()
        self.checksum = QLineEdit()
        self.checksum.setReadOnly(True)
        self.checksum.setPlaceholderText("sha256 of the bundle, once written")
        self.show_folder = QPushButton("Sho&w in folder")
        self.show_folder.setEnabled(False)
        self.show_folder.clicked.connect(self._show_in_folder)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        form = QFormLayout()
        form.addRow(buddy_label("Bundle &file:", self.path), path_row)
        form.addRow("", self.overwrite)
        row = QHBoxLayout()
        row.addWidget(self.create_button)
        row.addWidget(self.panel, 1)
        sum_row = QHBoxLayout()
        sum_row.addWidget(self.checksum, 1)
        sum_row.addWidget(self.show_folder)
        layout = QVBoxLayout(self.body)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.verdict)
        layout.addLayout(sum_row)
        layout.addWidget(self._deposit_box())
        layout.addStretch(1)

    # ---------------------------------------------------------------- bundle
    def initializePage(self) -> None:
        if not self.path.text():
            self.path.setText(str(backend.default_bundle_path(self.state.spec)))

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Write the bundle to", self.path.text(),
                                              "studypack bundles (*.studypack)")
        if path:
            self.path.setText(path if path.endswith(".studypack") else path + ".studypack")

    def start(self) -> None:
        session = self.state.session
        overwrite = self.overwrite.isChecked()
        try:
            out = session.check_output(Path(self.path.text().strip()), overwrite)
            self.state.save()   # the bundle carries the answers; the folder keeps them
        except StudypackError as exc:
            self.verdict.set_status("bad", backend.message_of(exc))
            self.fail(exc)
            return
        self.create_button.setEnabled(False)
        self.show_folder.setEnabled(False)
        self.checksum.clear()
        self.state.result = None
        self.verdict.set_status("info", f"Writing {out.name}\u2026")
        self.panel.start(lambda report, cancel: session.pack(out, overwrite, report, cancel),
                         self._written, on_error=self._failed)

    def _failed(self, exc, details) -> None:
        self.create_button.setEnabled(True)
        if isinstance(exc, Cancelled):
            self.verdict.set_status("warn", "Cancelled: no bundle was written.")
            return
        self.verdict.set_status("bad", backend.message_of(exc))
        self.fail(exc, details)

    def _written(self, result: backend.BundleWritten) -> None:
        self.create_button.setEnabled(True)
        self.state.result = result
        self.checksum.setText(result.sha256)
        self.show_folder.setEnabled(True)
        self.verdict.set_status("ok", f"Written: {result.path} \u2014 {human_size(result.size)}, "
                                f"{result.files} files. Checksum (sha256) below, also in "
                                f"{result.path.name}.sha256.")
        self.panel.finish("")
        # the bundle is written: Close is the only way on; Cancel would mean nothing
        self.wizard().setOption(self.wizard().WizardOption.NoCancelButton, True)
        self.deposit_ready()
        self.completeChanged.emit()

    def deposit_ready(self) -> None:
        """A bundle is written: the deposit box opens, filled from [study]."""
        self.deposit_box.setEnabled(True)
        self._fill_deposit_fields()
        self.check_metadata()

    def _show_in_folder(self) -> None:
        if self.state.result is not None:
            open_folder(self, Path(self.state.result.path).parent)

    def ready(self) -> bool:
        return self.state.result is not None

    def validatePage(self) -> bool:
        return not self.busy   # Close: everything was saved already

    # ---------------------------------------------------------------- deposit
    def _deposit_box(self) -> QGroupBox:
        box = QGroupBox("Archive it on Zenodo (optional): get a DOI to cite")
        self.site = QComboBox()
        for label, url in SITES:
            self.site.addItem(label, url)
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("leave empty to use ZENODO_TOKEN or the system keyring")
        self.upload_type = QComboBox()
        for name in backend.upload_types():
            self.upload_type.addItem(name, name)
        self.upload_type.setToolTip("What Zenodo lists the record as (a study bundle is "
                                    "usually a dataset).")
        self.communities = QLineEdit()
        self.communities.setPlaceholderText("Zenodo community ids, comma-separated (optional)")
        self.paper_doi = QLineEdit()
        self.paper_doi.setPlaceholderText("the DOI of the paper this study supports (optional)")
        self.new_version = QCheckBox()
        self.new_version.setToolTip("Add this bundle as a new version of the study's "
                                    "record instead of making a separate record.")
        self.discard_pending = QCheckBox("Discard the pending &new version draft on Zenodo "
                                         "(its files and edits are lost)")
        self.discard_pending.hide()   # offered when Zenodo has one open
        self.checks = StatusLabel()
        for edit in (self.communities, self.paper_doi):
            edit.textChanged.connect(self.check_metadata)
        self.upload_type.currentIndexChanged.connect(self.check_metadata)
        self.publish = QCheckBox("&Publish now (mints the DOI)")
        self.publish.setToolTip("Once published, the files can never change. Otherwise the "
                                "deposit stays a draft that you review on Zenodo.")
        self.deposit_button = QPushButton("&Deposit\u2026")
        self.deposit_button.clicked.connect(self.start_deposit)
        self.deposit_panel = self.task_panel(work="the Zenodo deposit")
        self.deposit_verdict = StatusLabel()
        form = QFormLayout(box)
        form.addRow("&Site:", self.site)
        form.addRow("&Token:", self.token)
        form.addRow(buddy_label("&Upload type:", self.upload_type), self.upload_type)
        form.addRow(buddy_label("Co&mmunities:", self.communities), self.communities)
        form.addRow(buddy_label("Paper's &DOI:", self.paper_doi), self.paper_doi)
        form.addRow("", self.new_version)
        form.addRow("", self.discard_pending)
        form.addRow("", self.publish)
        form.addRow(self.checks)
        row = QHBoxLayout()
        row.addWidget(self.deposit_button)
        row.addWidget(self.deposit_panel, 1)
        form.addRow(row)
        form.addRow(self.deposit_verdict)
        box.setEnabled(False)
        self.deposit_box = box
        return box

    def base_url(self) -> str:
        return self.site.currentData()

    def _fill_deposit_fields(self) -> None:
        """From [study] of studypack.toml (what the last deposit chose is kept there)."""
        study = self.state.spec.study
        index = self.upload_type.findData(study.upload_type or "dataset")
        self.upload_type.setCurrentIndex(max(index, 0))
        self.communities.setText(", ".join(study.communities))
        paper = next((r.get("identifier", "") for r in study.related
                      if r.get("relation", "isSupplementTo") == "isSupplementTo"), "")
        self.paper_doi.setText(paper)
        self.new_version.setText(f"Add it as a new &version of {study.doi}" if study.doi else "")
        self.new_version.setVisible(bool(study.doi))

    def choices(self) -> backend.DepositChoices:
        communities = [c.strip() for c in self.communities.text().split(",") if c.strip()]
        study = self.state.spec.study
        return backend.DepositChoices(
            upload_type=self.upload_type.currentData() or "", communities=communities,
            paper_doi=self.paper_doi.text().strip(),
            new_version_of=study.doi if study.doi and self.new_version.isChecked() else "",
            discard_pending=not self.discard_pending.isHidden() and self.discard_pending.isChecked())

    def metadata_problems(self) -> list[str]:
        if self.state.result is None:
            return []
        return backend.deposit_problems(
            backend.deposit_study(Path(self.state.result.path), self.choices())[0])

    def check_metadata(self) -> bool:
        """The local checks, shown before anything is sent; True when there is none."""
        try:
            problems = self.metadata_problems()
        except StudypackError as exc:
            problems = [backend.message_of(exc)]
        if problems:
            self.checks.set_status("bad", "Zenodo would refuse this or cite it wrongly; fix "
                                   "it first (the study's own fields: on the Study page, then "
                                   "create the bundle again):\n" +
                                   "\n".join(f"\u2022 {p}" for p in problems))
        else:
            self.checks.set_status("ok" if self.state.result else "info",
                                   "The description passes Zenodo's checks." if
                                   self.state.result else "")
        return not problems

    def _keep_choices(self) -> None:
        """The choices go into [study] of studypack.toml: the next bundle carries them."""
        choices, study = self.choices(), self.state.spec.study
        study.upload_type = "" if choices.upload_type == "dataset" else choices.upload_type
        study.communities = choices.communities
        others = [r for r in study.related if r.get("relation", "isSupplementTo")
                  != "isSupplementTo"]
        study.related = others + ([{"identifier": choices.paper_doi,
                                    "relation": "isSupplementTo"}] if choices.paper_doi else [])
        if self.state.folder is not None:
            self.state.save()

    def start_deposit(self) -> None:
        if not self.check_metadata():
            self.deposit_verdict.set_status("bad", "Nothing was sent: fix the problems above.")
            return
        bundle = Path(self.state.result.path)
        publish = self.publish.isChecked()
        base_url = self.base_url()
        choices = self.choices()
        self._keep_choices()
        self.deposit_button.setEnabled(False)
        self.deposit_panel.start(
            lambda report, cancel: backend.plan_deposit(bundle, base_url, publish, choices),
            lambda planned: self._confirm(*planned),
            on_error=self._deposit_failed)

    def _confirm(self, plan, metadata_text: str) -> None:
        question = (f"Send {len(plan.files)} files ({human_size(plan.total_size)}) to "
                    f"{plan.base_url}?\n\n" + "\n".join(backend.gui_wording(n) for n in plan.notes))
        if confirm_publish is not None:
            ok = confirm_publish(question, metadata_text)
        else:
            box = QMessageBox(QMessageBox.Icon.Question, "Deposit to Zenodo", question,
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                              self)
            box.setDetailedText("Metadata that will be sent:\n" + metadata_text)
            ok = box.exec() == QMessageBox.StandardButton.Yes
        if not ok:
            self.deposit_button.setEnabled(True)
            self.deposit_verdict.set_status("info", "Nothing was sent.")
            return
        typed = self.token.text().strip()

        def work(report, cancel):
            return backend.run_deposit(plan, typed, report=report, cancel=cancel)

        self.deposit_panel.start(work, self._deposited, on_error=self._deposit_failed)

    def _deposit_failed(self, exc, details) -> None:
        self.deposit_button.setEnabled(True)
        if isinstance(exc, Cancelled):
            self.deposit_verdict.set_status("warn", "Cancelled; run it again to resume the draft.")
            return
        self.deposit_verdict.set_status("bad", backend.message_of(exc))
        if backend.is_pending_version(exc):
            # Zenodo has a new version open: offer to discard it, then deposit again
            self.discard_pending.show()
            self.deposit_verdict.set_status(
                "bad", backend.message_of(exc) + " Tick \u201cDiscard the pending new "
                "version draft\u201d and deposit again, or finish that draft on Zenodo.")
            return
        self.fail(exc, details)

    def _deposited(self, result) -> None:
        self.deposit_button.setEnabled(True)
        if result.doi and self.state.spec_path is not None:
            backend.write_doi(self.state.spec_path, result.doi)
            self.state.spec.study.doi = result.doi
            self.state.saved_text = backend.spec_text(self.state.spec)
        what = "Published" if result.state == "published" else "Draft saved"
        self.deposit_verdict.set_status(
            "ok", f"{what}: {result.record_url}" + (f" \u2014 DOI {result.doi}" if result.doi else ""))
        self.deposit_panel.finish("")
