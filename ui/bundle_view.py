"""What the replay window shows of one bundle: the start page, and the bundle's
study, files and replay tabs. The window (replay_window.py) drives them."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QHBoxLayout,
                               QLabel, QPlainTextEdit, QPushButton, QScrollArea, QSplitter,
                               QStackedWidget, QTabWidget, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from . import backend
from .backend import human_size, printable
from .report_view import ReportView
from .widgets import LogView, StatusLabel, TaskPanel, heading, mono_font, wrapped

MEMBER = Qt.ItemDataRole.UserRole   # a Files row's path inside the bundle

if TYPE_CHECKING:
    from .replay_window import ReplayWindow

def _get(doc: dict, dotted: str, default="", keep_newlines: bool = False):
    """A value of the bundle's description, as text safe to show: whoever made the bundle
    wrote it, so control characters and escape sequences are spelled out (safetext)."""
    value = doc
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    if value in (None, ""):
        return default
    return printable(value, keep_newlines=keep_newlines) if isinstance(value, str) else value


def authors_text(authors: list) -> str:
    parts = []
    for a in authors or []:
        if isinstance(a, str):
            parts.append(printable(a))
            continue
        if not isinstance(a, dict):
            continue
        text = printable(a.get("name", ""))
        if a.get("affiliation"):
            text += f" ({printable(a['affiliation'])})"
        if a.get("orcid"):
            text += f" \u2014 ORCID {printable(a['orcid'])}"
        parts.append(text)
    return "; ".join(parts) or "(no author given)"


class WelcomePage(QWidget):
    def __init__(self, window: "ReplayWindow"):
        super().__init__()
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(heading("studypack", 10), alignment=Qt.AlignmentFlag.AlignHCenter)
        intro = wrapped("Open a study bundle to see what it holds, check that it is intact, "
                        "and replay it to see whether its results reproduce on this computer. "
                        "Or turn your own study folder into a bundle.", selectable=False)
        intro.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        intro.setFixedWidth(560)
        layout.addWidget(intro, alignment=Qt.AlignmentFlag.AlignHCenter)
        row = QHBoxLayout()
        row.addStretch(1)
        self.open_button = QPushButton("Open a bundle\u2026")
        self.open_button.clicked.connect(window.choose_bundle)
        self.create_button = QPushButton("Create a bundle from a study folder\u2026")
        self.create_button.clicked.connect(window.start_wizard)
        for b in (self.open_button, self.create_button):
            b.setMinimumHeight(40)
            row.addWidget(b)
        row.addStretch(1)
        layout.addLayout(row)
        hint = wrapped("You can also drop a .studypack file on this window.", selectable=False)
        hint.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        hint.setStyleSheet("color: #666;")
        layout.addWidget(hint)
        layout.addStretch(2)


class BundleView(QWidget):
    """Everything about one open bundle."""

    def __init__(self, window: "ReplayWindow"):
        super().__init__()
        self.window_ = window
        self.title = heading("")
        self.authors = wrapped("")
        self.facts_line = wrapped("")
        for label in (self.title, self.authors, self.facts_line):
            label.setTextFormat(Qt.TextFormat.PlainText)
        self.facts_line.setStyleSheet("color: #555;")
        self.integrity = StatusLabel()
        self.signature = StatusLabel()
        self.verify_panel = TaskPanel()
        self.problems = wrapped("")
        self.problems.setTextFormat(Qt.TextFormat.PlainText)
        self.problems.setStyleSheet("color: #cf222e;")
        self.problems.hide()

        self.tabs = QTabWidget()
        self.tabs.addTab(self._about_tab(), "&Study")
        self.tabs.addTab(self._files_tab(), "Fi&les")
        self.tabs.addTab(self._replay_tab(), "Re&play")

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.authors)
        layout.addWidget(self.facts_line)
        status = QHBoxLayout()
        status.addWidget(self.integrity, 1)
        status.addWidget(self.signature, 1)
        layout.addLayout(status)
        layout.addWidget(self.verify_panel)
        layout.addWidget(self.problems)
        layout.addWidget(self.tabs, 1)

    # ---------------------------------------------------------------- tabs
    def _about_tab(self) -> QWidget:
        inner = QWidget()
        self.about = QFormLayout(inner)
        self.about.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.about.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.fields: dict[str, QLabel] = {}
        for key, label in (("description", "Description"), ("keywords", "Keywords"),
                           ("license", "License"), ("doi", "DOI"), ("when", "Run on"),
                           ("where", "Run where"), ("command", "Command"),
                           ("outcome", "Outcome"), ("environment", "Environment"),
                           ("image", "Saved image"), ("size", "Bundle"),
                           ("format", "Format")):
            value = wrapped("")
            # a bundle is a stranger's text: only our own markup is rendered
            value.setTextFormat(Qt.TextFormat.RichText if key in ("doi", "command", "environment")
                                else Qt.TextFormat.PlainText)
            self.fields[key] = value
            self.about.addRow(f"<b>{label}</b>", value)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        return scroll

    def _files_tab(self) -> QWidget:
        self.files = QTreeWidget()
        self.files.setHeaderLabels(["File", "Size"])
        self.files.setColumnWidth(0, 360)
        self.files.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.files.itemSelectionChanged.connect(self.window_.preview_selected)
        self.preview_text = QPlainTextEdit()
        self.preview_text.setReadOnly(True)
        self.preview_text.setFont(mono_font())
        self.preview_text.setPlaceholderText("Select a file to preview it (text or image).")
        self.preview_image = QLabel()
        self.preview_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        image_scroll = QScrollArea()
        image_scroll.setWidgetResizable(True)
        image_scroll.setWidget(self.preview_image)
        self.preview = QStackedWidget()
        self.preview.addWidget(self.preview_text)
        self.preview.addWidget(image_scroll)
        self.extract_button = QPushButton("E&xtract selected…")
        self.extract_button.setEnabled(False)
        self.extract_button.clicked.connect(self.window_.extract_selected)
        self.files_panel = TaskPanel()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.files)
        splitter.addWidget(self.preview)
        splitter.setSizes([420, 380])
        row = QHBoxLayout()
        row.addWidget(self.extract_button)
        row.addWidget(self.files_panel, 1)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(splitter, 1)
        layout.addLayout(row)
        return page

    def selected_members(self) -> list[str]:
        return [m for m in (i.data(0, MEMBER) for i in self.files.selectedItems()) if m]

    def fill_sizes(self, sizes: dict[str, int]) -> None:
        for i in range(self.files.topLevelItemCount()):
            top = self.files.topLevelItem(i)
            for j in range(top.childCount()):
                item = top.child(j)
                member = item.data(0, MEMBER)
                if member in sizes:
                    item.setText(1, human_size(sizes[member]))

    def show_preview(self, image, text) -> None:
        """``text`` None: ``image`` (a QImage), or a file that cannot be shown."""
        if text is not None:
            self.preview_text.setPlainText(text)
            self.preview.setCurrentIndex(0)
            return
        pixmap = QPixmap.fromImage(image) if image is not None and not image.isNull() \
            else QPixmap()
        if pixmap.isNull():
            self.preview_text.setPlainText("(not text, and not an image this window can show: "
                                           "extract it to open it with its own program)")
            self.preview.setCurrentIndex(0)
            return
        self.preview_image.setPixmap(pixmap.scaled(
            520, 520, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))
        self.preview.setCurrentIndex(1)

    def _replay_tab(self) -> QWidget:
        page = QWidget()
        self.mode = QComboBox()
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode.setMinimumContentsLength(20)
        self.unavailable = wrapped("")
        self.unavailable.setStyleSheet("color: #57606a;")
        self.replay_button = QPushButton("&Replay the study")
        self.replay_button.setDefault(True)
        self.replay_button.clicked.connect(self.window_.start_replay)
        self.open_outputs = QPushButton("&Open the output folder")
        self.open_outputs.setEnabled(False)
        self.open_outputs.clicked.connect(self.window_.open_output_folder)
        self.save_report = QPushButton("Save the report as &HTML…")
        self.save_report.setEnabled(False)
        self.save_report.clicked.connect(self.window_.save_report)
        mode_label = QLabel("&Mode:")
        mode_label.setBuddy(self.mode)
        row = QHBoxLayout()
        row.addWidget(mode_label)
        row.addWidget(self.mode, 1)
        row.addWidget(self.replay_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_outputs)
        buttons.addWidget(self.save_report)
        buttons.addStretch(1)
        self.replay_files = wrapped("")
        self.replay_files.setStyleSheet("color: #57606a;")
        self.log = LogView()
        self.log.setPlaceholderText("The replay's log, with the study's own output, appears here.")
        self.log.setMinimumHeight(50)
        self.replay_panel = TaskPanel(log=self.log)
        self.report = ReportView()
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.log)
        splitter.addWidget(self.report)
        splitter.setSizes([140, 380])
        layout = QVBoxLayout(page)
        layout.addLayout(row)
        layout.addWidget(self.unavailable)
        layout.addWidget(self.replay_panel)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.replay_files)
        return page

    def show_modes(self, choices: list) -> None:
        """Only the modes this bundle can use here; the others, and why, below."""
        self.mode.clear()
        for choice in choices:
            if choice.usable:
                label = backend.mode_label(choice.name)
                if choice.name == "auto":
                    label += f" ({choice.reason})"
                self.mode.addItem(label, choice.name)
        missing = [f"{c.name}: {c.reason}" for c in choices if not c.usable and c.name != "auto"]
        self.unavailable.setText("Not possible here — " + "; ".join(missing) + "."
                                 if missing else "")
        self.unavailable.setVisible(bool(missing))

    # ---------------------------------------------------------------- fill
    def show_info(self, info) -> None:
        meta = info.metadata or {}
        study = meta.get("study", {})
        self.title.setText(_get(study, "title") or printable(info.bag_name))
        self.authors.setText(authors_text(study.get("authors", [])))
        runs = meta.get("runs") or []
        first = runs[0] if runs else {}
        self.facts_line.setText(
            f"{printable(info.path.name)} \u2014 {human_size(info.compressed_size)}, "
            f"format version {info.format_version}")
        f = self.fields
        f["description"].setText(_get(study, "description", "(none)", keep_newlines=True))
        f["keywords"].setText(", ".join(printable(k) for k in study.get("keywords") or [])
                              or "(none)")
        f["license"].setText(_get(study, "license", "(not stated)"))
        doi = _get(study, "doi")
        doi = html.escape(doi, quote=True)
        f["doi"].setText(f'<a href="https://doi.org/{doi}">{doi}</a>' if doi
                         else "not deposited yet")
        f["doi"].setOpenExternalLinks(True)
        f["when"].setText(_when(_get(first, "started_at")) or "(not recorded)")
        host = first.get("host", {}) if isinstance(first, dict) else {}
        where = "; ".join(f"{label} {printable(host[key])}" for key, label in (
            ("hostname", "computer"), ("os", "system"), ("kernel", "kernel"),
            ("architecture", "architecture"), ("cpu", "processor"), ("user", "user"))
            if host.get(key))
        f["where"].setText(where or "(not recorded)")
        commands = [printable(" ".join(map(str, r.get("command") or [])))
                    for r in runs if isinstance(r, dict)]
        f["command"].setText("<br>".join(f"<code>{html.escape(c)}</code>" for c in commands)
                             or "(none)")
        outcomes = [f"exit code {r.get('exit_code')}, {r.get('duration_s', '?')} s"
                    for r in runs if isinstance(r, dict)]
        f["outcome"].setText("; ".join(outcomes) or "(not recorded)")
        env = meta.get("environment", {})
        f["environment"].setText(_describe_environment(env))
        f["image"].setText("yes: replays load it, exactly and offline"
                           if _get(meta, "environment.image.saved") else "no")
        f["size"].setText(f"{human_size(info.compressed_size)} compressed")
        f["format"].setText(f"studypack format {printable(info.format_version)}, "
                            f"bag {printable(info.bag_name)}")
        self._fill_files(meta)

    def _fill_files(self, meta: dict) -> None:
        self.files.clear()
        counts = meta.get("counts") or {}
        for key, label, count_keys in (
                ("inputs", "Inputs (code and data)", ("code", "data")),
                ("outputs", "Outputs of the original run", ("outputs",)),
                ("data_references", "Data kept by reference (downloaded at replay)",
                 ("referenced",))):
            entries = meta.get(key) or []
            if not entries and key == "data_references":
                continue
            total = sum(int((counts.get(k) or {}).get("bytes", 0)) for k in count_keys)
            top = QTreeWidgetItem([f"{label} \u2014 {len(entries)} files", human_size(total)])
            sizes = {e.get("path"): e.get("size") for e in entries if isinstance(e, dict)}
            for entry in entries:
                relpath = entry.get("path", "?") if isinstance(entry, dict) else str(entry)
                size = sizes.get(relpath)
                item = QTreeWidgetItem(top, [printable(relpath), human_size(int(size)) if size is not None
                                             else ""])
                if key != "data_references":
                    item.setData(0, MEMBER, backend.bundle_member(
                        "output" if key == "outputs" else "input", relpath))
            self.files.addTopLevelItem(top)
            top.setExpanded(key == "outputs")
        for key, label in (("rootfs", "System files the run used (ReproZip trace)"),
                           ("env", "Environment: lock file, packages, Dockerfile"),
                           ("image", "Saved container image")):
            part = counts.get(key) or {}
            if part.get("files"):
                self.files.addTopLevelItem(QTreeWidgetItem(
                    [f"{label} \u2014 {part['files']} files", human_size(int(part.get("bytes", 0)))]))


def _describe_environment(env) -> str:
    if not isinstance(env, dict) or not env:
        return "(not recorded)"
    lines = [env.get("detected") or " ".join(
        str(env[k]) for k in ("kind", "python_version", "platform") if env.get(k))]
    if env.get("lock_file"):
        lines.append(f"locked in {env['lock_file']}: {env.get('packages', '?')} packages"
                     + (f", {env['wheels']} wheels vendored" if env.get("wheels") else ""))
    base = env.get("base_image")
    if isinstance(base, dict) and base.get("pinned"):
        lines.append(f"image recipe FROM {base.get('ref')} (pinned {base.get('digest', '')[:19]}\u2026)")
    image = env.get("image")
    if isinstance(image, dict) and image.get("built"):
        lines.append(f"image built with {image.get('engine', 'a container engine')}")
    return "<br>".join(html.escape(printable(l)) for l in lines if l) or "(not recorded)"


def _when(iso: str) -> str:
    """2026-11-21T23:09:04Z -> 2026-11-21 23:09 UTC"""
    if len(iso) >= 16 and iso[10] == "T":
        return f"{iso[:10]} {iso[11:16]} UTC"
    return iso
