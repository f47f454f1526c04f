"""The directory mode: run the traced program on this machine, with no container engine.

The program is started through the traced dynamic loader, with ``--library-path``
naming every library folder of the trace, so neither this machine's libraries nor its
interpreter are used; a Python program also gets PYTHONHOME inside the trace. The
network is taken away with ``unshare --net`` where the kernel allows it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import subprocess
from pathlib import Path, PurePosixPath

from .. import elfinfo
from ..bundle import format as fmt
from ..errors import UsageError
from ..progress import CancelToken, Progress, Reporter
from .runners import Runner, RunOutcome, RunPlan, run_process


class DirectoryRunner(Runner):
    """Runs the traced program on this machine, from the unpacked files, no engine.

    The program is started through the traced dynamic loader, with ``--library-path``
    naming every library folder of the trace, so neither this machine's libraries nor
    its interpreter are used. A Python program also gets PYTHONHOME inside the trace,
    and ``--argv0`` keeps the path of its virtualenv, so site-packages come from the
    trace too. What the program starts in turn (a subprocess) is not rewritten.
    """

    name = "directory"
    summary = "no engine, no confinement: runs the traced files on this machine (Linux)"
    why_chosen = "it needs no container engine (runs the traced files here)"

    @classmethod
    def available(cls, bundle, host) -> str | None:
        if bundle is not None and not bundle.has_rootfs:
            return "the bundle has no traced files"
        if not host.linux:
            return "it runs only on Linux"
        return host.cannot_run_traced(bundle)

    @classmethod
    def for_replay(cls, layout, work: Path, *, network: bool) -> "Runner":
        return cls(layout.rootfs, network=network,
                   trace_db=layout.bag_dir / fmt.TRACE_DIR / "trace.sqlite3")

    def __init__(self, rootfs: Path, *, network: bool = False, trace_db: Path | None = None):
        self.rootfs = rootfs
        # (the traced files may be kept outside the bag: studypack/replay/rootfs_cache.py)
        self.trace_db = trace_db or rootfs.parent / "trace" / "trace.sqlite3"
        self.network = network
        self.notes = []
        self._library_path: str | None = None
        self._isolate: tuple[str, ...] = ()

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        if platform.system() != "Linux":
            raise UsageError("The directory mode runs only on Linux.",
                             "Use --mode image, rebuild or trace with Docker.")
        report(Progress("prepare", 0, None, "finding the traced libraries"))
        folders = set()
        for path in self.rootfs.rglob("*.so*"):
            if path.is_file() and not path.is_symlink():
                folders.add(str(path.parent))
        self._library_path = ":".join(sorted(folders))
        others = started_programs(self.trace_db)
        if others:
            self.notes.append("the recorded run started other programs ("
                              + ", ".join(others[:5]) + (", …" if len(others) > 5 else "")
                              + "); in the directory mode those come from this machine, "
                              "not from the trace — a container mode replays them exactly")
        if not self.network:
            self._isolate = no_network_prefix()
            if not self._isolate:
                self.notes.append("the directory mode could not take the network away here "
                                  "(unshare is missing or not permitted); the run had network")

    def map_path(self, path: str, plan: RunPlan) -> Path:
        """Where an absolute path of the recording machine is found here."""
        pure = PurePosixPath(path)
        root = PurePosixPath(plan.original_root)
        if pure == root or root in pure.parents:
            return plan.study_dir / pure.relative_to(root)
        # The last component stays as it is: a virtualenv's bin/python is a link that
        # Python must see by that name to find its pyvenv.cfg.
        return resolve_in_rootfs(self.rootfs, str(pure.parent)) / pure.name

    def command(self, plan: RunPlan) -> tuple[list[str], dict[str, str]]:
        if not plan.executable:
            raise UsageError(f"Run {plan.index} does not say which program it ran, so it "
                             "cannot be found among the traced files.",
                             "Use a container mode (image, rebuild or trace).")
        launcher = self.map_path(plan.executable, plan)      # may be a venv symlink
        program = resolve_in_rootfs(self.rootfs, plan.executable)
        if not program.is_file() and launcher.is_file():
            program = launcher.resolve()     # the study's own script, e.g. run.sh
        if not program.is_file():
            raise UsageError(f"The traced program {plan.executable} is not in the bundle's "
                             "traced files.", "Use --mode image or --mode rebuild.")
        env = dict(plan.environment)
        for name in ("LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONHOME", "PWD", "OLDPWD"):
            env.pop(name, None)
        env["PATH"] = ":".join(str(self.map_path(p, plan)) for p in
                               env.get("PATH", "/usr/bin:/bin").split(":") if p.startswith("/"))
        env["PWD"] = str(plan.study_dir / plan.workdir)
        args = list(plan.argv[1:])
        shebang = _shebang(program)
        if shebang:  # a script: its interpreter comes from the trace too
            interpreter_path, *interpreter_args = shebang
            args = [*interpreter_args, str(launcher), *args]
            launcher = self.map_path(interpreter_path, plan)
            program = resolve_in_rootfs(self.rootfs, interpreter_path)
            if not program.is_file():
                raise UsageError(f"The script's interpreter {interpreter_path} is not in the "
                                 "bundle's traced files.", "Use a container mode.")
        home = python_home(self.rootfs, program)
        if home is not None:
            env["PYTHONHOME"] = str(home)
            env["PYTHONNOUSERSITE"] = "1"
        interpreter = elfinfo.interpreter(program)
        if interpreter is None:  # a static program: run it as it is
            return [str(program), *args], env
        loader = resolve_in_rootfs(self.rootfs, interpreter)
        if not loader.is_file():
            raise UsageError(f"The traced dynamic loader {interpreter} is missing from the "
                             "bundle's traced files.", "Use a container mode.")
        argv = [str(loader), "--library-path", self._library_path or "",
                "--argv0", str(launcher), str(program), *args]
        return argv, env

    def run(self, plan: RunPlan, report: Reporter, cancel: CancelToken) -> RunOutcome:
        argv, env = self.command(plan)
        return run_process([*self._isolate, *argv], plan.study_dir / plan.workdir, env, plan,
                           report, cancel)


def started_programs(trace_db: Path) -> list[str]:
    """Programs the traced runs started besides their own command, each once."""
    import sqlite3

    if not trace_db.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{trace_db}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT run_id, name FROM executed_files "
                              "ORDER BY timestamp, id").fetchall()
    except sqlite3.Error:
        return []
    first_of_run: set[int] = set()
    started = []
    for run_id, name in rows:   # each run's own first program is not "another" one
        if run_id not in first_of_run:
            first_of_run.add(run_id)
            continue
        started.append(name)
    return list(dict.fromkeys(started))


def _shebang(path: Path) -> list[str] | None:
    """``#!/bin/sh -e`` -> ["/bin/sh", "-e"]; None for anything else."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split(None, 1)
    if not words or not words[0].startswith("/"):
        return None
    return [words[0]] + ([words[1].strip()] if len(words) > 1 and words[1].strip() else [])


