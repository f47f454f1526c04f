"""A Debian base image made on this machine, for machines that cannot pull one.

``debootstrap --variant=minbase SUITE`` with the distribution's ``python3`` and
``python3-venv`` from a Debian mirror, trimmed of docs and caches, ``docker import``-ed,
then pushed to a local registry (127.0.0.1:5000 by default) so that it has a registry
digest a Dockerfile can pin: ``FROM 127.0.0.1:5000/studypack/debian-python@sha256:…``.

The same function makes the base image of the tests (tests/support/docker_fixtures.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import Cancelled, EngineError, UsageError
from ..progress import Progress, reporter, token

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEFAULT_REGISTRY = "127.0.0.1:5000"
REPOSITORY = "studypack/debian-python"
# The python3 each Debian release ships: the base image has exactly this Python.
SUITE_PYTHON = {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13"}
PACKAGES = ("python3", "python3-venv")
# Trimmed from the root file system: caches and docs make the image twice as large.
TRIM = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
        "usr/share/locale", "usr/share/info")
IMAGE_CHANGES = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 'CMD ["python3"]']


@dataclass(frozen=True)
class BaseImage:
    ref: str              # "127.0.0.1:5000/studypack/debian-python:bookworm"
    pinned: str           # "127.0.0.1:5000/studypack/debian-python@sha256:…"
    suite: str
    python_version: str   # what python3 in the image says, e.g. "3.11.2"
    made: bool            # True: debootstrapped now; False: it was already here
    size: int             # bytes, as the engine counts them

    def summary(self) -> str:
        how = "made from the Debian mirror" if self.made else "already on this machine"
        return (f"base image {self.pinned} (Debian {self.suite}, Python "
                f"{self.python_version}, {self.size / 1e6:.0f} MB, {how})")


def base_image_ref(suite: str, registry: str = DEFAULT_REGISTRY,
                   repository: str = REPOSITORY) -> str:
    return f"{registry}/{repository}:{suite}"


def suite_for_python(python_minor: str) -> str | None:
    """The Debian release whose python3 is ``python_minor`` (e.g. "3.11" → bookworm)."""
    return next((s for s, v in SUITE_PYTHON.items() if v == python_minor), None)


def host_suite() -> str | None:
    """This machine's Debian release (bookworm, …), when it runs Debian."""
    from .debian import host_release

    release = host_release()
    suite = release.get("VERSION_CODENAME", "")
    return suite if release.get("ID") == "debian" and suite in SUITE_PYTHON else None


def registry_answers(registry: str) -> bool:
    host, _, port = registry.rpartition(":")
    with contextlib.suppress(OSError, ValueError), \
            socket.create_connection((host or registry, int(port or 443)), timeout=2):
        return True
    return False


def find_base_image(engine, suite: str, *, ref: str | None = None,
                    pull: bool = True) -> BaseImage | None:
    """The base image of ``suite`` when it is here (or, with ``pull``, in the local
    registry) with a digest, else None. Never downloads from the internet."""
    import docker.errors

    ref = ref or base_image_ref(suite)
    repository = ref.rsplit(":", 1)[0]
    client = engine.client
    online = pull and registry_answers(ref.split("/", 1)[0])
    image = None
    with contextlib.suppress(docker.errors.ImageNotFound):
        image = client.images.get(ref)
    if image is not None and _digest(image, repository) and online:
        try:
            client.images.get_registry_data(ref)
        except docker.errors.DockerException:   # the registry was emptied: push again
            _push(client, ref)
            image = client.images.get(ref)
    if (image is None or not _digest(image, repository)) and online:
        with contextlib.suppress(docker.errors.DockerException):
            image = client.images.pull(ref)   # an earlier session pushed it
    if image is None:
        return None
    digest = _digest(image, repository)
    if not digest:
        return None
    return BaseImage(ref=ref, pinned=f"{repository}@{digest}", suite=suite,
                     python_version=image.labels.get("io.studypack.python", "")
                     or SUITE_PYTHON.get(suite, ""),
                     made=False, size=int(image.attrs.get("Size") or 0))


