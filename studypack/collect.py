"""Which files of the study folder go into the bundle, in which role — and which do not.

A bundle is an archive: what it leaves out is lost for good, so nothing is left out in
silence. Symlinks (to a file or a folder, inside or outside the study) are packed by
their content under the link's own path, and the link is recorded; a dangling link is
refused. Every file left out (excluded, ignored by git, being written) is listed in a
:class:`LeftOut` with its reason, for the review and the output of ``create``.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import UsageError
from .spec import DEFAULT_EXCLUDES, StudySpec

GLOB_CHARS = "*?["


@dataclass(frozen=True)
class StudyFile:
    relpath: str        # POSIX path relative to the study root
    path: Path          # on disk (through the link, when it is one)
    size: int
    role: str           # "code" | "data" | "output"
    # the walk's stat of it (through a link), so that the layout need not stat it again
    stat: os.stat_result | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class LeftOut:
    path: str           # relative to the study root; a folder ends with "/"
    reason: str


@dataclass(frozen=True)
class StudyLink:
    path: str           # the link, relative to the study root
    target: str         # what it points to, as the link says
    kind: str           # "file" | "folder"

    def to_json(self) -> dict:
        return {"path": self.path, "target": self.target, "kind": self.kind}


@dataclass
class StudyReview:
    inputs: list[StudyFile] = field(default_factory=list)
    outputs: list[StudyFile] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    links: list[StudyLink] = field(default_factory=list)


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in GLOB_CHARS)


def is_excluded(relpath: Path | str, patterns: list[str]) -> bool:
    return excluded_by(relpath, patterns) is not None


@functools.lru_cache(maxsize=64)
def _any_of(patterns: tuple[str, ...]):
    """One compiled regex matching what any of the patterns matches (fnmatch rules)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p.rstrip('/'))})" for p in patterns)
                      or "(?!)")


def excluded_by(relpath: Path | str, patterns: list[str]) -> str | None:
    """The first pattern that excludes ``relpath`` (matched whole or on one part)."""
    rel = PurePosixPath(relpath)
    text = rel.as_posix()
    anyone = _any_of(tuple(patterns)).match     # most files match none: one regex each
    if not anyone(text) and not any(anyone(part) for part in rel.parts):
        return None
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatchcase(text, pattern) or any(
                fnmatch.fnmatchcase(part, pattern) for part in rel.parts):
            return pattern
    return None


def matches(rel: str, paths: list[str]) -> bool:
    """Whether ``rel`` is one of ``paths``, below one of them, or matches a glob of them
    (``results/*.dat``; a glob that names a folder takes what is below it)."""
    for entry in paths:
        p = entry.rstrip("/")
        if p in ("", "."):
            return True
        if is_glob(p):
            parts = PurePosixPath(rel).parts
            if any(fnmatch.fnmatchcase("/".join(parts[:i]), p)
                   for i in range(1, len(parts) + 1)):
                return True
        elif rel == p or rel.startswith(p + "/"):
            return True
    return False


