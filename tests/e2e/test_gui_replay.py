"""The replay window, as someone who received a bundle uses it: open it (argument,
drop, macOS FileOpen), see what it is, see that it is intact and who signed it,
replay it and read the report. Real bundles, real replays."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, tmp_path, immediate_tasks):
    from studypack_gui.replay_window import ReplayWindow
    w = ReplayWindow()
    w.replays_dir = tmp_path / "replays"
    qtbot.addWidget(w)
    w.show()
    return w


def test_opening_a_bundle_shows_the_study_and_that_it_is_intact(window, example_bundle,
                                                                immediate_tasks):
    window.open_bundle(example_bundle)
    view = window.view
    assert window.stack.currentWidget() is view
    assert view.title.text() == "Heat diffusion on a rod"
    assert "Ada Lovelace" in view.authors.text() and "0000-0002-1825-0097" in view.authors.text()
    assert view.fields["license"].text() == "CC-BY-4.0"
    assert "analysis.py" in view.fields["command"].text()
    assert view.fields["when"].text().startswith("20")
    assert view.integrity.state == "ok" and "Intact" in view.integrity.text()
    assert "Unsigned" in view.signature.text()
    assert view.replay_button.isEnabled()
    assert immediate_tasks == []


@pytest.mark.slow
def test_replay_reproduces_the_example_and_shows_the_report(window, example_bundle):
    window.open_bundle(example_bundle)
    view = window.view
    mode_index = view.mode.findData("directory")   # needs no container engine
    view.mode.setCurrentIndex(mode_index)
    view.replay_button.click()
    result = window.replay_result
    assert result is not None and result.reproduced, [o.status for o in result.outputs]
    report = view.report
    assert report.table.rowCount() == len(result.outputs) >= 2
    statuses = {report.table.item(r, 1).text() for r in range(report.table.rowCount())}
    assert statuses == {"\u2714 reproduced"}
    assert "reproduced" in report.headline.text().lower()
    assert "mode directory" in view.log.toPlainText() or "directory" in view.log.toPlainText()
    assert view.open_outputs.isEnabled() and window.output_dir.is_dir()
    assert (window.output_dir / result.outputs[0].path).is_file()
    # selecting a reproduced text output explains it instead of showing a diff
    report.table.selectRow(0)
    assert "exactly" in report.diff.toPlainText()


def test_a_damaged_bundle_is_reported_and_cannot_be_replayed(window, example_bundle, tmp_path):
    damaged = tmp_path / "damaged.studypack"
    data = bytearray(example_bundle.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    damaged.write_bytes(bytes(data))
    window.open_bundle(damaged)
    view = window.view
    assert view.integrity.state == "bad" and "DAMAGED" in view.integrity.text()
    assert view.problems.isVisibleTo(window) and view.problems.text()
    assert not view.replay_button.isEnabled()


def test_a_signed_bundle_names_its_key_and_a_wrong_signature_is_flagged(window, example_bundle,
                                                                        tmp_path):
    from studypack.signing import generate_keypair, sign_bundle
    bundle = tmp_path / "signed.studypack"
    shutil.copy(example_bundle, bundle)
    keys = generate_keypair(tmp_path / "key")
    sign_bundle(bundle, keys.secret_key)
    window.open_bundle(bundle)
    assert window.view.signature.state == "ok"
    assert f"Signed by key {keys.key_id}" in window.view.signature.text()

    other = tmp_path / "other.studypack"
    shutil.copy(example_bundle, other)
    shutil.copy(f"{bundle}.minisig", f"{other}.minisig")   # a signature of another bundle
    sig = Path(f"{other}.minisig")
    lines = sig.read_text().splitlines()
    # tamper with the trusted comment: the signature no longer matches
    lines[2] = lines[2].replace("signed.studypack", "forged.studypack")
    sig.write_text("\n".join(lines) + "\n")
    window.open_bundle(other)
    assert window.view.signature.state == "bad"
    assert "does not match" in window.view.signature.text()


def test_dropping_a_bundle_on_the_window_opens_it(window, example_bundle):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(example_bundle))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.bundle_path == example_bundle
    assert window.view.title.text() == "Heat diffusion on a rod"


def test_a_file_that_is_not_a_bundle_gets_one_sentence(window, tmp_path, immediate_tasks):
    bogus = tmp_path / "notes.studypack"
    bogus.write_text("these are my notes, not a bundle\n")
    window.open_bundle(bogus)
    assert window.bundle_path is None
    assert len(immediate_tasks) == 1
    title, body, details = immediate_tasks[0]
    assert title == "studypack" and "notes.studypack" in body
    assert "Traceback" not in body


@pytest.fixture(scope="module")
def random_bundle(tmp_path_factory) -> Path:
    """A study that draws an unseeded random number: a replay cannot reproduce it."""
    import subprocess
    import sys
    from tests.support.helpers import STUDIES, run_cli
    base = tmp_path_factory.mktemp("gui-random")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    study = base / "unseeded-random"
    shutil.copytree(STUDIES / "unseeded-random", study,
                    ignore=shutil.ignore_patterns("results"))
    spec = study / "studypack.toml"
    spec.write_text(spec.read_text()
                    + f'\n[environment]\nkind = "venv"\npython = "{venv}/bin/python"\n')
    out = base / "unseeded-random.studypack"
    result = run_cli("create", study, "-o", out, "-q", "--no-image")
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_a_result_that_differs_is_flagged_with_its_diff(window, random_bundle):
    window.open_bundle(random_bundle)
    view = window.view
    view.mode.setCurrentIndex(view.mode.findData("directory"))
    view.replay_button.click()
    report = view.report
    assert window.replay_result is not None and not window.replay_result.reproduced
    assert "NOT reproduced" in report.headline.text()
    rows = {report.table.item(r, 0).text(): r for r in range(report.table.rowCount())}
    assert report.status_of("results/draw.csv") == "differs"
    assert report.table.item(rows["results/draw.csv"], 1).text() == "\u2716 differs"
    report.table.selectRow(rows["results/draw.csv"])
    diff = report.diff.toPlainText()
    assert "--- original run" in diff and "+++ replay" in diff
    assert any(line.startswith("-1,") for line in diff.splitlines())
    assert any(line.startswith("+1,") for line in diff.splitlines())


def test_images_are_shown_side_by_side(qtbot, tmp_path):
    from PIL import Image
    from studypack_gui.report_view import ImagePair
    expected, actual = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (40, 30), "red").save(expected)
    Image.new("RGB", (40, 30), "blue").save(actual)
    pair = ImagePair()
    qtbot.addWidget(pair)
    pair.show_pair(expected, actual)
    left, right = (label.pixmap() for label in pair.sides)
    assert not left.isNull() and not right.isNull()
    assert left.toImage().pixelColor(5, 5).red() == 255
    assert right.toImage().pixelColor(5, 5).blue() == 255
    pair.show_pair(expected, tmp_path / "missing.png")
    assert pair.sides[1].text() == "(no image)"


@pytest.mark.docker
@pytest.mark.slow
def test_auto_mode_picks_a_container_mode_and_reproduces(window, example_bundle, docker_engine):
    window.open_bundle(example_bundle)
    view = window.view
    assert view.mode.currentData() == "auto"
    view.replay_button.click()
    result = window.replay_result
    assert result is not None and result.reproduced, result.notes
    assert result.mode in ("image", "rebuild", "trace")
    assert f"(mode {result.mode})" in view.report.headline.text()
