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
def window(qtbot, tmp_path, immediate_tasks, gui_settings):
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
    # the container's own output was streamed into the log while it ran (docker logs)
    stdout = result.runs[0].stdout.strip().splitlines()
    assert stdout and stdout[-1] in view.log.toPlainText()
    assert view.replay_panel.output_lines >= len(stdout), "streamed, not pasted at the end"


# ------------------------------------------------------------------ modes, state, files

def _modes(view) -> list[str]:
    return [view.mode.itemData(i) for i in range(view.mode.count())]


def test_only_the_modes_this_bundle_can_use_here_are_offered(window, example_bundle):
    """The example bundle has no saved image: image is not offered, and why is said."""
    window.open_bundle(example_bundle)
    view = window.view
    assert "image" not in _modes(view)
    assert "directory" in _modes(view) and _modes(view)[0] == "auto"
    assert "image: the bundle has no saved image" in view.unavailable.text()
    assert window.state.text() == "Intact"


@pytest.mark.slow
def test_a_replay_shows_its_state_time_and_the_study_output(window, example_bundle):
    window.open_bundle(example_bundle)
    view = window.view
    view.mode.setCurrentIndex(view.mode.findData("directory"))
    states = []
    window.view.replay_panel.started.connect(
        lambda: states.append((window.state.text(), window.statusBar().currentMessage())))
    view.replay_button.click()
    (state, message), = states
    assert state == "Replaying" and "so far (the original run took 0:0" in message
    assert window.state.text() == "Reproduced"
    log = view.log.toPlainText()
    # the study's own output (analysis.py prints its summary) was streamed into the log
    stdout = window.replay_result.runs[0].stdout.strip().splitlines()
    assert stdout and stdout[-1] in log
    assert view.replay_panel.output_lines >= len(stdout), "streamed, not pasted at the end"
    # the replay files: where they are, how many, the rule
    assert str(window.replays_base()) in view.replay_files.text()
    assert "1 replay(s)" in view.replay_files.text() and "The newest 3 are kept" in \
        view.replay_files.text()


@pytest.mark.slow
def test_an_unusable_mode_is_refused_before_unpacking_and_the_last_result_cleared(
        window, example_bundle, immediate_tasks):
    window.open_bundle(example_bundle)
    view = window.view
    view.mode.setCurrentIndex(view.mode.findData("directory"))
    view.replay_button.click()
    assert view.report.table.rowCount() >= 2
    folders_before = sorted(p.name for p in window.replays_base().iterdir())
    # the list was made when the bundle was opened; the machine may have changed since
    view.mode.addItem("image", "image")
    view.mode.setCurrentIndex(view.mode.findData("image"))
    view.replay_button.click()
    title, body, _details = immediate_tasks[-1]
    assert "The image mode cannot run this bundle here: the bundle has no saved image." in body
    assert "Mode list" in body and "--mode" not in body
    assert view.report.table.rowCount() == 0 and view.report.headline.text() == ""
    assert not view.open_outputs.isEnabled() and window.replay_result is None
    assert sorted(p.name for p in window.replays_base().iterdir()) == folders_before


@pytest.mark.slow
def test_closing_mid_replay_asks_first(qtbot, window, example_bundle):
    from studypack_gui import dialogs, tasks
    window.open_bundle(example_bundle)
    view = window.view
    view.mode.setCurrentIndex(view.mode.findData("directory"))
    tasks.set_immediate(False)
    view.replay_button.click()
    assert view.replay_panel.running
    dialogs.answers.append("Keep replaying")
    window.close()
    assert window.isVisible() and view.replay_panel.running
    assert dialogs.questions[-1][0] == "Stop the replay?"
    dialogs.answers.append("Stop and close")
    window.close()
    assert not window.isVisible()
    qtbot.waitUntil(lambda: not view.replay_panel.running, timeout=60000)


