"""A small local record of deposits in progress, so an interrupted one resumes.

Kept in ``$XDG_STATE_HOME/studypack/deposits.json`` (default
``~/.local/state/studypack/deposits.json``), mode 0600. Entries are keyed by the
Zenodo site, the study's name and its version, so one version of a study never gets two
drafts on one site: a bundle made again after a metadata fix goes into the same draft.
Each entry keeps the deposition id and, per file sent, its md5 and sha256. No token is
ever stored here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..fsutil import atomic_write_text

VERSION = 1


def default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"),
                                                            ".local", "state")
    return Path(base) / "studypack" / "deposits.json"


def key_for(base_url: str, study: str, version: str) -> str:
    return f"{base_url.rstrip('/')}#study={study}#version={version}"


class DepositState:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else default_path()

    def _load(self) -> dict:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}   # unreadable state only costs a fresh draft; never fail on it
        deposits = doc.get("deposits") if isinstance(doc, dict) else None
        return deposits if isinstance(deposits, dict) else {}

    def get(self, key: str) -> dict | None:
        entry = self._load().get(key)
        return dict(entry) if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict) -> None:
        deposits = self._load()
        deposits[key] = entry
        self._save(deposits)

    def update(self, key: str, **changes) -> dict:
        entry = self.get(key) or {}
        entry.update(changes)
        self.put(key, entry)
        return entry

    def deposition_ids(self, base_url: str) -> set[int]:
        """Every draft studypack made on ``base_url`` (so never someone else's)."""
        prefix = base_url.rstrip("/") + "#"
        return {int(e["deposition_id"]) for k, e in self._load().items()
                if k.startswith(prefix) and isinstance(e, dict)
                and str(e.get("deposition_id", "")).isdigit()}

    def remove(self, key: str) -> None:
        deposits = self._load()
        if deposits.pop(key, None) is not None:
            self._save(deposits)

    def _save(self, deposits: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"version": VERSION, "deposits": deposits},
                                                indent=2, sort_keys=True) + "\n")
        os.chmod(self.path, 0o600)
