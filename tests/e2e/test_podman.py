"""The same engine code against Podman's Docker-compatible API socket (``DOCKER_HOST``).

The test starts its own ``podman system service`` with a private storage root, and a
registries.conf of its own (``CONTAINERS_REGISTRIES_CONF``) that lets it pull from the
local registry over plain http — nothing on the machine's Podman setup is changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.support.helpers import copy_example
from studypack.engine import Engine
from studypack.environment import capture_environment
from studypack.spec import load_spec

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def podman_socket(tmp_path_factory, registry):
    if not shutil.which("podman"):
        if os.environ.get("CI"):
            pytest.fail("podman is not installed (packaging/setup.sh installs it)")
        pytest.skip("podman is not installed")
    if os.geteuid() != 0:
        pytest.skip("the test runs Podman's service as root")
    home = tmp_path_factory.mktemp("podman")
    conf = home / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "127.0.0.1:5000"\ninsecure = true\n')
    # Rootful Podman raises a container's open-files and process limits to 1048576
    # unless told otherwise; where root lacks CAP_SYS_RESOURCE (as in this sandbox)
    # runc may not, so the service gets modest limits that lowering alone can reach.
    limits = '"nofile=4096:4096", "nproc=4096:4096"'
    containers_conf = home / "containers.conf"
    containers_conf.write_text(f"[containers]\ndefault_ulimits = [{limits}]\n")
    sock = home / "podman.sock"
    log = open(home / "service.log", "w")
    service = subprocess.Popen(
        ["podman", "--root", str(home / "storage"), "--runroot", str(home / "run"),
         "system", "service", "--time=0", f"unix://{sock}"],
        env={**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf),
             "CONTAINERS_CONF": str(containers_conf)},
        stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if sock.exists() and Engine.try_connect(f"unix://{sock}"):
                break
            time.sleep(0.1)
        else:
            pytest.fail("podman system service did not answer:\n"
                        + (home / "service.log").read_text()[-2000:])
        yield f"unix://{sock}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        log.close()
        # Podman's overlay storage leaves mounts behind; unmount before removing.
        subprocess.run(["podman", "--root", str(home / "storage"), "--runroot",
                        str(home / "run"), "system", "reset", "--force"],
                       capture_output=True, timeout=120)


def test_the_same_engine_code_builds_and_runs_the_study_with_podman(
        podman_socket, base_image, study_python, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", podman_socket)
    engine = Engine.connect()
    assert engine.name.startswith("Podman")

    # Podman has no registry-data endpoint: the image is pulled, and its digest read.
    pinned = engine.resolve(base_image)
    docker_digest = Engine.connect("unix:///var/run/docker.sock").resolve(
        base_image, registry=False).digest
    assert pinned.digest == docker_digest

    study = copy_example(tmp_path, study_python)
    host = subprocess.run([str(study_python), "analysis.py", "--steps", "100"], cwd=study,
                          capture_output=True, text=True)
    assert host.returncode == 0, host.stderr
    capture = capture_environment(str(study_python), load_spec(study), tmp_path / "stage",
                                  base_image=base_image, build_image=True, engine=engine)
    image = capture.metadata["image"]
    assert image["built"] and image["engine"].startswith("Podman")

    out = tmp_path / "out"
    out.mkdir()
    ran = engine.run(image["tag"], ["python", "analysis.py", "--steps", "100", "--out", "/out"],
                     mounts={out: "/out"})
    assert ran.exit_code == 0, ran.stderr
    assert (out / "summary.json").read_bytes() == (study / "results" / "summary.json").read_bytes()
    assert (out / "profile.csv").read_bytes() == (study / "results" / "profile.csv").read_bytes()
    net = engine.run(image["tag"], ["ls", "/sys/class/net"])
    assert net.stdout.split() == ["lo"]

    assert engine.leftover_containers() == []
    engine.remove_image(image["tag"])
    assert not engine.image_exists(image["tag"])
    engine.close()
