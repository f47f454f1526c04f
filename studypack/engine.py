"""The container engine (Docker, or Podman's Docker-compatible API) behind one small class.

Everything goes through the ``docker`` SDK, which honours ``DOCKER_HOST`` — so the
same code drives Docker Engine and ``podman system service``. Builds and runs use
no network (``network_mode="none"``): a replay is hermetic and a build can only use
the files in its context. Every container studypack starts is removed again, on
success, on error and on cancel — and, when the daemon itself stopped and could not be
asked, by the next connection to it once the process that started it is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tarfile
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from .errors import BuildError, Cancelled, EngineError, ImageLoadError
from .fsutil import _alive as process_alive
from .fsutil import atomic_output
from .progress import Progress, reporter, token

CONTAINER_LABEL = "io.studypack.container"   # marks containers studypack started (owner pid)
HOST_LABEL = "io.studypack.host"             # the owner's host: a pid means nothing elsewhere
BUILD_RECORD = "studypack-build-containers-"  # temp-dir files naming a build's containers
LOG_TAIL = 25                                # build lines kept for an error message


class DaemonUnavailableError(EngineError):
    """No Docker (or Podman) daemon answers on the socket."""


class EnginePermissionError(EngineError):
    """The daemon's socket exists but this user may not use it."""


class DaemonStoppedError(DaemonUnavailableError):
    """The daemon answered, then went away in the middle of an operation."""


# What the SDK lets through when the daemon's socket closes under a request or a stream.
CONNECTION_LOST = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                   urllib3.exceptions.ProtocolError, ConnectionError)


class BaseImageError(EngineError):
    """The base image is neither on this machine nor pullable, or cannot be pinned."""


