"""Docker fixtures shared by the test modules (imported from tests/conftest.py).

No image can be pulled from the internet here, so the tests make their own base image:
``debootstrap --variant=minbase bookworm`` with python3 + python3-venv from the Debian
package archive, ``docker import``-ed, then pushed to the local registry on
127.0.0.1:5000 so that it has a real registry digest to pin. The image is cached by its
tag (and in the registry) for the rest of the session and for later sessions.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = f"{REGISTRY}/studypack-test/debian-python:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
_LOCK = Path(tempfile.gettempdir()) / "studypack-test-base-image.lock"
# Trimmed from the rootfs: caches and docs make the image twice as large for nothing.
_TRIM = ["var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
         "usr/share/locale", "usr/share/info"]


def _need(condition: bool, why: str) -> None:
    """Skip on a developer machine without Docker; fail in CI, where setup.sh provides it."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def docker_engine():
    from studypack.engine import Engine

    engine = Engine.try_connect()
    _need(engine is not None, "no Docker daemon answers (run packaging/setup.sh)")
    yield engine
    engine.close()


def _registry_up() -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5000), timeout=2):
        return True
    return False


@pytest.fixture(scope="session")
def registry():
    _need(_registry_up(), "the local registry on 127.0.0.1:5000 is not running "
                          "(run packaging/setup.sh)")
    return REGISTRY


@pytest.fixture(scope="session")
def base_image(docker_engine, registry) -> str:
    """``127.0.0.1:5000/studypack-test/debian-python:bookworm``: present locally, with a
    registry digest (``RepoDigests``) — a base image the tests can pin and build FROM."""
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # another test session may be making it too
        ensure_base_image(docker_engine.client)
    return BASE_IMAGE


def ensure_base_image(client) -> None:
    import docker.errors

    repository, tag = BASE_IMAGE.rsplit(":", 1)
    with contextlib.suppress(docker.errors.ImageNotFound):
        image = client.images.get(BASE_IMAGE)
        if any(d.startswith(repository + "@") for d in image.attrs.get("RepoDigests") or []):
            try:
                client.images.get_registry_data(BASE_IMAGE)
            except docker.errors.DockerException:   # the registry was emptied: push again
                _push(client, repository, tag)
            return
    with contextlib.suppress(docker.errors.DockerException):
        client.images.pull(BASE_IMAGE)   # an earlier session pushed it to the registry
        return
    _make_base_image(client)


def _make_base_image(client) -> None:
    _need(os.geteuid() == 0 and shutil.which("debootstrap") is not None,
          "making the test base image needs root and debootstrap")
    with tempfile.TemporaryDirectory(prefix="studypack-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv",
             "bookworm", str(rootfs), DEBIAN_MIRROR],
            capture_output=True, text=True)
        if run.returncode != 0:
            pytest.fail("debootstrap failed: " + run.stdout[-2000:] + run.stderr[-2000:])
        for rel in _TRIM:
            shutil.rmtree(rootfs / rel, ignore_errors=True)
        tar = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tar), "."],
                       check=True)
        repository, tag = BASE_IMAGE.rsplit(":", 1)
        client.api.import_image_from_file(
            str(tar), repository=repository, tag=tag,
            changes=["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                     'CMD ["python3"]'])
    _push(client, repository, tag)


def _push(client, repository: str, tag: str) -> None:
    for line in client.images.push(repository, tag=tag, stream=True, decode=True):
        if "error" in line:
            pytest.fail(f"pushing the base image to {REGISTRY} failed: {line['error']}")


# --------------------------------------------------------------- study environments

def make_venv(path: Path, *requirements: str) -> Path:
    """A real virtualenv (from the Python running the tests) with ``requirements``."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    if requirements:
        run = subprocess.run([str(python), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", *requirements],
                             capture_output=True, text=True)
        if run.returncode != 0:
            pytest.fail(f"pip install {' '.join(requirements)} failed:\n{run.stderr[-3000:]}")
    return python
