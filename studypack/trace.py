"""Run the study's command(s) under a real ReproZip trace and record the run.

The result names every file the run touched (to pack as ``data/rootfs``), the dpkg
packages they came from, and one :class:`RunRecord` per command. Everything that
leaves this module has been through the :class:`~studypack.secrets.Scrubber`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import RunFailedError, TraceError, UsageError
from .fsutil import utc_now_iso
from .progress import CancelToken, Progress, Reporter, reporter, token
from .secrets import Scrubber
from .spec import StudySpec

# Files a run may read that must never be published, wherever they are.
SECRET_FILE_NAMES = {".netrc", ".pypirc", ".git-credentials", ".pgpass", ".env",
                     "credentials", "id_rsa", "id_ed25519", "id_ecdsa", "id_dsa",
                     "shadow", "gshadow", ".Xauthority", ".npmrc"}
SECRET_DIR_NAMES = {".ssh", ".gnupg", ".aws", ".docker", ".kube", ".password-store",
                    "keyrings", ".azure", "gcloud"}
NEVER_PACKED_PREFIXES = ("/proc/", "/sys/", "/dev/", "/run/")


@dataclass
class RunRecord:
    index: int
    command: list[str]
    workdir: str
    executable: str | None
    exit_code: int | None
    signal: int | None
    started_at: str
    finished_at: str
    duration_s: float
    environment: dict[str, str]
    stdout_file: Path
    stderr_file: Path
    host: dict = field(default_factory=dict)
    git: dict | None = None

    def to_json(self) -> dict:
        return {
            "index": self.index, "command": self.command, "workdir": self.workdir,
            "executable": self.executable, "exit_code": self.exit_code,
            "signal": self.signal, "started_at": self.started_at,
            "finished_at": self.finished_at, "duration_s": round(self.duration_s, 3),
            "environment": self.environment, "host": self.host, "git": self.git,
            "stdout": "stdout.txt", "stderr": "stderr.txt",
            "source_date_epoch": self.environment.get("SOURCE_DATE_EPOCH"),
        }


@dataclass
class TraceResult:
    trace_dir: Path
    runs: list[RunRecord]
    files: list[Path]                 # traced files to pack under data/rootfs
    packages: list[dict]              # dpkg packages: name, version
    skipped_secret_files: list[str]
    opened: set[str] = field(default_factory=set)     # every file the run read or ran
    pythons: list[str] = field(default_factory=list)  # Python interpreters it started
    written: set[str] = field(default_factory=set)    # every file it opened for writing


def run_environment(spec: StudySpec) -> dict[str, str]:
    env = dict(os.environ)
    if spec.environment.python:
        python = Path(spec.environment.python)
        if not python.is_absolute():
            python = spec.root / python
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    # studypack's own virtualenv must not leak into the study's run.
    if env.get("VIRTUAL_ENV") and Path(sys.prefix) == Path(env["VIRTUAL_ENV"]):
        env.pop("VIRTUAL_ENV")
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                      if Path(p) != Path(sys.prefix) / "bin")
    return env


def resolve_executable(command0: str, cwd: Path, env: dict[str, str]) -> str | None:
    if "/" in command0:
        candidate = (cwd / command0)
        return str(candidate.absolute()) if candidate.exists() else None
    return shutil.which(command0, path=env.get("PATH"))


def tracer_missing() -> str | None:
    """Why this machine cannot trace a run, in one sentence (None: it can). ReproZip is
    installed only on Linux (it follows the run with ptrace) and imported only by the
    tracer process (:mod:`studypack._tracerun`)."""
    if sys.platform != "linux":
        return (f"Tracing a run needs Linux (ReproZip follows it with ptrace); this is "
                f"{platform.system() or sys.platform}.")
    if importlib.util.find_spec("reprozip") is None:
        return ("Tracing a run needs ReproZip, which is not installed here "
                "(pip install reprozip).")
    return None


NO_TRACE_HINT = ("Create the bundle without a trace with --no-trace; info, verify, unpack, "
                 "fetch, deposit and replay --mode image|rebuild work on any platform.")


def trace_study(spec: StudySpec, work_dir: Path, scrubber: Scrubber, *,
                allow_failure: bool = False, report: Reporter | None = None,
                cancel: CancelToken | None = None) -> TraceResult:
    if (missing := tracer_missing()) is not None:
        raise UsageError(missing, NO_TRACE_HINT)
    report, cancel = reporter(report), token(cancel)
    trace_dir = work_dir / "trace"
    trace_dir.parent.mkdir(parents=True, exist_ok=True)
    env = run_environment(spec)
    # Fixed to the run's start, here and at every replay: tools that honour it (PDF and
    # archive writers, compilers) write the same dates each time.
    env.setdefault("SOURCE_DATE_EPOCH", str(int(time.time())))
    runs: list[RunRecord] = []
    for index, step in enumerate(spec.runs, 1):
        cancel.check()
        cwd = (spec.root / step.workdir).resolve()
        if not cwd.is_dir():
            raise UsageError(f"The run's working folder {cwd} does not exist.")
        executable = resolve_executable(step.command[0], cwd, env)
        if executable is None:
            raise UsageError(f"The command {step.command[0]!r} was not found.",
                             "Check [run] command in studypack.toml, or the PATH.")
        label = " ".join(step.command)
        report(Progress("trace", 0, None, f"run {index}/{len(spec.runs)}: {label}",
                        headline=True))
        run_dir = work_dir / f"run{index}"
        run_dir.mkdir(parents=True, exist_ok=True)
        record = _trace_one(step.command, cwd, env, trace_dir, index > 1, run_dir,
                            report, cancel)
        record.index, record.executable = index, executable
        record.workdir = step.workdir
        if record.exit_code != 0 and not allow_failure:
            tail = _tail(record.stderr_file)
            what = (f"was killed by signal {record.signal}" if record.signal
                    else f"exited with code {record.exit_code}")
            raise RunFailedError(
                f"The study's command `{label}` {what}; no bundle was written."
                + (f" Its last error output: {tail}" if tail else ""),
                "Fix the study and try again, or pass --allow-failure to pack the failed run.")
        runs.append(record)

    config = _scrub_trace(trace_dir, scrubber)
    for record in runs:
        record.command = scrubber.scrub_argv(record.command)
        record.environment = scrubber.scrub_environment(record.environment)
    for record in runs:  # second pass: now every secret value is known
        for f in (record.stdout_file, record.stderr_file):
            f.write_bytes(scrubber.scrub_bytes(f.read_bytes()))
    files, skipped = _traced_files(config, spec, trace_dir)
    packages = [{"name": p.get("name"), "version": p.get("version"),
                 "files": list(p.get("files") or [])}
                for p in config.get("packages") or []]
    opened = set(config.get("other_files") or [])
    for package in config.get("packages") or []:
        opened.update(package.get("files") or [])
    return TraceResult(trace_dir, runs, files, packages, skipped, opened,
                       _pythons_started(trace_dir), _written(trace_dir))


def _trace_one(command, cwd, env, trace_dir, append, run_dir, report, cancel) -> RunRecord:
    stdout_file, stderr_file = run_dir / "stdout.txt", run_dir / "stderr.txt"
    status_file, log_file = run_dir / "status.json", run_dir / "reprozip.log"
    argv = [sys.executable, "-m", "studypack._tracerun", str(trace_dir), "1" if append else "0",
            str(log_file), str(status_file), "--", *command]
    runner_env = dict(env)
    # The runner needs studypack importable; the traced command does not see this.
    runner_env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent)]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    started, t0 = utc_now_iso(), time.monotonic()
    with open(stdout_file, "wb") as out, open(stderr_file, "wb") as err:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=runner_env, stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise TraceError(f"Could not start the tracer: {exc.strerror}.") from None
        try:
            while proc.poll() is None:
                if cancel.cancelled:
                    os.killpg(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                    cancel.check()
                elapsed = int(time.monotonic() - t0)
                report(Progress("trace", elapsed, None, f"running… {elapsed} s", unit="s"))
                try:
                    proc.wait(timeout=0.25)
                except subprocess.TimeoutExpired:
                    pass
        except BaseException:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            raise
    duration = time.monotonic() - t0
    if proc.returncode != 0 or not status_file.exists():
        log = log_file.read_text(errors="replace") if log_file.exists() else ""
        raise TraceError(
            "ReproZip could not trace the run"
            + (f": {log.strip().splitlines()[-1]}" if log.strip() else "."),
            "Tracing needs ptrace; in a container run it with --cap-add SYS_PTRACE.")
    status = json.loads(status_file.read_text())
    return RunRecord(
        index=0, command=list(command), workdir=".", executable=None,
        exit_code=status["exit_code"], signal=status["signal"], started_at=started,
        finished_at=utc_now_iso(), duration_s=duration, environment=dict(env),
        stdout_file=stdout_file, stderr_file=stderr_file)


_PYTHON_NAME = re.compile(r"^python[0-9.]*$")


def _pythons_started(trace_dir: Path) -> list[str]:
    """The Python interpreters the run executed, in order (e.g. from `bash run.sh`)."""
    with sqlite3.connect(trace_dir / "trace.sqlite3") as db:
        rows = db.execute("SELECT name, argv FROM executed_files ORDER BY timestamp").fetchall()
    found: list[str] = []
    for name, argv in rows:
        first = (argv or "").split("\0", 1)[0]
        # a venv's bin/python is a link to the base interpreter: keep the path as called
        called = first if "/" in first and _PYTHON_NAME.match(Path(first).name) else name
        if _PYTHON_NAME.match(Path(called).name) and called not in found:
            found.append(called)
    return found


FILE_WRITE = 2   # ReproZip's mode bit of an opened_files row: opened for writing


def _written(trace_dir: Path) -> set[str]:
    """The files the run opened for writing, as the trace names them."""
    with sqlite3.connect(trace_dir / "trace.sqlite3") as db:
        rows = db.execute("SELECT DISTINCT name FROM opened_files WHERE mode & ?",
                          (FILE_WRITE,)).fetchall()
    return {name for (name,) in rows}


def _tail(path: Path, limit: int = 300) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return text[-limit:].replace("\n", " ⏎ ") if text else ""


def _scrub_trace(trace_dir: Path, scrubber: Scrubber) -> dict:
    """Rewrite config.yml and trace.sqlite3 with secrets removed; return the config."""
    config_path = trace_dir / "config.yml"
    config = yaml.safe_load(config_path.read_text())
    db_path = trace_dir / "trace.sqlite3"
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT id, argv, envp FROM executed_files").fetchall()
    # Every argument first: a secret given on a command line (even one a shell expanded
    # from an innocently named variable) must be known before any environment is scrubbed.
    for run in config.get("runs") or []:
        run["argv"] = scrubber.scrub_argv(run.get("argv") or [])
    clean_argvs = {row_id: scrubber.scrub_argv([a for a in argv.split("\0") if a])
                   for row_id, argv, _envp in rows}
    for run in config.get("runs") or []:
        run["environ"] = scrubber.scrub_environment(run.get("environ") or {})
    with sqlite3.connect(db_path) as db:
        for row_id, argv, envp in rows:
            env = dict(item.split("=", 1) for item in envp.split("\0") if "=" in item)
            clean_env = scrubber.scrub_environment(env)
            clean_argv = clean_argvs[row_id]
            db.execute("UPDATE executed_files SET argv = ?, envp = ? WHERE id = ?",
                       ("\0".join(clean_argv) + "\0",
                        "".join(f"{k}={v}\0" for k, v in clean_env.items()), row_id))
    with sqlite3.connect(db_path) as db:
        db.execute("VACUUM")  # freed pages would still hold the old values
    header = ("# ReproZip configuration, written by reprozip and scrubbed of secrets "
              "by studypack\n")
    config_path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return config


def is_secret_file(path: Path) -> bool:
    return path.name in SECRET_FILE_NAMES or bool(SECRET_DIR_NAMES & set(path.parts))


def _traced_files(config: dict, spec: StudySpec, trace_dir: Path) -> tuple[list[Path], list[str]]:
    from .collect import is_excluded

    names: set[str] = set()
    for package in config.get("packages") or []:
        names.update(package.get("files") or [])
    names.update(config.get("other_files") or [])
    root = spec.root
    files, skipped = [], []
    for name in sorted(names):
        path = Path(name)
        if name.startswith(NEVER_PACKED_PREFIXES) or not path.is_absolute():
            continue
        if path.is_relative_to(trace_dir):
            continue
        if path.is_relative_to(root) and not is_excluded(path.relative_to(root), spec.excludes):
            continue  # packed with the study itself
        if is_secret_file(path):
            skipped.append(name)
            continue
        if path.is_symlink() or path.is_file():
            files.append(path)
    return files, skipped