@pytest.mark.slow
def test_replay_files_can_be_removed_and_the_folder_chosen(window, example_bundle, tmp_path):
    from studypack_gui import dialogs
    from studypack_gui.replay_window import replays_folder
    chosen = tmp_path / "my-replays"
    window.replays_dir = None
    window.set_replays_dir(chosen)
    assert replays_folder() == chosen, "remembered for the next start"
    window.open_bundle(example_bundle)
    window.view.mode.setCurrentIndex(window.view.mode.findData("directory"))
    window.view.replay_button.click()
    assert len(list(chosen.iterdir())) == 1 and window.output_dir.is_dir()
    dialogs.answers.append("Keep them")
    window.remove_replay_files()
    assert len(list(chosen.iterdir())) == 1
    dialogs.answers.append("Remove")
    window.remove_replay_files()
    assert list(chosen.iterdir()) == []
    assert not window.view.open_outputs.isEnabled()
    assert "0 replay(s)" in window.view.replay_files.text()


def test_opening_a_folder_without_a_file_manager_says_so(window, tmp_path, monkeypatch,
                                                         immediate_tasks):
    from PySide6.QtGui import QGuiApplication
    from studypack_gui.widgets import open_folder
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))   # no xdg-open, no file manager
    assert open_folder(window, tmp_path) is False
    title, text, _ = immediate_tasks[-1]
    assert title == "No file manager" and str(tmp_path) in text
    assert QGuiApplication.clipboard().text() == str(tmp_path)


def test_the_files_tab_shows_sizes_previews_and_extracts(window, example_bundle, tmp_path,
                                                         immediate_tasks):
    from studypack_gui.bundle_view import MEMBER
    window.open_bundle(example_bundle)
    view = window.view
    view.tabs.setCurrentIndex(1)
    items = {}
    for i in range(view.files.topLevelItemCount()):
        top = view.files.topLevelItem(i)
        for j in range(top.childCount()):
            items[top.child(j).text(0)] = top.child(j)
    script = items["analysis.py"]
    assert script.text(1).endswith(" B") or script.text(1).endswith("KB")
    view.files.setCurrentItem(script)
    assert "import" in view.preview_text.toPlainText() and view.preview.currentIndex() == 0
    out = tmp_path / "extracted"
    out.mkdir()
    window.extract_to([script.data(0, MEMBER)], out)
    from tests.support.helpers import EXAMPLE
    original = EXAMPLE / "analysis.py"
    assert (out / "analysis.py").read_bytes() == original.read_bytes()
    window.extract_to([script.data(0, MEMBER)], out)   # never replaces
    assert "already exists" in immediate_tasks[-1][1]


@pytest.mark.slow
def test_the_report_saves_as_html(window, example_bundle, tmp_path):
    window.open_bundle(example_bundle)
    window.view.mode.setCurrentIndex(window.view.mode.findData("directory"))
    window.view.replay_button.click()
    assert window.save_report_action.isEnabled()
    page = tmp_path / "report.html"
    window.save_report_to(page)
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "Replay of" in text and "reproduced" in text


def test_recent_bundles_help_and_about(window, example_bundle):
    from studypack_gui import help as app_help
    from studypack_gui.replay_window import recent_bundles
    window.open_bundle(example_bundle)
    assert recent_bundles()[0] == str(example_bundle)
    window._fill_recent()
    assert [a.text() for a in window.recent_menu.actions()] == [example_bundle.name]
    app_help.shown = []
    try:
        app_help.show_guide(window)
        app_help.show_about(window)
    finally:
        shown, app_help.shown = app_help.shown, None
    (_, guide), (_, about) = shown
    assert "Replay files" in guide and "Make a bundle" in guide
    assert "PySide6" in about and "studypack" in about