@dataclass(frozen=True)
class PinnedImage:
    ref: str            # what the user asked for, e.g. "python:3.11-slim"
    repository: str     # e.g. "127.0.0.1:5000/base/python"
    digest: str         # "sha256:…" (registry manifest digest)
    source: str         # "local" (RepoDigests) or "registry"

    @property
    def pinned(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass
class BuiltImage:
    id: str
    tag: str
    log: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    exit_code: int
    stdout: str
    stderr: str


def split_reference(ref: str) -> tuple[str, str | None, str | None]:
    """``registry:5000/repo/name:tag@sha256:…`` → (repository, tag, digest)."""
    repository, digest = (ref.split("@", 1) + [None])[:2]
    tag = None
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = repository.rsplit(":", 1)
    return repository, tag, digest


def _connection_error(exc: BaseException, where: str) -> EngineError:
    text = repr(exc)
    if "PermissionError" in text or "Permission denied" in text:
        return EnginePermissionError(
            f"Permission denied on the container engine's socket ({where}).",
            "Add yourself to the docker group (`sudo usermod -aG docker $USER`, then log out "
            "and in again), or run rootless Podman and point DOCKER_HOST at its socket.")
    return DaemonUnavailableError(
        f"No Docker daemon answers at {where}.",
        "Start it with `sudo systemctl start docker` (or run `dockerd`); for Podman run "
        "`systemctl --user start podman.socket` and set DOCKER_HOST to its socket. "
        "Use --no-image to create the bundle without building an image.")


def daemon_stopped(where: str, doing: str) -> DaemonStoppedError:
    """The sentence for a daemon that stopped while studypack was ``doing`` something."""
    return DaemonStoppedError(
        f"The Docker daemon ({where}) stopped while {doing}.",
        "Start it again (`sudo systemctl start docker`, or `dockerd`; for Podman "
        "`systemctl --user start podman.socket`) and retry; studypack removes the containers "
        "it left behind the next time it connects.")


def owner_labels() -> dict[str, str]:
    """Labels for every container studypack starts: who started it, so that a later
    connection can remove it when the daemon stopped before studypack could."""
    return {CONTAINER_LABEL: str(os.getpid()), HOST_LABEL: socket.gethostname()}


class Engine:
    """One connection to a Docker-compatible daemon."""

    def __init__(self, client: docker.DockerClient, where: str):
        self.client = client
        self.where = where

    @classmethod
    def connect(cls, base_url: str | None = None, *, timeout: int = 600) -> "Engine":
        """Connect to ``base_url``, else ``DOCKER_HOST``, else the default socket."""
        where = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        try:
            if base_url:
                client = docker.DockerClient(base_url=base_url, timeout=timeout)
            else:
                client = docker.from_env(timeout=timeout)
            client.ping()
        except docker.errors.DockerException as exc:
            raise _connection_error(exc, where) from None
        except (requests.exceptions.RequestException, OSError) as exc:
            raise _connection_error(exc, where) from None
        engine = cls(client, where)
        with contextlib.suppress(Exception):   # a cleanup never stands in the way
            engine.remove_orphans()
        return engine

    @classmethod
    def try_connect(cls, base_url: str | None = None) -> "Engine | None":
        try:
            return cls.connect(base_url)
        except EngineError:
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    @property
    def name(self) -> str:
        """"Docker 20.10.24" or "Podman 4.3.1"."""
        try:
            version = self.client.version()
        except (docker.errors.DockerException, *CONNECTION_LOST):
            return "unknown engine"
        for component in version.get("Components") or []:
            if "podman" in component.get("Name", "").lower():
                return f"Podman {component.get('Version', '')}".strip()
        return f"Docker {version.get('Version', '')}".strip()

    def _call(self, what: str, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CONNECTION_LOST:
            raise daemon_stopped(self.where, f"studypack was trying to {what}") from None
        except docker.errors.NotFound:
            raise   # the caller decides what a missing image or container means
        except docker.errors.APIError as exc:
            raise EngineError(f"The container engine refused to {what}: "
                              f"{exc.explanation or exc}.") from None

    # ------------------------------------------------------------------ images

    def resolve(self, ref: str, *, pull: bool = True, registry: bool = True,
                report=None) -> PinnedImage:
        """Pin ``ref`` to a registry digest and make sure the image is on this machine.

        A local image with a ``RepoDigests`` entry is pinned without any network; an
        image only on a registry is looked up there (``get_registry_data``, only when
        ``registry``) and pulled by digest (when ``pull``).
        """
        report = reporter(report)
        repository, _tag, digest = split_reference(ref)
        local = None
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.NullResource):
            local = self._call("inspect an image", self.client.images.get, ref)
        if local is not None:
            repo_digests = local.attrs.get("RepoDigests") or []
            chosen = next((d for d in repo_digests if d.split("@")[0] == repository), None)
            chosen = chosen or (f"{repository}@{digest}" if digest else None) or next(
                iter(repo_digests), None)
            if chosen:
                repo, dig = chosen.split("@", 1)
                return PinnedImage(ref=ref, repository=repo, digest=dig, source="local")
        if not registry:
            raise BaseImageError(
                f"The base image {ref} is not on this machine"
                + (" and has no registry digest" if local is not None else "")
                + ", so it could not be pinned by digest.",
                "Pull or load it first, or choose a local image with --base-image REF.")
        try:
            data = self.client.images.get_registry_data(ref)
            registry_digest = data.id
        except docker.errors.DockerException as exc:
            reason = getattr(exc, "explanation", None) or str(exc)
            pulled = self._pull_for_digest(ref, repository) if pull and local is None else None
            if pulled:   # Podman 4 has no /distribution endpoint: pull, then read the digest
                return PinnedImage(ref=ref, repository=repository, digest=pulled,
                                   source="registry")
            if local is not None:
                raise BaseImageError(
                    f"The base image {ref} exists only on this machine and has no registry "
                    f"digest, so it cannot be pinned ({reason}).",
                    "Push it to a registry (`docker push`) and use that name, or choose "
                    "another image with --base-image.") from None
            raise BaseImageError(
                f"The base image {ref} is not on this machine and cannot be pulled ({reason}).",
                "Load it with `docker load`, pull it where a registry is reachable, or choose "
                "another with --base-image REF.") from None
        except requests.exceptions.RequestException as exc:
            raise BaseImageError(f"The registry of {ref} cannot be reached ({exc}).",
                                 "Choose a local image with --base-image REF.") from None
        pinned = PinnedImage(ref=ref, repository=repository, digest=registry_digest,
                             source="registry")
        if pull and local is None:
            report(Progress("pull", 0, None, f"Pulling {pinned.pinned}"))
            try:
                for _ in self.client.api.pull(pinned.pinned, stream=True, decode=True):
                    pass
                self.client.images.get(pinned.pinned)
            except docker.errors.DockerException as exc:
                raise BaseImageError(f"The base image {pinned.pinned} could not be pulled: "
                                     f"{getattr(exc, 'explanation', None) or exc}.") from None
        return pinned

    def _pull_for_digest(self, ref: str, repository: str) -> str | None:
        try:
            image = self.client.images.pull(ref)
        except docker.errors.DockerException:
            return None
        return next((d.split("@", 1)[1] for d in image.attrs.get("RepoDigests") or []
                     if d.split("@")[0] == repository), None)

    def image_exists(self, ref: str) -> bool:
        try:
            self._call("inspect an image", self.client.images.get, ref)
            return True
        except docker.errors.ImageNotFound:
            return False

    def image_id(self, ref: str) -> str:
        return self._image(ref).id

    def _image(self, ref: str):
        try:
            return self._call("inspect an image", self.client.images.get, ref)
        except docker.errors.NotFound:
            raise EngineError(f"The image {ref} is not on this machine.",
                              "Build or load it first.") from None

    def remove_image(self, ref: str) -> None:
        with contextlib.suppress(docker.errors.ImageNotFound):
            self._call("remove an image", self.client.images.remove, ref, force=True)

    def build(self, context: Path | list[tuple[str, Path]], *, tag: str,
              dockerfile: str = "Dockerfile", report=None, cancel=None,
              nocache: bool = False) -> BuiltImage:
        """Build with no network, streaming each log line to ``report``.

        ``context`` is a folder, or a list of (path in the context, file on disk): only
        those files are sent, e.g. ``data/env`` and ``data/study`` of an unpacked bundle
        without its (large) traced files and saved image.
        """
        report, cancel = reporter(report), token(cancel)
        tail: deque[str] = deque(maxlen=LOG_TAIL)
        log: list[str] = []
        report(Progress("build", 0, None, f"Building {tag} (no network)", unit="step"))
        with contextlib.ExitStack() as stack:
            if isinstance(context, list):
                source = {"fileobj": stack.enter_context(_context_tar(context)),
                          "custom_context": True}
            else:
                source = {"path": str(context)}
            return self._build({**source, "nocache": nocache}, tag, dockerfile, tail, log,
                               report, cancel)

    def _build(self, source, tag, dockerfile, tail, log, report, cancel) -> BuiltImage:
        record = _BuildRecord(self.where)
        try:
            stream = self.client.api.build(
                **source, dockerfile=dockerfile, tag=tag, rm=True, forcerm=True,
                pull=False, network_mode="none", decode=True)
            try:
                for chunk in stream:
                    if cancel.cancelled:
                        raise Cancelled("Image build cancelled.")
                    if "error" in chunk:
                        tail.append(chunk["error"].strip())
                        raise BuildError(
                            f"The image build failed: {chunk['error'].strip()}",
                            "Last lines of the build log:\n" + "\n".join(tail))
                    text = chunk.get("stream") or chunk.get("status") or ""
                    for line in text.splitlines():
                        if not line.strip():
                            continue
                        running = re.match(r"^ ---> Running in ([0-9a-f]{12,64})$", line)
                        if running:   # the daemon removes it (forcerm) unless it dies
                            record.add(running[1])
                        tail.append(line)
                        log.append(line)
                        step = re.match(r"^(?:Step|STEP) (\d+)/(\d+)", line)
                        if step:
                            report(Progress("build", int(step[1]) - 1, int(step[2]), line,
                                            unit="step"))
                        else:
                            report(Progress("build", 0, None, line, unit="step"))
            finally:
                with contextlib.suppress(Exception):
                    stream.close()   # closing the connection stops a daemon-side build
        except docker.errors.BuildError as exc:
            raise BuildError(f"The image build failed: {exc.msg}",
                             "Last lines of the build log:\n" + "\n".join(tail)) from None
        except docker.errors.APIError as exc:
            raise BuildError(f"The image build failed: {exc.explanation or exc}",
                             "Last lines of the build log:\n" + "\n".join(tail)) from None
        except CONNECTION_LOST:
            record.keep()   # the next connection removes the build's containers
            raise daemon_stopped(self.where, f"building the image {tag}") from None
        finally:
            record.close()
        image_id = self.image_id(tag)
        report(Progress("build", 1, 1, f"Built {tag} ({image_id[:19]})", unit="step"))
        return BuiltImage(id=image_id, tag=tag, log=log)

    def save(self, ref: str, target: Path, *, tag: str | None = None, report=None,
             cancel=None) -> Path:
        """``docker save`` into ``target`` (atomically), with byte progress.

        ``ref`` may be an image id; ``tag`` is the name the archive records (so that
        ``docker load`` gives the image its name back) when the image still has it.
        """
        report, cancel = reporter(report), token(cancel)
        image = self._image(ref)
        total = int(image.attrs.get("Size") or 0) or None
        wanted = tag or ref
        named = wanted if wanted in image.tags else (image.tags[0] if image.tags else False)
        done = 0
        with atomic_output(target) as out:
            try:
                for chunk in image.save(chunk_size=1 << 21, named=named):
                    cancel.check()
                    out.write(chunk)
                    done += len(chunk)
                    report(Progress("save", done, max(total or 0, done) or None,
                                    f"Saving image {ref}"))
            except docker.errors.APIError as exc:
                raise EngineError(f"Saving the image {ref} failed: "
                                  f"{exc.explanation or exc}.") from None
            except CONNECTION_LOST:
                raise daemon_stopped(self.where, f"saving the image {ref}") from None
        return target

    def load(self, path: Path, *, report=None, cancel=None) -> list[str]:
        """``docker load`` from ``path``; returns the loaded images' ids."""
        report, cancel = reporter(report), token(cancel)
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ImageLoadError(f"Cannot read the saved image {path}: {exc.strerror}.") from None
        with open(path, "rb") as fh:
            body = _ProgressReader(fh, size, report, cancel, f"Loading image {path.name}")
            try:
                images = self.client.images.load(body)
            except docker.errors.ImageLoadError as exc:
                raise ImageLoadError(f"The engine could not load {path.name}: {exc}.",
                                     "The saved image is damaged; verify the bundle, or "
                                     "rebuild the image from data/env/.") from None
            except docker.errors.APIError as exc:
                raise ImageLoadError(
                    f"The engine could not load {path.name}: {exc.explanation or exc}.",
                    "The saved image is damaged; verify the bundle, or rebuild the image "
                    "from data/env/.") from None
            except CONNECTION_LOST:
                if body.cancelled:
                    raise Cancelled() from None
                raise daemon_stopped(self.where, f"loading the image {path.name}") from None
        if not images:
            raise ImageLoadError(f"{path.name} held no image.",
                                 "It is not a `docker save` archive.")
        return [image.id for image in images]

    # -------------------------------------------------------------- containers

    def run(self, image: str, command: list[str] | None = None, *, workdir: str | None = None,
            mounts: dict[str, str] | None = None, environment: dict[str, str] | None = None,
            user: str | None = None, timeout: float | None = None, report=None,
            cancel=None) -> RunResult:
        """Run ``command`` in a new container with no network, then remove the container.

        ``mounts`` maps host folders to container paths (read-write).
        """
        report, cancel = reporter(report), token(cancel)
        volumes = {str(Path(host).resolve()): {"bind": inside, "mode": "rw"}
                   for host, inside in (mounts or {}).items()}
        self._image(image)
        container = self._call(
            "create a container", self.client.containers.create, image, command,
            working_dir=workdir, volumes=volumes, environment=environment, user=user,
            network_mode="none", labels=owner_labels(), detach=True)
        try:
            self._call("start a container", container.start)
            follower = threading.Thread(target=self._follow_logs, args=(container, report),
                                        daemon=True)
            follower.start()
            exit_code = self._wait(container, cancel, timeout)
            follower.join(timeout=5)
            stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
            return RunResult(exit_code=exit_code, stdout=stdout, stderr=stderr)
        except CONNECTION_LOST:
            raise daemon_stopped(self.where, "the command was running in its container") \
                from None
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def _wait(self, container, cancel, timeout: float | None) -> int:
        waited = 0.0
        while True:
            if cancel.cancelled:
                raise Cancelled("The run was cancelled; its container was removed.")
            if timeout is not None and waited >= timeout:
                raise EngineError(f"The command ran longer than {timeout:.0f} s and was "
                                  "stopped.")
            try:
                result = container.wait(timeout=1)
                return int(result.get("StatusCode", 1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
                if "timed out" not in str(exc).lower() and "timeout" not in repr(exc).lower():
                    raise daemon_stopped(self.where, "the command was running in its "
                                                     "container") from None
                waited += 1

    @staticmethod
    def _follow_logs(container, report) -> None:
        with contextlib.suppress(Exception):
            for raw in container.logs(stream=True, follow=True):
                for line in raw.decode("utf-8", "replace").splitlines():
                    report(Progress("run", 0, None, line, unit="line"))

    def remove_orphans(self) -> list[str]:
        """Remove containers whose studypack process is gone: left behind when the daemon
        stopped mid-run or mid-build (it could not be asked to remove them then), or when
        studypack itself was killed. Returns the ids removed."""
        gone = []
        found = self._call("list containers", self.client.containers.list, all=True,
                           filters={"label": f"{HOST_LABEL}={socket.gethostname()}"})
        for container in found:
            owner = container.labels.get(CONTAINER_LABEL, "")
            if owner.isdigit() and not process_alive(int(owner)):
                gone.append(container.id)
        records = list(_stale_build_records(self.where))
        for _path, ids in records:
            gone += ids
        for container_id in gone:
            try:
                self._call("remove a container", self.client.api.remove_container,
                           container_id, force=True)
            except DaemonStoppedError:
                raise
            except (docker.errors.NotFound, EngineError):
                continue   # already gone, or being removed by someone else
        for path, _ids in records:
            with contextlib.suppress(OSError):
                path.unlink()
        return gone

    def leftover_containers(self) -> list[str]:
        """Containers studypack started that still exist (none, normally)."""
        found = self._call("list containers", self.client.containers.list, all=True,
                           filters={"label": CONTAINER_LABEL})
        return [c.id for c in found]


_ACTIVE_RECORDS: set[Path] = set()   # build records of builds running in this process


class _BuildRecord:
    """A small temp-dir file naming a build's intermediate containers, which the classic
    builder gives no label. The daemon removes them itself (forcerm) unless it dies
    mid-build; only then is the file kept, for the next connection to finish the job."""

    def __init__(self, where: str):
        self.where = where
        self.path = (Path(tempfile.gettempdir())
                     / f"{BUILD_RECORD}{os.getpid()}-{os.urandom(6).hex()}.txt")
        self.kept = False
        _ACTIVE_RECORDS.add(self.path)

    def add(self, container_id: str) -> None:
        with contextlib.suppress(OSError), open(self.path, "a", encoding="utf-8") as fh:
            if fh.tell() == 0:
                fh.write(self.where + "\n")
            fh.write(container_id + "\n")

    def keep(self) -> None:
        self.kept = True

    def close(self) -> None:
        _ACTIVE_RECORDS.discard(self.path)
        if not self.kept:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _stale_build_records(where: str):
    """(record file, container ids) of builds on ``where`` that no longer run: their
    process is gone, or it is this one and the build has ended."""
    for path in Path(tempfile.gettempdir()).glob(f"{BUILD_RECORD}*.txt"):
        pid_text = path.name[len(BUILD_RECORD):].split("-", 1)[0]
        if not pid_text.isdigit() or path in _ACTIVE_RECORDS:
            continue
        if int(pid_text) != os.getpid() and process_alive(int(pid_text)):
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        if lines and lines[0] == where:
            yield path, [line for line in lines[1:] if re.fullmatch(r"[0-9a-f]{12,64}", line)]


@contextlib.contextmanager
def _context_tar(files: list[tuple[str, Path]]):
    """A build context as an uncompressed tar in a temporary file (memory stays flat)."""
    with tempfile.TemporaryFile(prefix="studypack-context-") as fh:
        with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for arcname, path in files:
                info = tar.gettarinfo(str(path), arcname=arcname)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if info.isfile():
                    with open(path, "rb") as data:
                        tar.addfile(info, data)
                elif info.isdir():
                    tar.addfile(info)
        fh.seek(0)
        yield fh


class _ProgressReader:
    """A file wrapper for streaming an upload: reports bytes and honours cancel."""

    def __init__(self, fh, size: int, report, cancel, message: str):
        self.fh, self.size, self.report, self.cancel = fh, size, report, cancel
        self.message, self.done, self.cancelled = message, 0, False

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        if self.cancel.cancelled:
            self.cancelled = True
            raise Cancelled()
        block = self.fh.read(n if n and n > 0 else 1 << 20)
        self.done += len(block)
        self.report(Progress("load", self.done, self.size, self.message))
        return block
