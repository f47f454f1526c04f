"""The container engine, for real: a Docker daemon, a base image the tests make
themselves, pinned by its digest in a local registry, an offline build from the vendored
wheels, the study run inside the image without network, save/load, and every error a
user can meet (no daemon, no permission, no base image, a failing build, a bad tar)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import docker.errors
import pytest

from tests.support.helpers import REPO, copy_example
from tests.support.docker_fixtures import REGISTRY
from studypack.engine import (CONTAINER_LABEL, BaseImageError, DaemonUnavailableError, Engine)
from studypack.environment import bundle_build_context, capture_environment
from studypack.errors import BuildError, Cancelled, EngineError, ImageLoadError
from studypack.progress import CancelToken
from studypack.spec import load_spec

pytestmark = pytest.mark.docker


def _build_context(tmp_path: Path, dockerfile: str) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    return context


@pytest.fixture(scope="module")
def pinned_base(docker_engine, base_image):
    return docker_engine.resolve(base_image, registry=False)


# ------------------------------------------------------------------ pinning

def test_the_base_image_is_pinned_to_the_digest_the_registry_serves(docker_engine, base_image,
                                                                    pinned_base):
    served = docker_engine.client.images.get_registry_data(base_image).id
    assert pinned_base.source == "local"
    assert pinned_base.digest == served
    assert pinned_base.pinned == f"{base_image.rsplit(':', 1)[0]}@{served}"


def test_an_image_only_in_the_registry_is_looked_up_and_pulled_by_digest(docker_engine,
                                                                          base_image):
    client = docker_engine.client
    ref = f"{REGISTRY}/studypack-test/pull-me:1"
    client.images.get(base_image).tag(ref)
    for line in client.images.push(ref, stream=True, decode=True):
        assert "error" not in line, line
    served = client.images.get_registry_data(ref).id
    client.images.remove(ref)
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(f"{REGISTRY}/studypack-test/pull-me@{served}")
    assert not docker_engine.image_exists(f"{REGISTRY}/studypack-test/pull-me@{served}")

    pinned = docker_engine.resolve(ref)
    assert (pinned.source, pinned.digest) == ("registry", served)
    assert docker_engine.image_exists(pinned.pinned)


def test_a_base_image_nowhere_to_be_found_is_refused(docker_engine, registry):
    with pytest.raises(BaseImageError) as err:
        docker_engine.resolve(f"{REGISTRY}/studypack-test/no-such-image:1")
    assert "is not on this machine and cannot be pulled" in err.value.message
    assert "--base-image" in err.value.hint


def test_an_image_built_here_and_never_pushed_cannot_be_pinned(docker_engine, pinned_base,
                                                               tmp_path):
    context = _build_context(tmp_path, f"FROM {pinned_base.pinned}\nLABEL only=here\n")
    ref = f"{REGISTRY}/studypack-test/local-only:1"
    docker_engine.build(context, tag=ref)
    try:
        with pytest.raises(BaseImageError, match="exists only on this machine"):
            docker_engine.resolve(ref)
    finally:
        docker_engine.remove_image(ref)


# ------------------------------------------------------------------- builds

def test_builds_have_no_network(docker_engine, pinned_base, tmp_path):
    context = _build_context(tmp_path, f"FROM {pinned_base.pinned}\n"
                                       "RUN ls /sys/class/net > /interfaces.txt\n")
    tag = "studypack-test/no-network:1"
    lines = []
    docker_engine.build(context, tag=tag, report=lambda p: lines.append(p.message))
    try:
        assert any("Step 2/2" in line for line in lines)   # progress was streamed
        result = docker_engine.run(tag, ["cat", "/interfaces.txt"])
        assert result.stdout.split() == ["lo"]
    finally:
        docker_engine.remove_image(tag)


def test_a_failing_build_names_its_last_log_lines(docker_engine, pinned_base, tmp_path):
    context = _build_context(tmp_path, f"FROM {pinned_base.pinned}\n"
                                       "RUN echo fetching-the-data && exit 3\n")
    with pytest.raises(BuildError) as err:
        docker_engine.build(context, tag="studypack-test/fails:1")
    assert "returned a non-zero code: 3" in err.value.message
    assert "fetching-the-data" in err.value.hint


def test_a_damaged_image_archive_is_refused_on_load(docker_engine, tmp_path):
    bad = tmp_path / "image.tar"
    bad.write_bytes(b"this is not a docker save archive" * 100)
    with pytest.raises(ImageLoadError):
        docker_engine.load(bad)


def test_a_cancelled_run_leaves_no_container(docker_engine, pinned_base):
    cancel = CancelToken()
    started = threading.Event()

    def report(progress):
        started.set()

    threading.Timer(1.5, cancel.cancel).start()
    with pytest.raises(Cancelled):
        docker_engine.run(pinned_base.pinned, ["sh", "-c", "echo running; sleep 60"],
                          report=report, cancel=cancel)
    mine = docker_engine.client.containers.list(
        all=True, filters={"label": f"{CONTAINER_LABEL}={os.getpid()}"})
    assert mine == []


# --------------------------------------------------------------- end to end

@pytest.mark.slow
def test_the_study_runs_in_the_offline_rebuilt_image_with_the_same_outputs(
        docker_engine, base_image, pinned_base, study_python, tmp_path):
    study = copy_example(tmp_path, study_python)
    spec = load_spec(study)
    # The run on the host, as `studypack create` traces it: outputs land in results/.
    host = subprocess.run([str(study_python), "analysis.py", "--steps", "100"], cwd=study,
                          capture_output=True, text=True)
    assert host.returncode == 0, host.stderr

    capture = capture_environment(
        str(study_python), spec, tmp_path / "stage", base_image=base_image, build_image=True,
        save_image=True, packages=[{"name": "libc6", "version": "2.36-9+deb12u13"}])
    meta = capture.metadata
    assert meta["kind"] == "venv"
    assert meta["base_image"]["digest"] == pinned_base.digest
    dockerfile = (capture.files_dir / "Dockerfile").read_text()
    assert f"FROM {pinned_base.pinned}\n" in dockerfile
    assert "#   libc6=2.36-9+deb12u13" in dockerfile
    image = meta["image"]
    assert image["built"] and image["saved"] and image["network"] == "none"
    labels = docker_engine.client.images.get(image["tag"]).labels
    assert labels["org.opencontainers.image.title"] == spec.study.title
    assert labels["io.studypack.study"] == "heat-diffusion"

    out = tmp_path / "container"
    out.mkdir()
    out.chmod(0o777)
    ran = docker_engine.run(image["tag"], ["python", "analysis.py", "--steps", "100",
                                           "--out", "/out"], mounts={out: "/out"})
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout == host.stdout
    for name in ("profile.csv", "summary.json"):
        assert (out / name).read_bytes() == (study / "results" / name).read_bytes()

    # An unpacked bundle's data/ (env/ + study/) rebuilds the same image, offline.
    data = tmp_path / "bundle" / "data"
    shutil.copytree(capture.files_dir, data / "env")
    shutil.copytree(study, data / "study", ignore=shutil.ignore_patterns("results"))
    rebuilt = docker_engine.build(bundle_build_context(data), tag="studypack-test/rebuilt:1",
                                  dockerfile="env/Dockerfile")
    assert rebuilt.id == image["id"]
    docker_engine.remove_image("studypack-test/rebuilt:1")

    # The saved image comes back with the same id, and runs without any build.
    docker_engine.remove_image(image["tag"])
    assert image["id"] in docker_engine.load(capture.image_tar)
    numpy_here = subprocess.run([str(study_python), "-c", "import numpy; print(numpy.__version__)"],
                                capture_output=True, text=True).stdout
    again = docker_engine.run(image["tag"], ["python", "-c",
                                             "import numpy; print(numpy.__version__)"])
    assert again.stdout == numpy_here
    docker_engine.remove_image(image["tag"])


# ------------------------------------------------------------------ errors

def test_no_daemon_says_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(DaemonUnavailableError) as err:
        Engine.connect()
    assert f"{tmp_path}/docker.sock" in err.value.message
    assert "sudo systemctl start docker" in err.value.hint and "dockerd" in err.value.hint


def test_asking_for_an_image_without_a_daemon_fails_before_any_download(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(DaemonUnavailableError):
        capture_environment(sys.executable, None, tmp_path / "stage", build_image=True)
    assert not any((tmp_path / "stage" / "files").iterdir())


def test_permission_denied_on_the_socket_says_to_join_the_docker_group(docker_engine):
    """Root may open any socket, so a real unprivileged user (nobody) tries it."""
    socket_path = docker_engine.where.removeprefix("unix://")
    if os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists(socket_path):
        pytest.skip("needs root (to become nobody), setpriv and a unix socket")
    mode = os.stat(socket_path).st_mode
    if mode & stat.S_IWOTH:
        pytest.skip(f"{socket_path} is writable by everyone")
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None
    if python is None:
        pytest.skip("a Python that user nobody may execute is needed")
    site = next(p for p in sys.path if p.endswith("site-packages"))
    script = ("from studypack.engine import Engine\n"
              "try:\n    Engine.connect()\n"
              "except Exception as exc:\n    print(type(exc).__name__)\n"
              "    print(exc.full_text())\n")
    run = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", script],
        env={"PYTHONPATH": f"{REPO}:{site}", "DOCKER_HOST": f"unix://{socket_path}",
             "HOME": "/tmp", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, cwd="/")
    assert run.stdout.splitlines()[0] == "EnginePermissionError", run.stdout + run.stderr
    assert "Permission denied" in run.stdout
    assert "docker group" in run.stdout


def test_no_image_still_pins_a_local_base_and_never_asks_a_registry(docker_engine, base_image,
                                                                    pinned_base, study_python,
                                                                    tmp_path):
    capture = capture_environment(str(study_python), None, tmp_path / "with-base",
                                  base_image=base_image, build_image=False)
    assert capture.metadata["image"] == {"built": False}
    assert f"FROM {pinned_base.pinned}\n" in (capture.files_dir / "Dockerfile").read_text()
    assert any("--no-image was given" in m for m in capture.messages)

    missing = f"{REGISTRY}/studypack-test/not-here:1"
    capture = capture_environment(str(study_python), None, tmp_path / "without-base",
                                  base_image=missing, build_image=False)
    assert not (capture.files_dir / "Dockerfile").exists()
    assert capture.metadata["dockerfile"] is None
    said = next(m for m in capture.messages if f"{missing} is not on this machine" in m)
    assert "could not be pinned by digest" in said   # not "cannot be pulled": no lookup

    assert (capture.files_dir / "requirements.lock").is_file()

    # By default (build when a daemon answers) a base that cannot be pulled means no
    # image, said in one sentence; asking for the image explicitly makes it an error.
    capture = capture_environment(str(study_python), None, tmp_path / "auto",
                                  base_image=missing, build_image=None)
    assert capture.metadata["image"] == {"built": False}
    assert any("cannot be pulled" in m for m in capture.messages)
    with pytest.raises(BaseImageError, match="cannot be pulled"):
        capture_environment(str(study_python), None, tmp_path / "explicit",
                            base_image=missing, build_image=True)


def test_running_an_image_that_is_not_here_is_one_sentence(docker_engine):
    with pytest.raises(EngineError, match="studypack-test/gone:1 is not on this machine"):
        docker_engine.run("studypack-test/gone:1", ["true"])