def test_a_bad_file_opened_twice_leaves_one_window(qtbot, qapp, tmp_path, immediate_tasks,
                                                   gui_settings):
    from studypack_gui.replay_window import ReplayWindow
    bogus = tmp_path / "broken.studypack"
    bogus.write_bytes(b"not a bundle at all")
    before = [w for w in qapp.windows if isinstance(w, ReplayWindow)]
    first = qapp.open_bundle(bogus)
    qtbot.addWidget(first)
    second = qapp.open_bundle(bogus)
    assert second is first
    after = [w for w in qapp.windows if isinstance(w, ReplayWindow)]
    assert len(after) - len(before) <= 1
    assert len(immediate_tasks) == 2 and all("broken.studypack" in d[1] for d in immediate_tasks)
    assert first.state.text() == "No bundle open"


def test_the_window_fits_1024_by_600(qtbot, window, example_bundle):
    window.open_bundle(example_bundle)
    window.resize(1024, 560)   # 600 minus a title bar
    qtbot.wait(50)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 560, hint
    tabs = window.view.tabs
    for button, tab in ((window.view.replay_button, 2), (window.view.save_report, 2),
                        (window.view.extract_button, 1)):
        tabs.setCurrentIndex(tab)
        qtbot.wait(50)
        assert button.isVisible()
        corner = button.mapTo(window, button.rect().bottomRight())
        assert window.rect().contains(corner), button.text()


@pytest.fixture(scope="session")
def hostile_bundle(tmp_path_factory, study_python) -> Path:
    """A real bundle whose title, keyword, author and a data file name carry terminal
    escape sequences and control characters (what a hostile sender could write)."""
    from tests.support.helpers import copy_example, run_cli
    base = tmp_path_factory.mktemp("hostile-bundle")
    study = copy_example(base, study_python)
    spec = study / "studypack.toml"
    spec.write_text(spec.read_text()
                    .replace('title = "Heat diffusion on a rod"',
                             'title = "Heat \\u001b[2J\\u001b]0;pwned\\u0007rod"')
                    .replace('"example"]', '"ex\\u001b[31mample"]')
                    .replace('given = "Ada"', 'given = "A\\u0008da"'))
    (study / "data" / "odd\x1b[7mname\x07.txt").write_text("1\n")
    out = base / "hostile.studypack"
    result = run_cli("create", study, "-o", out, "--no-image", "-q")
    assert result.returncode == 0, result.stderr
    return out


def _no_control(text: str) -> bool:
    return not any(ord(c) < 0x20 and c not in "\n\t" or ord(c) == 0x7f for c in text)


@pytest.mark.slow
def test_a_bundles_names_are_shown_with_control_characters_spelled_out(window,
                                                                         hostile_bundle):
    window.open_bundle(hostile_bundle)
    view = window.view
    assert view.title.text() == "Heat \\x1b[2J\\x1b]0;pwned\\x07rod"
    assert "ex\\x1b[31mample" in view.fields["keywords"].text()
    assert "\\x08" in view.authors.text()
    names = []
    for i in range(view.files.topLevelItemCount()):
        top = view.files.topLevelItem(i)
        names += [top.child(j).text(0) for j in range(top.childCount())]
    assert "data/odd\\x1b[7mname\\x07.txt" in names
    shown = [view.title.text(), view.authors.text(), view.fields["keywords"].text(),
             view.fields["description"].text(), view.fields["command"].text(), *names]
    assert all(_no_control(t) for t in shown), shown
    # the replay's report names the same file the same way, and its details too
    view.mode.setCurrentIndex(view.mode.findData("directory"))
    view.replay_button.click()
    table = view.report.table
    paths = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert all(_no_control(p) for p in paths) and _no_control(view.log.toPlainText())
    assert window.replay_result is not None


def test_the_mode_list_names_each_mode_with_its_runners_summary(window, example_bundle):
    """The labels come from the replay registry (one place says what a mode does)."""
    from studypack.replay.registry import runner_class
    window.open_bundle(example_bundle)
    view = window.view
    directory = view.mode.itemText(view.mode.findData("directory"))
    assert directory == f"directory \u2014 {runner_class('directory').summary}"
    assert view.mode.itemText(0).startswith("auto \u2014 the best mode this computer can run")
