"""Page 3: the input data — packed into the bundle, or kept outside by reference.

A file kept by reference is named by its URL, size and sha256 (BagIt fetch.txt); the
replay downloads it and refuses it unless the checksum matches.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout,
                               QHeaderView, QPushButton, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout)

from .. import backend
from ..backend import DataReference, UsageError, human_size
from .base import WizardPage, note

PACK, REFERENCE = "In the bundle", "By reference (URL)"
PATH, SIZE, HOW, URL = range(4)


class DataPage(WizardPage):
    TITLE = "The input data"
    SUBTITLE = ("These files are read by the study. Pack them into the bundle, or keep a large "
                "public file by reference: its URL and checksum go in the bundle instead.")

    def __init__(self, state):
        super().__init__(state)
        self.tree = QTreeWidget()
        self.tree.setRootIsDecorated(False)
        self.tree.setHeaderLabels(["Data file", "Size", "How it travels", "URL (for a reference)"])
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed
                                  | QAbstractItemView.EditTrigger.SelectedClicked)
        header = self.tree.header()
        header.setSectionResizeMode(PATH, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(SIZE, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(HOW, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(URL, QHeaderView.ResizeMode.Stretch)
        self.tree.itemChanged.connect(lambda *_: self._update_total())
        self.digests: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        add_folder = QPushButton("Add a data &folder\u2026")
        add_folder.clicked.connect(lambda: self._add(folder=True))
        add_file = QPushButton("Add a data f&ile\u2026")
        add_file.clicked.connect(lambda: self._add(folder=False))
        self.detected = note()
        self.total = note()
        self.panel = self.task_panel(work="listing the data")
        buttons = QHBoxLayout()
        buttons.addWidget(add_folder)
        buttons.addWidget(add_file)
        buttons.addStretch(1)
        layout = QVBoxLayout(self.body)
        layout.addWidget(self.detected)
        layout.addLayout(buttons)
        layout.addWidget(self.panel)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.total)

    def initializePage(self) -> None:
        spec = self.state.spec
        self.detected.setText(
            "Data folders: " + (", ".join(spec.data_paths) or "none found yet \u2014 add the "
                                "files or folders your study reads.")
            + ("  Results folders (Run page): " + ", ".join(spec.output_paths)
               if spec.output_paths else ""))
        self._refresh()

    def _refresh(self) -> None:
        spec = self.state.spec
        self.panel.start(lambda report, cancel: backend.plan_files(spec), self._planned)

    def _planned(self, plan) -> None:
        self.state.files = plan
        self.panel.finish("")
        refs = {r.path: r for r in self.state.spec.data_references}
        self.tree.blockSignals(True)
        self.tree.clear()
        rows = [(f.relpath, f.size) for f in plan.data]
        rows += [(r.path, r.size) for r in refs.values()]
        for relpath, size in sorted(rows):
            self.sizes[relpath] = size
            item = QTreeWidgetItem(self.tree, [relpath, human_size(size), "", ""])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            how = QComboBox()
            how.addItems([PACK, REFERENCE])
            if relpath in refs:
                how.setCurrentText(REFERENCE)
                item.setText(URL, refs[relpath].url)
                self.digests[relpath] = refs[relpath].sha256
            how.currentTextChanged.connect(lambda text, p=relpath: self._how_changed(p, text))
            self.tree.setItemWidget(item, HOW, how)
        self.tree.blockSignals(False)
        self._update_total()

    def _item(self, relpath: str):
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.text(PATH) == relpath:
                return item
        return None

    def how(self, relpath: str) -> str:
        return self.tree.itemWidget(self._item(relpath), HOW).currentText()

    def set_how(self, relpath: str, how: str, url: str = "") -> None:
        item = self._item(relpath)
        item.setText(URL, url)
        self.tree.itemWidget(item, HOW).setCurrentText(how)

    def _how_changed(self, relpath: str, how: str) -> None:
        if how == REFERENCE and relpath not in self.digests:
            path = self.state.folder / relpath
            self.panel.start(lambda report, cancel: backend.sha256_of(path, report, cancel),
                             lambda digest: self._digested(relpath, digest))
            item = self._item(relpath)
            self.tree.editItem(item, URL)
        self._update_total()

    def _digested(self, relpath: str, digest: str) -> None:
        self.digests[relpath] = digest
        self.panel.finish(f"Checksum of {relpath}: sha256 {digest[:16]}\u2026")

    def _update_total(self) -> None:
        packed = referenced = n_packed = n_ref = 0
        for relpath, size in self.sizes.items():
            if self._item(relpath) is None:
                continue
            if self.how(relpath) == REFERENCE:
                referenced += size
                n_ref += 1
            else:
                packed += size
                n_packed += 1
        text = f"Total: {n_packed} files packed ({human_size(packed)})"
        if n_ref:
            text += f", {n_ref} kept by reference ({human_size(referenced)}, downloaded at replay)"
        self.total.setText(text + ".")

    def _add(self, folder: bool) -> None:
        root = self.state.folder
        if folder:
            chosen = QFileDialog.getExistingDirectory(self, "Add a data folder", str(root))
            paths = [chosen] if chosen else []
        else:
            paths, _ = QFileDialog.getOpenFileNames(self, "Add data files", str(root))
        try:
            for p in paths:
                self.add_path(Path(p), folder)
        except UsageError as exc:
            self.fail(exc)
        if paths:
            self._refresh()

    def add_path(self, path: Path, folder: bool) -> None:
        try:
            rel = Path(path).resolve().relative_to(self.state.folder)
        except ValueError:
            raise UsageError(f"{path} is outside the study folder {self.state.folder}.",
                             "Copy the data into the study folder, or keep it by reference.")
        text = rel.as_posix() + ("/" if folder else "")
        if text not in self.state.spec.data_paths:
            self.state.spec.data_paths.append(text)

    def apply(self) -> None:
        references = []
        for relpath, size in self.sizes.items():
            item = self._item(relpath)
            if item is None or self.how(relpath) != REFERENCE:
                continue
            url = item.text(URL).strip()
            if not url.startswith(("http://", "https://")):
                raise UsageError(f"{relpath} is kept by reference but has no URL.",
                                 "Type the address where a reader can download it "
                                 "(https://...), or pack it into the bundle.")
            references.append(DataReference(path=relpath, url=url, size=size,
                                            sha256=self.digests[relpath]))
        self.state.spec.data_references = references
