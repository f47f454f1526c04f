"""The four ways to run a recorded command again, one small class each.

- :class:`ImageRunner`: the image saved in the bundle (``docker load``);
- :class:`RebuildRunner`: the image rebuilt from the bundle's Dockerfile and vendored
  packages, with no network;
- :class:`TraceRunner`: an image made ``FROM scratch`` out of the traced files
  (``docker import`` of a tar studypack writes itself) plus Debian's static busybox;
- :class:`~studypack.replay_directory.DirectoryRunner` (its own module): no engine at
  all; the traced program is started through the traced loader, paths rewritten.

Every runner gets a :class:`RunPlan` per recorded run and returns a :class:`RunOutcome`.
The container runners share :class:`_ContainerRunner`, which bind-mounts the study
folder at its original absolute path, runs with no network unless asked, and removes
its container whatever happens (error, cancel).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from .errors import BuildError, EngineError, ImageLoadError
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


class _ContainerRunner(Runner):
    keep_image_env_path = True   # image/rebuild: the image's own PATH and places
    needs = ""                   # what the bundle must carry, e.g. "a saved image"

    @classmethod
    def carried(cls, bundle) -> bool:
        raise NotImplementedError

    @classmethod
    def available(cls, bundle, host) -> str | None:
        if bundle is not None and not cls.carried(bundle):
            return f"the bundle has no {cls.needs}"
        return host.engine_problem or host.arch_problem(bundle)

    @classmethod
    def for_replay(cls, layout, work: Path, *, network: bool) -> "Runner":
        return cls(layout.bag_dir, network=network)

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

        from .engine import CONNECTION_LOST, daemon_stopped, owner_labels

        argv = self.command(plan)
        root = self.mount_point(plan)
        kwargs = dict(
            command=argv, working_dir=_container_cwd(root, plan),
            environment=self.environment(plan),
            volumes={str(plan.study_dir): {"bind": root, "mode": "rw"}},
            network_mode="host" if self.network else "none", detach=True,
            labels=owner_labels())   # who started it: found by later cleanups
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
        except CONNECTION_LOST:
            raise daemon_stopped(self.engine.where, f"run {plan.index} was running in its "
                                 "container") from None
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

        from .engine import CONNECTION_LOST

        for attempt in range(40):
            try:
                self.client.images.remove(self.image, force=True)
                return
            except ImageNotFound:
                return
            except CONNECTION_LOST:   # the daemon stopped: no use retrying
                break
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
    summary = "the image saved in the bundle (docker load): exact and offline"
    why_chosen = "the bundle carries a saved image and the Docker daemon answers"
    needs = "saved image"
    from_traced_files = False

    @classmethod
    def carried(cls, bundle) -> bool:
        return bundle.has_image

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        before = {img.id for img in self.client.images.list(all=True)}
        ids = self.engine.load(self.bag_dir / "data/image/image.tar", report=report,
                               cancel=cancel)
        self.image = ids[0]
        # An image that was here before the replay is the user's: never remove it.
        self.created_image = self.image not in before


class RebuildRunner(_ContainerRunner):
    name = "rebuild"
    summary = "the image rebuilt offline from the bundle's Dockerfile and vendored packages"
    why_chosen = ("the bundle carries a Dockerfile with vendored packages and the Docker "
                  "daemon answers")
    needs = "Dockerfile with vendored packages"
    from_traced_files = False

    @classmethod
    def carried(cls, bundle) -> bool:
        return bundle.has_dockerfile

    @classmethod
    def available(cls, bundle, host) -> str | None:
        reason = super().available(bundle, host)
        if reason is None and bundle is not None and bundle.base_image \
                and not host.image_here(bundle.base_image):
            return (f"its base image {bundle.base_image} is not on this machine "
                    "(rebuilds are offline)")
        return reason

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        context = self.bag_dir / "data"     # the Dockerfile COPYs env/ and study/
        base = dockerfile_base(context / "env" / "Dockerfile")
        if base and not self.engine.image_exists(base):
            raise BuildError(f"The base image {base} is not on this machine, and a rebuild "
                             "is done offline.",
                             "Load it (docker load), or use --mode image or --mode trace.")
        tag = f"{IMAGE_PREFIX}-rebuild:{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.created_image = True
        from .environment import bundle_build_context

        # Only env/ and study/: the traced files and a saved image are not needed to build.
        built = self.engine.build(bundle_build_context(context), tag=tag,
                                  dockerfile="env/Dockerfile", report=report, cancel=cancel)
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
    summary = "an image made FROM scratch out of the traced files: no base image, no registry"
    why_chosen = "the bundle carries the traced files and the Docker daemon answers"
    needs = "traced files"
    keep_image_env_path = False

    @classmethod
    def carried(cls, bundle) -> bool:
        return bundle.has_rootfs

    @classmethod
    def available(cls, bundle, host) -> str | None:
        return super().available(bundle, host) or host.cannot_run_traced(bundle)

    @classmethod
    def for_replay(cls, layout, work: Path, *, network: bool) -> "Runner":
        return cls(layout.bag_dir, layout.rootfs, work, network=network)

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

        from .engine import CONNECTION_LOST, daemon_stopped

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
        except CONNECTION_LOST:
            raise daemon_stopped(self.engine.where, "importing the traced files") from None
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


def which_busybox() -> str | None:
    return next((b for b in BUSYBOX_CANDIDATES if Path(b).is_file()), shutil.which("busybox"))
