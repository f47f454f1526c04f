"""The fields of studypack.json that info, the GUI and replay index into, checked for
the types the writer gives them: a stranger's bundle may hold anything."""

from __future__ import annotations

from pathlib import Path

from ..errors import BundleError
from . import format as fmt


def malformed(path: Path, what: str) -> BundleError:
    return BundleError(f"{path.name}'s {fmt.METADATA} is malformed: {what}.",
                       "The bundle was not written by studypack, or it was altered.")


_NUMBER = (int, float)
# The fields of studypack.json that info, the GUI and replay index into, with the
# types the writer gives them; a stranger's bundle may hold anything.
_RUN_FIELDS = {"index": int, "command": list, "exit_code": (int, type(None)),
               "duration_s": _NUMBER, "started_at": str, "host": dict,
               "git": (dict, type(None))}
_TOP_FIELDS = {"runs": list, "counts": dict, "environment": (dict, type(None)),
               "inputs": list, "outputs": list, "secrets_dropped": list, "warnings": list}


def check_metadata(metadata: dict, path: Path) -> None:
    study = metadata.get("study")
    if not isinstance(study, dict):
        raise malformed(path, "it has no study section")
    for key in ("name", "title"):
        if not isinstance(study.get(key), str):
            raise malformed(path, f"study.{key} is missing or not text")
    authors = study.get("authors", [])
    if not isinstance(authors, list) or not all(
            isinstance(a, dict) and isinstance(a.get("name"), str) for a in authors):
        raise malformed(path, "study.authors is not a list of people")
    for key, kinds in _TOP_FIELDS.items():
        if key in metadata and not isinstance(metadata[key], kinds):
            raise malformed(path, f"{key} has the wrong type")
    for i, run in enumerate(metadata.get("runs", [])):
        if not isinstance(run, dict):
            raise malformed(path, f"run {i + 1} is not a record")
        for key, kinds in _RUN_FIELDS.items():
            if not isinstance(run.get(key), kinds) or isinstance(run.get(key), bool):
                raise malformed(path, f"run {i + 1}'s {key} is missing or has the wrong type")
        if not all(isinstance(a, str) for a in run.get("command", [])):
            raise malformed(path, f"run {i + 1}'s command is not a list of words")
    for role, count in metadata.get("counts", {}).items():
        if not isinstance(count, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in count.values()):
            raise malformed(path, f"counts.{role} is not a pair of numbers")
    for key in ("inputs", "outputs", "secrets_dropped", "warnings"):
        if not all(isinstance(v, str) for v in metadata.get(key, [])):
            raise malformed(path, f"{key} is not a list of names")
