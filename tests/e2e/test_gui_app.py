"""The application shell: work runs off the GUI thread and comes back to it, Cancel
stops it, errors reach the user as one sentence (with details to copy), and a bundle
handed over by the desktop (argv or macOS FileOpen) opens."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
import time

import pytest
from PySide6.QtCore import QThread
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication

from studypack.errors import BundleError, Cancelled
from studypack.progress import Progress

pytestmark = pytest.mark.gui


@pytest.fixture
def recorded_dialogs():
    from studypack_gui import dialogs
    dialogs.recorder = []
    yield dialogs.recorder
    dialogs.recorder = None


def test_work_runs_on_a_worker_and_results_come_back_on_the_gui_thread(qtbot, qapp):
    from studypack_gui.tasks import run_task
    gui_thread = QThread.currentThread()
    seen = {}

    def work(report, cancel):
        seen["worker"] = threading.current_thread() is not threading.main_thread()
        for i in range(5):
            report(Progress("count", i + 1, 5, f"step {i + 1}"))
        return 42

    progress_threads, messages = [], []

    def on_progress(p):
        progress_threads.append(QThread.currentThread() is gui_thread)
        messages.append(p.message)

    done = []
    with qtbot.waitCallback(timeout=10000) as callback:
        handle = run_task(work, lambda r: (done.append((r, QThread.currentThread() is gui_thread)),
                                           callback()),
                          on_progress=on_progress)
    assert seen["worker"] is True
    assert done == [(42, True)]
    assert progress_threads and all(progress_threads)
    assert messages == [f"step {i}" for i in range(1, 6)]
    assert not handle.running


def test_cancel_stops_a_running_task_and_says_cancelled(qtbot, qapp):
    from studypack_gui.tasks import run_task
    started = threading.Event()

    def endless(report, cancel):
        started.set()
        while True:
            cancel.check()
            time.sleep(0.01)

    errors = []
    with qtbot.waitCallback(timeout=10000) as callback:
        handle = run_task(endless, on_error=lambda exc, details: (errors.append(exc), callback()))
        assert started.wait(5)
        handle.cancel()
    assert len(errors) == 1 and isinstance(errors[0], Cancelled)


def test_a_studypack_error_is_one_sentence_with_its_hint_and_no_traceback():
    from studypack_gui.dialogs import error_texts
    exc = BundleError("The bundle x.studypack is truncated.", "Download it again.")
    title, body, details = error_texts(exc, "Traceback (most recent call last): ...")
    assert body == "The bundle x.studypack is truncated.\n\nDownload it again."
    # a mistake the user can fix is not a bug: no traceback, not even in the details
    assert "Traceback" not in body and "Traceback" not in details
    assert "BundleError" in details and "truncated" in details


def test_an_unexpected_error_gets_the_crash_dialog_with_copyable_details(qtbot, qapp,
                                                                         recorded_dialogs):
    from studypack_gui.tasks import run_task

    def buggy(report, cancel):
        return {}["missing"]

    with qtbot.waitCallback(timeout=10000) as callback:
        run_task(buggy, on_end=callback)
    (title, body, details), = recorded_dialogs
    assert "unexpected" in title and "bug" in body
    assert "KeyError" in details and "studypack" in details and "Python" in details


def test_the_error_dialog_has_a_details_pane_and_a_copy_button(qtbot, qapp):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox
    from studypack_gui.dialogs import show_error
    shown = {}

    def inspect_and_close():
        box = next(w for w in QApplication.topLevelWidgets()
                   if isinstance(w, QMessageBox) and w.isVisible())
        shown["text"] = box.text()
        shown["details"] = box.detailedText()
        shown["buttons"] = [b.text() for b in box.buttons()]
        copy = next(b for b in box.buttons() if b.text() == "Copy details")
        copy.click()
        shown["clipboard"] = QApplication.clipboard().text()
        box.accept()

    QTimer.singleShot(100, inspect_and_close)
    show_error(None, BundleError("The bundle is damaged.", "Get a fresh copy."), "trace")
    assert shown["text"].startswith("The bundle is damaged.")
    assert "BundleError" in shown["details"]
    assert "Copy details" in shown["buttons"]
    assert "Get a fresh copy." in shown["clipboard"]


def test_a_bundle_sent_by_the_desktop_opens_in_the_start_window(qtbot, qapp, example_bundle,
                                                                recorded_dialogs):
    """macOS delivers a double-clicked file as QEvent.FileOpen, not in argv."""
    from studypack_gui import tasks
    from studypack_gui.app import StudypackApplication
    assert isinstance(qapp, StudypackApplication)
    start = qapp.new_replay_window()
    qtbot.addWidget(start)
    tasks.set_immediate(True)
    try:
        assert qapp.event(QFileOpenEvent(str(example_bundle)))
    finally:
        tasks.set_immediate(False)
    assert start.bundle_path == example_bundle
    assert start.view.title.text() == "Heat diffusion on a rod"
    assert recorded_dialogs == []


def test_a_second_launch_hands_its_bundle_to_the_running_app(qtbot, qapp, tmp_path,
                                                            recorded_dialogs):
    """Double-clicking twice starts the app twice: the second hands over and quits, so a
    bad file opened twice leaves one window, not one per click."""
    import uuid

    from studypack_gui import tasks
    from studypack_gui.app import forward_to_running
    from studypack_gui.replay_window import ReplayWindow
    name = f"studypack-test-{uuid.uuid4().hex[:8]}"
    assert not forward_to_running([str(tmp_path / "x.studypack")], name), "nobody listens yet"
    assert qapp.listen(name)
    bogus = tmp_path / "broken.studypack"
    bogus.write_bytes(b"not a bundle")
    before = len([w for w in qapp.windows if isinstance(w, ReplayWindow)])
    tasks.set_immediate(True)
    try:
        for _ in range(2):
            assert forward_to_running([str(bogus)], name)
            qtbot.waitUntil(lambda: len(recorded_dialogs) >= 1, timeout=5000)
            qtbot.wait(100)
        qtbot.waitUntil(lambda: len(recorded_dialogs) == 2, timeout=5000)
    finally:
        tasks.set_immediate(False)
        qapp.server.close()
    windows = [w for w in qapp.windows if isinstance(w, ReplayWindow)]
    for w in windows:
        qtbot.addWidget(w)
    assert len(windows) - before <= 1
    assert all("broken.studypack" in body for _title, body, _details in recorded_dialogs)
