"""What every replay mode shares: the plan of one recorded run, its outcome, the
:class:`Runner` interface each mode implements (see :mod:`studypack.replay.registry` for
the list of modes), and running a command as a child process of this one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import EngineError, UsageError
from ..progress import CancelToken, Progress, Reporter

POLL_S = 0.25


@dataclass
class RunPlan:
    index: int
    argv: list[str]                  # the command, with argv[0] as recorded
    executable: str | None           # absolute path argv[0] resolved to when traced
    workdir: str                     # relative to the study root
    environment: dict[str, str]      # recorded, secret-free
    study_dir: Path                  # the recreated study folder on this machine
    original_root: str               # the study root's absolute path when traced


@dataclass
class RunOutcome:
    index: int
    command: list[str]
    exit_code: int | None
    duration_s: float
    stdout: str = ""
    stderr: str = ""
    recorded_exit_code: int | None = 0

    @property
    def failed(self) -> bool:
        return self.exit_code != self.recorded_exit_code

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stdout_tail"] = _tail(d.pop("stdout"))
        d["stderr_tail"] = _tail(d.pop("stderr"))
        return d


def _tail(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


# Variables that name places on the recording machine; inside an image that brings its
# own software they would point nowhere (the trace image keeps them: same layout).
HOST_PLACE_VARIABLES = {"PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV",
                        "CONDA_EXE", "CONDA_PYTHON_EXE", "PYTHONHOME", "LD_LIBRARY_PATH",
                        "PWD", "OLDPWD", "HOSTNAME", "PYENV_ROOT", "PYENV_VERSION",
                        "PYENV_SHELL", "SHLVL", "_", "TMPDIR"}


def connect_engine():
    """The environment issue's Engine (Docker, or Podman's Docker-compatible socket)."""
    from ..engine import Engine

    return Engine.connect()


def engine_available() -> tuple[bool, str]:
    try:
        connect_engine().close()
        return True, "the Docker daemon answers"
    except EngineError as exc:
        return False, exc.message


class Runner:
    """One replay mode. The class says whether it can run (``available``); an
    instance prepares what the runs need, runs them one by one, and cleans up."""

    name = "?"
    summary = ""        # one line for --help and the GUI
    why_chosen = ""     # why this mode, when it can run
    from_traced_files = True   # runs the traced files (not software installed anew)
    notes: list[str]

    @classmethod
    def available(cls, bundle, host) -> str | None:
        """None when this mode can replay ``bundle`` (BundleFacts, or None: this
        machine only) on ``host``; else the reason, one clause."""
        raise NotImplementedError

    @classmethod
    def for_replay(cls, layout, work: Path, *, network: bool) -> "Runner":
        raise NotImplementedError

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        """Load or build what the runs need (may take minutes)."""

    def run(self, plan: RunPlan, report: Reporter, cancel: CancelToken) -> RunOutcome:
        raise NotImplementedError

    def close(self) -> None:
        """Remove what prepare() made, unless it is to be kept."""


class OutputFollower:
    """Hands each new complete line of a file the run appends to to ``report`` as a
    Progress of phase "output" (the GUI streams the study's own output from these)."""

    def __init__(self, path: Path, prefix: str, report: Reporter):
        self.path, self.prefix, self.report = path, prefix, report
        self.offset, self.partial = 0, b""

    def poll(self, final: bool = False) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(256 * 1024)
        except OSError:
            return
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        if final and self.partial:
            lines, self.partial = lines + [self.partial], b""
        for line in lines:
            self.report(Progress("output", 0, None,
                                 self.prefix + line.decode("utf-8", "replace"), unit=""))


def run_process(argv: list[str], cwd: Path, env: dict[str, str], plan: RunPlan,
                report: Reporter, cancel: CancelToken) -> RunOutcome:
    """Run one recorded command as a child process of this one (its own session, so a
    cancel stops everything it started); its output goes to files beside the study."""
    t0 = time.monotonic()
    out_file = cwd / f".studypack-run{plan.index}.out"
    err_file = cwd / f".studypack-run{plan.index}.err"
    try:
        with open(out_file, "wb") as out, open(err_file, "wb") as err:
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as exc:
                raise UsageError(f"The traced program could not start here: "
                                 f"{exc.strerror}.", "Use a container mode.") from None
            followers = [OutputFollower(out_file, "", report),
                         OutputFollower(err_file, "[stderr] ", report)]
            ended = _EndWaiter(proc)
            try:
                while True:
                    report(Progress("run", int(time.monotonic() - t0), None,
                                    f"run {plan.index}: running… "
                                    f"{int(time.monotonic() - t0)} s", unit="s"))
                    for follower in followers:
                        follower.poll()
                    if cancel.cancelled:
                        _stop(proc)
                        cancel.check()
                    if proc.poll() is not None:
                        break
                    ended(POLL_S)
            finally:
                if proc.poll() is None:
                    _stop(proc)
                ended.close()
                for follower in followers:
                    follower.poll(final=True)
        stdout = out_file.read_text("utf-8", "replace")
        stderr = err_file.read_text("utf-8", "replace")
    finally:
        for f in (out_file, err_file):
            with contextlib.suppress(OSError):
                f.unlink()
    return RunOutcome(plan.index, list(plan.argv), proc.returncode,
                      time.monotonic() - t0, stdout, stderr)


class _EndWaiter:
    """Wait at most N seconds for a child to end, woken the moment it does: through a
    pidfd where Linux has them (Popen.wait with a timeout polls, up to 50 ms late —
    a fixed cost of every short run)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.fd = proc, None
        with contextlib.suppress(AttributeError, OSError):
            self.fd = os.pidfd_open(proc.pid)

    def __call__(self, timeout: float) -> None:
        if self.fd is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
            return
        import select

        select.select([self.fd], [], [], timeout)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _stop(proc: subprocess.Popen) -> None:
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