def git_ignored(root: Path) -> list[str]:
    """Paths below ``root`` that git ignores (folders end with "/"), or [] outside git."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
             "--directory", "--", "."], cwd=root, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [p for p in out.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def open_for_writing(root: Path) -> dict[str, str]:
    """Files below ``root`` that a running process (this one included: ``create >
    study/log.txt``) has open for writing: real path -> which process."""
    found: dict[str, str] = {}
    root_text = str(root.resolve()) + os.sep
    me = os.getuid()
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != me:
                continue
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
                if not target.startswith(root_text):
                    continue
                flags = int(next(line.split()[1] for line in
                                 (entry / "fdinfo" / fd.name).read_text().splitlines()
                                 if line.startswith("flags:")), 8)
            except (OSError, StopIteration, ValueError):
                continue
            if flags & (os.O_WRONLY | os.O_RDWR):
                pid = int(entry.name)
                if pid == os.getpid():
                    found[target] = "studypack itself"
                else:   # a parent holding the same file (shell redirect) must not win by /proc order
                    found.setdefault(target, f"process {pid} ({_command_name(entry)})")
    return found


def _command_name(entry: Path) -> str:
    try:
        return (entry / "comm").read_text().strip()
    except OSError:
        return "?"


def review_study(spec: StudySpec, *, outputs_expected: bool = True) -> StudyReview:
    """Walk the study: code, data, outputs, and what is left out with its reason.

    ``outputs_expected=False`` (before the run, or a run that failed): an output path
    that does not exist yet is not an error.
    """
    root = spec.root
    for p in spec.data_paths + (spec.output_paths if outputs_expected else []):
        if is_glob(p):
            continue
        if not os.path.lexists(root / p):
            kind = "data" if p in spec.data_paths else "outputs"
            raise UsageError(f"[{kind}] paths names {p!r}, which does not exist in {root}.")
    review = StudyReview()
    referenced = {r.path for r in spec.data_references}
    ignored = git_ignored(root)
    writing = open_for_writing(root)
    user_excludes = list(spec.exclude)
    listed: set[str] = set()
    for rel, path, link, st in _walk(root, spec, review):
        if rel in referenced:
            continue  # kept outside the bundle by reference (fetch.txt)
        named = matches(rel, spec.data_paths) or matches(rel, spec.output_paths)
        rule = excluded_by(rel, user_excludes)
        if rule is not None:
            review.left_out.append(LeftOut(rel, f"excluded by [exclude] paths {rule!r}"))
            continue
        entry = None if named else _ignored_by_git(rel, ignored)
        if entry is not None:
            if entry not in listed:   # an ignored folder is listed once
                listed.add(entry)
                review.left_out.append(LeftOut(entry, "ignored by git (.gitignore); name "
                                                      "it under [data] paths to pack it"))
            continue
        writer = writing.get(os.path.realpath(path)) if writing else None
        if writer:
            review.left_out.append(LeftOut(rel, f"still being written by {writer}"))
            continue
        if link is not None:
            review.links.append(link)
        if matches(rel, spec.output_paths):
            review.outputs.append(StudyFile(rel, path, st.st_size, "output", st))
        else:
            role = "data" if matches(rel, spec.data_paths) else "code"
            review.inputs.append(StudyFile(rel, path, st.st_size, role, st))
    for p in spec.data_paths:
        if is_glob(p) and not any(matches(f.relpath, [p]) for f in review.inputs):
            raise UsageError(f"[data] paths pattern {p!r} matches no file in {root}.")
    return review


def _ignored_by_git(rel: str, ignored: list[str]) -> str | None:
    """The entry of ``git ls-files --ignored`` (a file, or a folder ending in /) that
    covers ``rel``."""
    return next((p for p in ignored if rel == p or (p.endswith("/") and rel.startswith(p))),
                None)


def _walk(root: Path, spec: StudySpec, review: StudyReview):
    """Yield (relpath, path, link, stat) of the files below root, sorted, following
    symlinks (a link's content is packed under the link's path). Default excludes are
    left out and listed once per excluded folder or file. One stat per file (the folder's
    listing tells the kind of most entries without one)."""
    visited: set[str] = set()

    def visit(folder: Path, rel_base: PurePosixPath, link: StudyLink | None):
        real = os.path.realpath(folder)
        if real in visited:   # a link back to a folder already walked: a loop
            review.left_out.append(LeftOut(f"{rel_base.as_posix()}/",
                                           "a symlink loop (the folder is packed once)"))
            return
        visited.add(real)
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            raise UsageError(f"Cannot read the folder {rel_base.as_posix() or '.'} of the "
                             f"study: {exc.strerror}.") from None
        for entry in entries:
            name = entry.name
            path = folder / name
            rel = rel_base / name
            text = rel.as_posix()
            rule = excluded_by(rel, DEFAULT_EXCLUDES)
            if rule is not None:
                if _worth_listing(rule):
                    review.left_out.append(LeftOut(text + ("/" if path.is_dir() else ""),
                                                   f"excluded by default: {rule}"))
                continue
            this_link = link
            is_link = entry.is_symlink()
            if is_link:
                target = os.readlink(path)
                if not path.exists():
                    raise UsageError(
                        f"The study's {text} is a symlink to {target}, which does not exist.",
                        "Restore what it points to, or remove the link (or exclude it under "
                        "[exclude] paths).")
                this_link = StudyLink(text, target, "folder" if path.is_dir() else "file")
                if this_link.kind == "folder":
                    review.links.append(this_link)
            try:
                st = entry.stat()    # through a link
            except OSError:
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode):
                yield from visit(path, rel, this_link)
            elif st is not None and stat.S_ISREG(st.st_mode):
                yield text, path, (this_link if is_link else None), st
            else:
                review.left_out.append(LeftOut(text, "not a regular file (a socket, fifo "
                                                     "or device)"))

    yield from visit(root, PurePosixPath(), None)


# Caches that every tool writes and nobody wants listed one by one.
_QUIET_RULES = {"__pycache__", "*.pyc", ".DS_Store", ".ipynb_checkpoints", ".mypy_cache",
                ".pytest_cache", ".studypack-trace"}


def _worth_listing(rule: str) -> bool:
    return rule not in _QUIET_RULES and not rule.startswith("*.studypack")


def collect_study(spec: StudySpec, *, missing_outputs_ok: bool = False
                  ) -> tuple[list[StudyFile], list[StudyFile]]:
    """(inputs, outputs): code and data files needed to run; the run's outputs."""
    review = review_study(spec, outputs_expected=not missing_outputs_ok)
    return review.inputs, review.outputs


LINKED_DIR = ".studypack-links"   # where a replay keeps what the study's links point to


def restore_links(study_dir: Path, links: list) -> int:
    """Make the recorded links links again in a replayed study folder: the packed
    content moves to ``.studypack-links/`` and the link's path points to it, so the run
    sees a link where the original run saw one (``rglob`` does not follow it, a
    ``readlink`` finds one). Links below another link stay as packed. Returns how many
    were restored."""
    paths = sorted({item.get("path") for item in links if isinstance(item, dict)
                    and isinstance(item.get("path"), str)})
    restored = 0
    for text in paths:
        rel = PurePosixPath(text)
        if rel.is_absolute() or not rel.parts or ".." in rel.parts or rel.parts[0] == LINKED_DIR:
            continue      # never anything outside the study folder
        if any(str(parent) in paths for parent in rel.parents if str(parent) != "."):
            continue
        here = study_dir / rel
        if here.is_symlink() or not here.exists() or any(
                (study_dir / parent).is_symlink() for parent in rel.parents):
            continue
        store = study_dir / LINKED_DIR / rel
        store.parent.mkdir(parents=True, exist_ok=True)
        os.replace(here, store)
        os.symlink(os.path.relpath(store, here.parent), here)
        restored += 1
    return restored


__all__ = ["StudyFile", "LeftOut", "StudyLink", "StudyReview", "review_study",
           "collect_study", "is_excluded", "matches", "is_glob", "restore_links"]
