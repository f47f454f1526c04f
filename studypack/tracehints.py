"""What a trace says about a run's sources of difference a replay cannot control (the
operating system's randomness, the network): shown by ``create`` and by a replay.

Kept apart from :mod:`studypack.replay` so that ``create`` reads it without loading
the replay modes.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


def opened_names(trace_db: Path) -> list[str]:
    """Every file the traced run opened (names as the trace gives them)."""
    if not trace_db.is_file():
        return []
    try:
        with closing(sqlite3.connect(f"file:{trace_db}?mode=ro", uri=True)) as db:
            return [row[0] for row in db.execute("SELECT DISTINCT name FROM opened_files")]
    except sqlite3.Error:
        return []


def trace_hints(trace_db: Path) -> list[str]:
    """What the trace says about sources of difference a replay cannot control."""
    names = set(opened_names(trace_db))
    hints = []
    if names & {"/dev/urandom", "/dev/random"}:
        hints.append("the original run read /dev/urandom: it drew random numbers from the "
                     "operating system, which differ on every run unless the study seeds them")
    lookups = sorted(names & {"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf",
                              "/etc/gai.conf"})
    if lookups:
        hints.append("the original run looked up network names (it read "
                     + ", ".join(lookups) + "): it probably opened network connections, "
                     "which a replay has only with --network")
    return hints


def network_hint(trace_db: Path) -> list[str]:
    """The warning ``create`` shows when the traced run seems to have used the network."""
    return [h.replace("the original run", "the run", 1) for h in trace_hints(trace_db)
            if "network" in h]
