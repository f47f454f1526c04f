"""The sandbox mode: the traced files as the root file system, under bubblewrap.

No root, no daemon, no image: ``bwrap`` (Debian package ``bubblewrap``) puts the run in
new user, mount, PID, IPC and network namespaces, with the traced files mounted
read-only as ``/`` and only the study folder (and a temporary folder, both inside the
replay's work folder) writable. The network is taken away unless ``--network``.
"""

from __future__ import annotations

import functools
import platform
import shutil
import subprocess
from pathlib import Path, PurePosixPath

from ..errors import UsageError
from ..progress import CancelToken, Progress, Reporter
from .runners import Runner, RunOutcome, RunPlan, run_process

SANDBOX_TMP = "/.studypack-tmp"   # the writable temporary folder when /tmp was traced


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """None when bubblewrap can make its namespaces here, else the reason."""
    if platform.system() != "Linux":
        return "it runs only on Linux"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (apt install bubblewrap)"
    try:
        probe = subprocess.run([bwrap, "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc",
                                "--dev", "/dev", "true"], capture_output=True, text=True,
                               timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap could not start ({exc})"
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no reason given"])[-1]
        return f"bubblewrap cannot make a sandbox here ({why.removeprefix('bwrap: ')})"
    return None


class SandboxRunner(Runner):
    name = "sandbox"
    summary = "the traced files read-only under bubblewrap: no root, no daemon (Linux)"
    why_chosen = ("it confines the run without root or a daemon: the traced files under "
                  "bubblewrap, no network")

    @classmethod
    def available(cls, bundle, host) -> str | None:
        if bundle is not None and not bundle.has_rootfs:
            return "the bundle has no traced files"
        return host.sandbox_problem or host.cannot_run_traced(bundle)

    @classmethod
    def for_replay(cls, layout, work: Path, *, network: bool) -> "Runner":
        return cls(layout.rootfs, work, network=network)

    def __init__(self, rootfs: Path, work: Path, *, network: bool = False):
        self.rootfs = rootfs
        self.work = work
        self.network = network
        self.notes = []
        self.tmp = work / "sandbox-tmp"

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        problem = bwrap_problem()
        if problem:
            raise UsageError(f"The sandbox mode cannot run here: {problem}.",
                             "Use --mode directory, or a container mode.")
        report(Progress("prepare", 0, None, "preparing the sandbox"))
        self.tmp.mkdir(parents=True, exist_ok=True)
        # Mount points must exist in the read-only root before bwrap mounts onto them.
        for name in ("proc", "dev", "tmp"):
            _mount_point(self.rootfs / name)

    def command(self, plan: RunPlan) -> tuple[list[str], dict[str, str]]:
        if not plan.executable:
            raise UsageError(f"Run {plan.index} does not say which program it ran, so it "
                             "cannot be found among the traced files.",
                             "Use a container mode (image, rebuild or trace).")
        _mount_point(self.rootfs / plan.original_root.lstrip("/"))
        traced_tmp = any((self.rootfs / "tmp").iterdir())
        tmp_target = SANDBOX_TMP if traced_tmp else "/tmp"
        if traced_tmp:
            _mount_point(self.rootfs / SANDBOX_TMP.lstrip("/"))
        cwd = str(PurePosixPath(plan.original_root) / plan.workdir)
        argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent",
                "--new-session", *(["--share-net"] if self.network else []),
                "--ro-bind", str(self.rootfs), "/", "--proc", "/proc", "--dev", "/dev",
                "--bind", str(self.tmp), tmp_target,
                "--bind", str(plan.study_dir), plan.original_root,
                "--chdir", cwd, "--", plan.executable, *plan.argv[1:]]
        env = dict(plan.environment)
        env["PWD"] = cwd
        env["TMPDIR"] = tmp_target
        return argv, env

    def run(self, plan: RunPlan, report: Reporter, cancel: CancelToken) -> RunOutcome:
        argv, env = self.command(plan)
        return run_process(argv, plan.study_dir / plan.workdir, env, plan, report, cancel)


def _mount_point(path: Path) -> None:
    if path.is_symlink():
        return      # bwrap follows it inside the sandbox
    path.mkdir(parents=True, exist_ok=True)
