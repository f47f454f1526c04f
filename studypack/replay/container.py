"""What the Docker modes (image, rebuild, trace) share: a container per recorded run that
bind-mounts the study folder, runs with no network unless asked, and is removed whatever
happens (error, cancel); the image a replay made is removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path, PurePosixPath

from ..errors import EngineError
from ..progress import CancelToken, Progress, Reporter
from .runners import HOST_PLACE_VARIABLES, POLL_S, Runner, RunOutcome, RunPlan, connect_engine

IMAGE_STUDY_DIR = "/study"     # studypack.environment.dockerfile.STUDY_DIR
IMAGE_PREFIX = "studypack-replay"


class ContainerRunner(Runner):
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
        keep the study in /study (see studypack.environment.dockerfile)."""
        return IMAGE_STUDY_DIR

    def run(self, plan: RunPlan, report: Reporter, cancel: CancelToken) -> RunOutcome:
        from docker.errors import DockerException
        from requests.exceptions import RequestException

        from ..engine import CONNECTION_LOST, daemon_stopped, owner_labels

        argv = self.command(plan)
        root = self.mount_point(plan)
        kwargs = dict(
            command=argv, working_dir=_container_cwd(root, plan),
            environment=self.environment(plan),
            volumes={str(plan.study_dir): {"bind": root, "mode": "rw"}},
            network_mode="host" if self.network else "none", detach=True,
            labels=owner_labels())   # who started it: found by later cleanups
        # files written into the study folder stay the user's (Windows has no uid)
        if hasattr(os, "getuid") and os.getuid() != 0:
            kwargs["user"] = f"{os.getuid()}:{os.getgid()}"
        container = None
        t0 = time.monotonic()
        try:
            container = self.client.containers.create(self.image, **kwargs)
            container.start()
            followers = [LogFollower(container, "stdout", "", report),
                         LogFollower(container, "stderr", "[stderr] ", report)]
            exit_code = _wait(container, plan, t0, report, cancel, followers)
            for follower in followers:
                follower.finish()
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

        from ..engine import CONNECTION_LOST

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


class LogFollower:
    """Streams one of a container's log streams (``docker logs --follow``) in a thread;
    ``poll`` hands each new complete line to ``report`` as a Progress of phase "output"
    from the caller's thread, like runners.OutputFollower does for a process."""

    def __init__(self, container, stream: str, prefix: str, report: Reporter):
        self.prefix, self.report = prefix, report
        self.lock, self.chunks, self.partial = threading.Lock(), [], b""
        self.thread = threading.Thread(target=self._follow, args=(container, stream),
                                       daemon=True, name=f"studypack-logs-{stream}")
        self.thread.start()

    def _follow(self, container, stream: str) -> None:
        try:
            for chunk in container.logs(stdout=stream == "stdout", stderr=stream == "stderr",
                                        stream=True, follow=True):
                with self.lock:
                    self.chunks.append(chunk)
        except Exception:   # the container went (cancel, error): the run says why
            return

    def poll(self, final: bool = False) -> None:
        with self.lock:
            data, self.chunks = b"".join(self.chunks), []
        *lines, self.partial = (self.partial + data).split(b"\n")
        if final and self.partial:
            lines, self.partial = lines + [self.partial], b""
        for line in lines:
            self.report(Progress("output", 0, None,
                                 self.prefix + line.decode("utf-8", "replace"), unit=""))

    def finish(self) -> None:
        """After the container exited: the stream ends with it; report what is left."""
        self.thread.join(timeout=5)
        self.poll(final=True)


def _wait(container, plan: RunPlan, t0: float, report: Reporter, cancel: CancelToken,
          followers=()):
    """The exit code, as soon as the container exits (the daemon answers then); every
    POLL_S the progress is reported, new output lines are passed on and a cancel is
    noticed."""
    from requests.exceptions import ConnectionError as RequestsConnectionError, ReadTimeout

    while True:
        report(Progress("run", int(time.monotonic() - t0), None,
                        f"run {plan.index}: running… {int(time.monotonic() - t0)} s", unit="s"))
        for follower in followers:
            follower.poll()
        cancel.check()
        try:
            return container.wait(timeout=POLL_S).get("StatusCode")
        except ReadTimeout:
            continue
        except RequestsConnectionError as exc:   # a timeout on the unix socket, or worse
            if "timed out" not in str(exc).lower():
                raise


def _container_cwd(root: str, plan: RunPlan) -> str:
    return str(PurePosixPath(root) / plan.workdir)


def _api_text(exc) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().rstrip(".")
