"""Run core operations off the GUI thread (the Picard ``run_task`` habit).

A core operation is a plain function ``op(..., report, cancel) -> Result``. The GUI
calls ``run_task(func, on_done, on_progress=..., on_error=...)``: ``func(report, cancel)``
runs on a ``QThreadPool`` worker; its progress reports, its result and its exception
come back to the GUI thread as queued signals, so no widget is ever touched from a worker.

Tests call ``set_immediate(True)``: tasks then run at once in the calling thread, which
makes asynchronous pages deterministic without mocking the work itself.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from .backend import CancelToken, Progress

# Progress reports without a new message are coalesced to at most one per interval,
# so a byte counter updated per 64 KiB chunk does not flood the event loop.
_PROGRESS_INTERVAL_S = 0.05

_immediate = False
_running: set["TaskHandle"] = set()


def set_immediate(value: bool) -> None:
    """Run tasks synchronously (for tests)."""
    global _immediate
    _immediate = value


class TaskSignals(QObject):
    """Lives in the GUI thread; the worker emits, the GUI thread receives."""

    progressed = Signal(object)   # backend.Progress
    finished = Signal(object)     # the function's result
    failed = Signal(object, str)  # the exception, its formatted traceback


class TaskWorker(QRunnable):
    def __init__(self, func: Callable[..., Any], signals: TaskSignals, cancel: CancelToken):
        super().__init__()
        self.func = func
        self.signals = signals
        self.cancel = cancel
        self._last_emit = 0.0
        self._last_key: tuple = ()
        self.setAutoDelete(True)

    def report(self, progress: Progress) -> None:
        now = time.monotonic()
        key = (progress.phase, progress.message)
        complete = progress.total is not None and progress.done >= progress.total
        if key != self._last_key or complete or now - self._last_emit >= _PROGRESS_INTERVAL_S:
            self._last_key = key
            self._last_emit = now
            self.signals.progressed.emit(progress)

    def run(self) -> None:
        try:
            result = self.func(self.report, self.cancel)
        except BaseException as exc:  # every failure must reach the GUI thread
            self.signals.failed.emit(exc, traceback.format_exc())
        else:
            self.signals.finished.emit(result)


class TaskHandle(QObject):
    """What the caller keeps: cancel it, ask whether it runs. Its slots run in the
    GUI thread because the handle lives there."""

    def __init__(self, on_done, on_progress, on_error, on_end):
        super().__init__()
        self.cancel_token = CancelToken()
        self.signals = TaskSignals()
        self.running = True
        self._on_done, self._on_progress = on_done, on_progress
        self._on_error, self._on_end = on_error, on_end
        self.signals.progressed.connect(self._progressed)
        self.signals.finished.connect(self._finished)
        self.signals.failed.connect(self._failed)

    def cancel(self) -> None:
        self.cancel_token.cancel()

    @Slot(object)
    def _progressed(self, progress: Progress) -> None:
        if self.running and self._on_progress:
            self._on_progress(progress)

    @Slot(object)
    def _finished(self, result: Any) -> None:
        self._end()
        if self._on_done:
            self._on_done(result)

    @Slot(object, str)
    def _failed(self, exc: BaseException, details: str) -> None:
        self._end()
        if self._on_error:
            self._on_error(exc, details)
        else:
            from .dialogs import show_error
            show_error(None, exc, details)

    def _end(self) -> None:
        self.running = False
        _running.discard(self)
        if self._on_end:
            self._on_end()


def run_task(func: Callable[[Callable[[Progress], None], CancelToken], Any],
             on_done: Optional[Callable[[Any], None]] = None, *,
             on_progress: Optional[Callable[[Progress], None]] = None,
             on_error: Optional[Callable[[BaseException, str], None]] = None,
             on_end: Optional[Callable[[], None]] = None) -> TaskHandle:
    """Run ``func(report, cancel)`` off the GUI thread; callbacks run on the GUI thread.

    ``on_error(exc, details)`` receives StudypackError (show its message + hint),
    Cancelled, or an unexpected exception with its traceback as ``details``.
    ``on_end`` runs after either outcome (re-enable buttons there)."""
    handle = TaskHandle(on_done, on_progress, on_error, on_end)
    _running.add(handle)
    worker = TaskWorker(func, handle.signals, handle.cancel_token)
    if _immediate:
        worker.run()
    else:
        QThreadPool.globalInstance().start(worker)
    return handle


def cancel_all() -> None:
    """Ask every running task to stop (when the application quits)."""
    for handle in list(_running):
        handle.cancel()


def wait_all(timeout_ms: int = 10000) -> bool:
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
