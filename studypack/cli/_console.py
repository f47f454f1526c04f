"""Terminal rendering of progress reports (rich), shared by every command."""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, DownloadColumn, Progress as RichProgress,
                           TextColumn, TimeRemainingColumn, TransferSpeedColumn)

from ..progress import CancelToken, Progress
from ..safetext import printable

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def shown(text, *, lines: bool = False) -> str:
    """Text from a bundle, ready for a rich console: control characters spelled out
    (:func:`studypack.safetext.printable`) and rich markup escaped, so a title cannot
    clear the screen or print a fake green "intact"."""
    return escape(printable(text, keep_newlines=lines))


@contextlib.contextmanager
def progress_bar(quiet: bool = False) -> Iterator[tuple[callable, CancelToken]]:
    """Yield ``(report, cancel)``: report draws a bar per phase on stderr; Ctrl-C
    sets the cancel token so the operation stops cleanly between two steps."""
    cancel = CancelToken()
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(_sig, _frame):
        if cancel.cancelled:  # second Ctrl-C: leave now
            raise KeyboardInterrupt
        cancel.cancel()

    signal.signal(signal.SIGINT, on_sigint)
    if quiet or not sys.stderr.isatty():
        last = [None, None]

        def report_plain(p: Progress) -> None:
            # One line per phase, and each headline within one (each run of a
            # pipeline), so a log shows them all.
            if quiet or not p.message or p.phase == "output":   # the study's own lines
                return
            if p.phase != last[0] or (p.headline and p.message != last[1]):
                err_console.print(f"[{p.phase}] {p.message}", markup=False)
                last[0], last[1] = p.phase, p.message

        try:
            yield report_plain, cancel
        finally:
            signal.signal(signal.SIGINT, previous)
        return

    bars = RichProgress(
        TextColumn("[bold]{task.description:<10}"), BarColumn(),
        DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[message]}"), console=err_console, transient=False)
    tasks: dict[str, int] = {}

    def report(p: Progress) -> None:
        if p.phase == "output":   # the study's own output lines: the GUI's log shows them
            return
        if p.phase not in tasks:
            tasks[p.phase] = bars.add_task(p.phase, total=p.total, message=p.message[:60])
        bars.update(tasks[p.phase], completed=p.done, total=p.total, message=p.message[:60])

    try:
        with bars:
            yield report, cancel
    finally:
        signal.signal(signal.SIGINT, previous)
