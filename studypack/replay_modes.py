"""The four ways to run a recorded command again, one small class each.

- :class:`ImageRunner`: the image saved in the bundle (``docker load``);
- :class:`RebuildRunner`: the image rebuilt from the bundle's Dockerfile and vendored
  packages, with no network;
- :class:`TraceRunner`: an image made ``FROM scratch`` out of the traced files
  (``docker import`` of a tar studypack writes itself) plus Debian's static busybox;
- :class:`DirectoryRunner`: no engine at all; the traced program is started through the
  traced dynamic loader with every path rewritten into the unpacked files.

Every runner gets a :class:`RunPlan` per recorded run and returns a :class:`RunOutcome`.
The container runners share :class:`_ContainerRunner`, which bind-mounts the study
folder at its original absolute path, runs with no network unless asked, and removes
its container whatever happens (error, cancel).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import tarfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from . import elfinfo
from .errors import BuildError, EngineError, ImageLoadError, UsageError
from .progress import CancelToken, Progress, Reporter

CONTAINER_LABEL = "io.studypack.container"   # as studypack.engine: found by cleanups
IMAGE_STUDY_DIR = "/study"     # studypack.dockerfile.STUDY_DIR
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
IMAGE_PREFIX = "studypack-replay"
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


# --------------------------------------------------------------------------- engine

def connect_engine():
    """The environment issue's Engine (Docker, or Podman's Docker-compatible socket)."""
    from .engine import Engine

    return Engine.connect()


def engine_available() -> tuple[bool, str]:
    try:
        connect_engine().close()
        return True, "the Docker daemon answers"
    except EngineError as exc:
        return False, exc.message


class Runner:
    name = "?"
    notes: list[str]

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        """Load or build what the runs need (may take minutes)."""

    def run(self, plan: RunPlan, report: Reporter, cancel: CancelToken) -> RunOutcome:
        raise NotImplementedError

    def close(self) -> None:
        """Remove what prepare() made, unless it is to be kept."""


class _ContainerRunner(Runner):
    keep_image_env_path = True   # image/rebuild: the image's own PATH and places

    def __init__(self, bag_dir: Path, *, network: bool):
        self.bag_dir = bag_dir
        self.network = network
        self.engine = connect_engine()
        self.client = self.engine.client
        self.image: str | None = None
        self.created_image = False
        self.notes = []

    def environment(self, plan: RunPlan) -> dict[str, str]:
        env = dict(plan.environment)
        if self.keep_image_env_path:
            for name in HOST_PLACE_VARIABLES:
                env.pop(name, None)
        env["PWD"] = _container_cwd(self.mount_point(plan), plan)
        return env

    def command(self, plan: RunPlan) -> list[str]:
        return list(plan.argv)

    def mount_point(self, plan: RunPlan) -> str:
        """Where the study folder is inside the container: the images studypack builds
        keep the study in /study (see studypack.dockerfile)."""
        return IMAGE_STUDY_DIR

    def run(self, plan: RunPlan, report: Reporter, cancel: CancelToken) -> RunOutcome:
        from docker.errors import DockerException
        from requests.exceptions import RequestException

        argv = self.command(plan)
        root = self.mount_point(plan)
        kwargs = dict(
            command=argv, working_dir=_container_cwd(root, plan),
            environment=self.environment(plan),
            volumes={str(plan.study_dir): {"bind": root, "mode": "rw"}},
            network_mode="host" if self.network else "none", detach=True,
            labels={CONTAINER_LABEL: str(os.getpid())})
        if os.getuid() != 0:  # files written into the study folder stay the user's
            kwargs["user"] = f"{os.getuid()}:{os.getgid()}"
        container = None
        t0 = time.monotonic()
        try:
            container = self.client.containers.create(self.image, **kwargs)
            container.start()
            while True:
                report(Progress("run", int(time.monotonic() - t0), None,
                                f"run {plan.index}: running… {int(time.monotonic() - t0)} s",
                                unit="s"))
                cancel.check()
                container.reload()
                if container.status in ("exited", "dead"):
                    break
                time.sleep(POLL_S)
            exit_code = container.wait().get("StatusCode")
            stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        except (DockerException, RequestException) as exc:
            raise EngineError(f"Docker could not run the command: {_api_text(exc)}.",
                              "Check `docker info`; or try another --mode.") from None
        finally:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                with contextlib.suppress(Exception):   # gone before its image is removed
                    container.wait(condition="removed", timeout=10)
        return RunOutcome(plan.index, argv, exit_code, time.monotonic() - t0, stdout, stderr)

    def close(self) -> None:
        # Images a replay loaded, built or imported are removed even with --keep
        # (which keeps the work folder): nothing of a replay lingers in the engine.
        if self.created_image and self.image:
            self._remove_image()
        self.engine.close()

    def _remove_image(self) -> None:
        """A container stopped by a cancel may take a moment to go; until then the
        daemon refuses to remove its image. Retry for a few seconds, then say so."""
        from docker.errors import DockerException, ImageNotFound

        for attempt in range(40):
            try:
                self.client.images.remove(self.image, force=True)
                return
            except ImageNotFound:
                return
            except DockerException:
                time.sleep(0.25)
        self.notes.append(f"the image {self.image} could not be removed; remove it with "
                          f"`docker rmi {self.image}`")


def _container_cwd(root: str, plan: RunPlan) -> str:
    return str(PurePosixPath(root) / plan.workdir)


def _api_text(exc) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().rstrip(".")


class ImageRunner(_ContainerRunner):
    name = "image"

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        before = {img.id for img in self.client.images.list(all=True)}
        ids = self.engine.load(self.bag_dir / "data/image/image.tar", report=report,
                               cancel=cancel)
        self.image = ids[0]
        # An image that was here before the replay is the user's: never remove it.
        self.created_image = self.image not in before


class RebuildRunner(_ContainerRunner):
    name = "rebuild"

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        context = self.bag_dir / "data"     # the Dockerfile COPYs env/ and study/
        base = dockerfile_base(context / "env" / "Dockerfile")
        if base and not self.engine.image_exists(base):
            raise BuildError(f"The base image {base} is not on this machine, and a rebuild "
                             "is done offline.",
                             "Load it (docker load), or use --mode image or --mode trace.")
        tag = f"{IMAGE_PREFIX}-rebuild:{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.created_image = True
        built = self.engine.build(context, tag=tag, dockerfile="env/Dockerfile",
                                  report=report, cancel=cancel)
        self.image = built.tag


def dockerfile_base(dockerfile: Path) -> str | None:
    """The image of the first FROM line (None for FROM scratch)."""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            refs = [w for w in words[1:] if not w.startswith("--")]
            return None if not refs or refs[0] == "scratch" else refs[0]
    return None


class TraceRunner(_ContainerRunner):
    """``docker import`` of the traced files: the same absolute layout as the recording
    machine, so the recorded PATH and interpreter paths hold as they are."""

    name = "trace"
    keep_image_env_path = False

    def __init__(self, bag_dir: Path, rootfs: Path, work: Path, *, network: bool):
        super().__init__(bag_dir, network=network)
        self.rootfs = rootfs
        self.work = work

    def mount_point(self, plan: RunPlan) -> str:
        return plan.original_root

    def command(self, plan: RunPlan) -> list[str]:
        # The recorded executable is what PATH found when traced; exec it directly.
        if plan.executable:
            return [plan.executable, *plan.argv[1:]]
        return list(plan.argv)

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        from docker.errors import APIError

        layer = self.work / "trace-rootfs.tar"
        busybox = next((b for b in BUSYBOX_CANDIDATES if Path(b).is_file()), None)
        write_rootfs_tar(self.rootfs, layer, busybox, report, cancel)
        if busybox is None:
            self.notes.append("busybox-static is not installed here, so the trace image "
                              "has no shell of its own (apt install busybox-static).")
        tag = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        report(Progress("import", 0, None, "making the image FROM scratch (docker import)"))
        try:
            self.client.api.import_image_from_file(str(layer), repository=f"{IMAGE_PREFIX}-trace",
                                                   tag=tag)
        except APIError as exc:
            raise ImageLoadError(f"Docker could not import the traced files: {_api_text(exc)}.",
                                 "Try --mode directory.") from None
        finally:
            with contextlib.suppress(OSError):
                layer.unlink()
        self.image, self.created_image = f"{IMAGE_PREFIX}-trace:{tag}", True


def write_rootfs_tar(rootfs: Path, out: Path, busybox: str | None, report: Reporter,
                     cancel: CancelToken) -> None:
    """One filesystem layer: the traced files, /tmp, and busybox as /bin/busybox (plus
    /bin/sh when the trace has no shell). Owner root, modes as unpacked."""
    total = sum(p.stat().st_size for p in rootfs.rglob("*") if p.is_file() and not p.is_symlink())
    done = 0

    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        if info.name == "tmp" and info.isdir():
            info.mode = 0o1777     # anyone may write temporary files
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*")):
            cancel.check()
            arcname = path.relative_to(rootfs).as_posix()
            tar.add(path, arcname, recursive=False, filter=reset)
            if path.is_file() and not path.is_symlink():
                done += path.stat().st_size
                report(Progress("image", done, total, "packing the traced files"))
        if not (rootfs / "tmp").exists():
            tmp = tarfile.TarInfo("tmp")
            tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
            tar.addfile(reset(tmp))
        bin_dir = _inside(rootfs, "bin")
        if busybox and not (rootfs / bin_dir / "busybox").exists():
            tar.add(busybox, f"{bin_dir}/busybox", filter=reset)
            if not (rootfs / bin_dir / "sh").exists() and not (rootfs / bin_dir / "sh").is_symlink():
                sh = tarfile.TarInfo(f"{bin_dir}/sh")
                sh.type, sh.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(reset(sh))


def _inside(rootfs: Path, name: str) -> str:
    """Where /name really is inside the rootfs (Debian: /bin -> usr/bin)."""
    path = rootfs / name
    if path.is_symlink():
        target = os.readlink(path)
        return target.lstrip("/") if target.startswith("/") else target
    return name


class DirectoryRunner(Runner):
    """Runs the traced program on this machine, from the unpacked files, no engine.

    The program is started through the traced dynamic loader, with ``--library-path``
    naming every library folder of the trace, so neither this machine's libraries nor
    its interpreter are used. A Python program also gets PYTHONHOME inside the trace,
    and ``--argv0`` keeps the path of its virtualenv, so site-packages come from the
    trace too. What the program starts in turn (a subprocess) is not rewritten.
    """

    name = "directory"

    def __init__(self, rootfs: Path, *, network: bool = False):
        self.rootfs = rootfs
        self.network = network
        self.notes = []
        self._library_path: str | None = None
        self._isolate: list[str] = []

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
        others = started_programs(self.rootfs.parent / "trace" / "trace.sqlite3")
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
        argv = self._isolate + argv
        cwd = plan.study_dir / plan.workdir
        t0 = time.monotonic()
        out_file, err_file = cwd / f".studypack-run{plan.index}.out", cwd / f".studypack-run{plan.index}.err"
        try:
            with open(out_file, "wb") as out, open(err_file, "wb") as err:
                try:
                    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
                except OSError as exc:
                    raise UsageError(f"The traced program could not start here: "
                                     f"{exc.strerror}.", "Use a container mode.") from None
                try:
                    while True:
                        report(Progress("run", int(time.monotonic() - t0), None,
                                        f"run {plan.index}: running… "
                                        f"{int(time.monotonic() - t0)} s", unit="s"))
                        if cancel.cancelled:
                            _stop(proc)
                            cancel.check()
                        if proc.poll() is not None:
                            break
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            proc.wait(timeout=POLL_S)
                finally:
                    if proc.poll() is None:
                        _stop(proc)
            stdout = out_file.read_text("utf-8", "replace")
            stderr = err_file.read_text("utf-8", "replace")
        finally:
            for f in (out_file, err_file):
                with contextlib.suppress(OSError):
                    f.unlink()
        return RunOutcome(plan.index, list(plan.argv), proc.returncode,
                          time.monotonic() - t0, stdout, stderr)


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


def no_network_prefix() -> list[str]:
    """``unshare`` into a new network namespace (only loopback, down): as root directly,
    otherwise through a user namespace. [] when neither is allowed here."""
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
            return prefix
    return []


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


def which_busybox() -> str | None:
    return next((b for b in BUSYBOX_CANDIDATES if Path(b).is_file()), shutil.which("busybox"))
