"""Docker fixtures shared by the test modules (imported from tests/conftest.py).

No image can be pulled from the internet here, so the tests make their own base image
with the code of ``studypack base-image`` (:mod:`studypack.environment.baseimage`):
``debootstrap --variant=minbase bookworm`` with python3 + python3-venv from the Debian
package archive, ``docker import``-ed, then pushed to the local registry on
127.0.0.1:5000 so that it has a real registry digest to pin. The image is cached by its
tag (and in the registry) for the rest of the session and for later sessions.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = f"{REGISTRY}/studypack-test/debian-python:bookworm"
_LOCK = Path(tempfile.gettempdir()) / "studypack-test-base-image.lock"


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
        ensure_base_image(docker_engine)
    return BASE_IMAGE


def ensure_base_image(engine) -> None:
    """The core's own base-image maker (``studypack base-image``), under the tests' tag."""
    from studypack.environment.baseimage import make_base_image
    from studypack.errors import StudypackError

    try:
        make_base_image("bookworm", engine=engine, ref=BASE_IMAGE)
    except StudypackError as exc:
        _need(False, f"the test base image could not be made: {exc.full_text()}")


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