def make_base_image(suite: str = "bookworm", *, engine, ref: str | None = None,
                    registry: str = DEFAULT_REGISTRY, mirror: str = DEBIAN_MIRROR,
                    packages: tuple[str, ...] = PACKAGES, report=None,
                    cancel=None) -> BaseImage:
    """Return the Debian ``suite`` base image with a registry digest, making it with
    debootstrap when it is not here yet (needs root, debootstrap and the mirror)."""
    report, cancel = reporter(report), token(cancel)
    ref = ref or base_image_ref(suite, registry)
    registry = ref.split("/", 1)[0]
    if suite not in SUITE_PYTHON:
        raise UsageError(f"Unknown Debian release {suite!r}.",
                         "Choose one of: " + ", ".join(SUITE_PYTHON) + ".")
    if not registry_answers(registry):
        raise EngineError(
            f"No registry answers at {registry}: the base image needs one to get a digest "
            "that the Dockerfile can pin.",
            "Start a local registry (packaging/setup.sh starts `docker-registry` on "
            "127.0.0.1:5000), or name another one "
            "(`studypack base-image --registry HOST:PORT`).")
    found = find_base_image(engine, suite, ref=ref)
    if found is not None:
        report(Progress("base-image", 1, 1, "the base image is already here"))
        return found
    if os.geteuid() != 0:
        raise UsageError("Making a Debian base image needs root (debootstrap).",
                         f"Run `sudo studypack base-image --debian {suite}`.")
    if shutil.which("debootstrap") is None:
        raise UsageError("debootstrap is not installed.",
                         "Install it (`sudo apt-get install debootstrap`).")
    with tempfile.TemporaryDirectory(prefix="studypack-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _debootstrap(suite, rootfs, mirror, packages, report, cancel)
        for rel in TRIM:
            shutil.rmtree(rootfs / rel, ignore_errors=True)
        python = _python_version(rootfs)
        cancel.check()
        report(Progress("base-image", 0, None, f"Importing the root file system as {ref}"))
        tar = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tar), "."],
                       check=True)
        shutil.rmtree(rootfs, ignore_errors=True)
        repository, tag = ref.rsplit(":", 1)
        engine.client.api.import_image_from_file(
            str(tar), repository=repository, tag=tag,
            changes=IMAGE_CHANGES + [f"LABEL io.studypack.python={python} "
                                     f"io.studypack.debian-suite={suite}"])
    report(Progress("base-image", 0, None, f"Pushing {ref} to {registry} for a digest"))
    _push(engine.client, ref)
    made = find_base_image(engine, suite, ref=ref)
    if made is None:
        raise EngineError(f"The base image {ref} was made but has no registry digest.",
                          f"Check that the registry at {registry} accepts pushes.")
    result = BaseImage(ref=made.ref, pinned=made.pinned, suite=suite,
                       python_version=python, made=True, size=made.size)
    report(Progress("base-image", 1, 1, "the base image is made"))
    return result


def _debootstrap(suite, rootfs, mirror, packages, report, cancel) -> None:
    command = ["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
               suite, str(rootfs), mirror]
    report(Progress("base-image", 0, None, f"debootstrap {suite} from {mirror}"))
    tail: list[str] = []
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True)
    try:
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-30:]
            if cancel.cancelled:
                os.killpg(proc.pid, signal.SIGTERM)
                break
            if line.startswith("I: "):
                report(Progress("base-image", 0, None, line[3:]))
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if cancel.cancelled:
        raise Cancelled()
    if proc.returncode != 0:
        raise EngineError(f"debootstrap {suite} from {mirror} failed: "
                          + " ⏎ ".join(tail[-5:]),
                          "Check that the Debian mirror answers, or name another one "
                          "(`studypack base-image --mirror URL`).")


def _python_version(rootfs: Path) -> str:
    """The version of the image's python3, read from its dpkg status (no chroot)."""
    status = rootfs / "var/lib/dpkg/status"
    package = version = ""
    for line in status.read_text(errors="replace").splitlines() + [""]:
        if line.startswith("Package: "):
            package = line[9:].strip()
        elif line.startswith("Version: ") and package == "python3":
            version = line[9:].strip()
            break
    return version.split("-")[0]


def _digest(image, repository: str) -> str | None:
    return next((d.split("@", 1)[1] for d in image.attrs.get("RepoDigests") or []
                 if d.split("@")[0] == repository), None)


def _push(client, ref: str) -> None:
    repository, tag = ref.rsplit(":", 1)
    for line in client.images.push(repository, tag=tag, stream=True, decode=True):
        if "error" in line:
            raise EngineError(f"Pushing {ref} to its registry failed: {line['error']}")