@functools.lru_cache(maxsize=1)
def no_network_prefix() -> tuple[str, ...]:
    """``unshare`` into a new network namespace (only loopback, down): as root directly,
    otherwise through a user namespace. () when neither is allowed here."""
    unshare = shutil.which("unshare")
    if not unshare:
        return []
    for prefix in ([unshare, "--net"] if os.geteuid() == 0 else [],
                   [unshare, "--net", "--map-current-user"],
                   [unshare, "--net", "--map-root-user"]):
        if not prefix:
            continue
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return tuple(prefix)
    return ()


def resolve_in_rootfs(rootfs: Path, path: str, _depth: int = 0) -> Path:
    """Follow symlinks as the recording machine would, but inside ``rootfs``."""
    parts = PurePosixPath(path).parts[1:] if path.startswith("/") else PurePosixPath(path).parts
    current = rootfs
    for i, part in enumerate(parts):
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent if current != rootfs else rootfs
            continue
        candidate = current / part
        if candidate.is_symlink() and _depth < 40:
            target = os.readlink(candidate)
            base = "/" if target.startswith("/") else "/" + current.relative_to(rootfs).as_posix()
            joined = str(PurePosixPath(base) / target)
            rest = "/".join(parts[i + 1:])
            full = joined + ("/" + rest if rest else "")
            return resolve_in_rootfs(rootfs, _normalise(full), _depth + 1)
        current = candidate
    return current


def _normalise(path: str) -> str:
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return "/" + "/".join(out)


def python_home(rootfs: Path, program: Path) -> Path | None:
    """The prefix of a traced CPython (``<prefix>/bin/pythonX.Y``) inside the rootfs."""
    if not program.name.startswith("python"):
        return None
    prefix = program.parent.parent
    if any(prefix.glob("lib/python3*/os.py")):
        return prefix
    return None
