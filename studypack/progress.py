"""Progress reports and cancellation shared by every long operation.

A long operation is a plain function ``op(..., report=None, cancel=None) -> Result``.
``report`` is any callable taking a :class:`Progress`; ``cancel`` is a
:class:`CancelToken`. The CLI renders reports as a progress bar, the GUI as signals
emitted from a worker thread. Neither is required: ``None`` means "nobody listens".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

from .errors import Cancelled


@dataclass(frozen=True)
class Progress:
    phase: str                 # short name of the step: "trace", "pack", "verify", ...
    done: int = 0              # units done (bytes unless ``unit`` says otherwise)
    total: Optional[int] = None  # None: unknown (indeterminate)
    message: str = ""          # a line for the log / status bar
    unit: str = "B"
    headline: bool = False     # a line a log keeps even within one phase (run 2/3: …)


Reporter = Callable[[Progress], None]


def _ignore(_: Progress) -> None:
    pass


def reporter(report: Optional[Reporter]) -> Reporter:
    return report if report is not None else _ignore


class CancelToken:
    """Set from any thread; checked by the worker between small steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


NEVER = CancelToken()  # a token nobody cancels, for callers that pass None


def token(cancel: Optional[CancelToken]) -> CancelToken:
    return cancel if cancel is not None else NEVER
