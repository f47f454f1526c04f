"""Replay work folders the app keeps (to open the outputs afterwards): listed, named,
and cleaned by one stated rule. Replays unpack read-only files (the traced system), so
removal makes them writable first."""

from __future__ import annotations

import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..bundle.format import EXTENSION

# The stated rule (shown in the window): replay folders older than this many days are
# removed when a new replay starts, and beyond the newest KEEP_REPLAYS the oldest go too.
KEEP_REPLAYS = 3
KEEP_DAYS = 14


@dataclass
class ReplayFolder:
    path: Path
    size: int
    mtime: float


def _tree_size(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def list_replays(base: Path) -> list[ReplayFolder]:
    """Replay folders under ``base``, newest first."""
    base = Path(base)
    if not base.is_dir():
        return []
    found = [ReplayFolder(p, _tree_size(p), p.stat().st_mtime)
             for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(found, key=lambda r: r.mtime, reverse=True)


def remove_tree(path: Path) -> None:
    """Replays unpack read-only files (the traced system): make them writable to go."""
    def on_error(func, name, _exc):
        try:
            os.chmod(os.path.dirname(name), stat.S_IRWXU)
            os.chmod(name, stat.S_IRWXU)
            func(name)
        except OSError:
            pass
    shutil.rmtree(path, onerror=on_error)


def remove_replays(base: Path, keep: int = 0, older_than_days: Optional[float] = None,
                   spare: Optional[Path] = None) -> tuple[int, int]:
    """Remove replay folders: all but the newest ``keep``, and (when given) those older
    than ``older_than_days``; never ``spare``. (folders removed, bytes freed)."""
    now = time.time()
    removed = freed = 0
    for index, folder in enumerate(list_replays(base)):
        if spare is not None and folder.path == Path(spare):
            continue
        old = older_than_days is not None and now - folder.mtime > older_than_days * 86400
        if index >= keep or old:
            remove_tree(folder.path)
            if not folder.path.exists():
                removed += 1
                freed += folder.size
    return removed, freed


def new_replay_folder(base: Path, bundle: Path) -> Path:
    """A fresh folder name for one replay (never an earlier replay's folder)."""
    stem = f"{Path(bundle).name.removesuffix(EXTENSION)}-{time.strftime('%Y%m%d-%H%M%S')}"
    keep, n = Path(base) / stem, 1
    while keep.exists():
        n += 1
        keep = Path(base) / f"{stem}-{n}"
    return keep
