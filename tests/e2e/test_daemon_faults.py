"""The Docker daemon stops in the middle of a replay or a build (issue 8, "Faults").

What a user checks: one clear sentence naming the daemon and a non-zero exit (4), no
traceback, no temp files left; and once the daemon runs again, the next studypack
command leaves no studypack container behind — the daemon could not be asked to remove
them while it was down.

The daemon that is killed is a second, private ``dockerd`` started by the test (its own
socket, data root, exec root and containerd), never the machine's daemon that other
tests use at the same time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import pytest

from tests.support.helpers import run_cli
from studypack.engine import BUILD_RECORD, CONTAINER_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BUSYBOX = next((b for b in ("/bin/busybox", "/usr/bin/busybox") if Path(b).is_file()), None)


class PrivateDaemon:
    """A dockerd of the test's own, in a folder of its own, that can be killed."""

    def __init__(self, root: Path):
        self.root = root
        self.host = f"unix://{root}/docker.sock"
        self.proc: subprocess.Popen | None = None
        (root / "daemon.json").write_text("{}\n")   # not the machine's /etc/docker one

    def start(self) -> None:
        log = open(self.root / "dockerd.log", "ab")
        self.proc = subprocess.Popen(
            ["dockerd", "--host", self.host, "--config-file", str(self.root / "daemon.json"),
             "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.root / "dockerd.pid"),
             "--bridge=none", "--iptables=false", "--ip6tables=false"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("the private dockerd exited: " + self.log_tail())
            with contextlib.suppress(Exception), self.client() as client:
                client.ping()
                return
            time.sleep(0.3)
        pytest.fail("the private dockerd did not answer within 60 s: " + self.log_tail())

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no chance to clean up anything."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        # Its containerd dies with it (parent-death signal), but nobody may reap it here:
        # a zombie still "runs" for the next dockerd, which would wait for its socket.
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _process_state(pid) not in (None, "Z"):
                time.sleep(0.1)
            if _process_state(pid) in (None, "Z"):
                pidfile.unlink()

    @contextlib.contextmanager
    def client(self):
        client = docker.DockerClient(base_url=self.host, timeout=30)
        try:
            yield client
        finally:
            client.close()

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
        return ""

    def shims(self) -> list[int]:
        """containerd shims of this daemon (they outlive a killed daemon)."""
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    argv = (proc / "cmdline").read_bytes().split(b"\0")
                    if b"containerd-shim" in argv[0] and any(
                            str(self.root).encode() in arg for arg in argv):
                        found.append(int(proc.name))
        return found

    def stop(self) -> None:
        """Stop the daemon gracefully (it stops its containers and containerd); if it was
        left killed with containers still running, start it once more so that it does."""
        running = self.proc is not None and self.proc.poll() is None
        if not running and self.shims():
            with contextlib.suppress(BaseException):
                self.start()
                running = True
        if running:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.shims():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text()
                  .splitlines() if line.split()[4].startswith(str(self.root) + "/")]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def studypack_containers(self) -> list:
        with self.client() as client:
            return client.containers.list(all=True, filters={"label": CONTAINER_LABEL})


def _process_state(pid: int) -> str | None:
    """"R", "S", "Z" (zombie), …, or None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


@pytest.fixture
def private_daemon():
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        pytest.skip("a private Docker daemon needs dockerd and root")
    # A short path: a unix socket's path is limited to 108 bytes.
    daemon = PrivateDaemon(Path(tempfile.mkdtemp(prefix="spfault-dockerd-", dir="/tmp")))
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


def _wait_for(what: str, condition, child: subprocess.Popen, timeout: float = 90):
    """Poll until ``condition()`` is truthy; fail early if ``child`` already ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if child.poll() is not None:
            pytest.fail(f"studypack ended (exit {child.returncode}) before {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, *args], env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT)


def _assert_one_clear_sentence(output: str, doing: str) -> None:
    sentences = [line for line in output.splitlines() if line.startswith("studypack:")]
    assert len(sentences) == 1, output
    assert "Docker daemon" in sentences[0] and "stopped while" in sentences[0], output
    assert doing in sentences[0], output
    assert "start it again" in output.lower(), output
    assert "Traceback" not in output and "internal error" not in output, output


SLOW_STUDY = '''\
import argparse, pathlib, time

parser = argparse.ArgumentParser()
parser.add_argument("--seconds", type=float, default=0)
time.sleep(parser.parse_args().seconds)
pathlib.Path("results").mkdir(exist_ok=True)
pathlib.Path("results/done.txt").write_text("done\\n")
'''


def _slow_study_bundle(folder: Path, env: dict) -> Path:
    """A tiny traced study whose run takes as long as its --seconds argument (0 when
    recorded, so making the bundle is quick)."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    study = folder / "slow"
    study.mkdir()
    (study / "slow.py").write_text(SLOW_STUDY)
    (study / "studypack.toml").write_text(f'''\
[study]
name = "slow"
title = "A run that takes as long as asked"
description = "Sleeps, then writes one output."
license = "CC0-1.0"

[[study.authors]]
name = "Test Author"

[run]
command = ["python", "slow.py", "--seconds", "0"]
workdir = "."

[outputs]
paths = ["results/"]

[environment]
kind = "venv"
python = "{venv / 'bin' / 'python'}"
''')
    bundle = folder / "slow.studypack"
    made = run_cli("create", study, "-o", bundle, "--no-image", "-q", env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    return bundle


def test_the_daemon_killed_during_a_replay_gives_one_sentence_and_leaves_no_container(
        private_daemon, tmp_path):
    temp = tmp_path / "tmp"          # studypack's temp files, and only studypack's
    temp.mkdir()
    env = {"DOCKER_HOST": private_daemon.host, "TMPDIR": str(temp)}
    bundle = _slow_study_bundle(tmp_path, env)
    leftovers_of_create = set(temp.iterdir())

    log = tmp_path / "replay.log"
    replay = _start(["-m", "studypack", "replay", str(bundle), "--mode", "trace",
                     "--arg=--seconds", "--arg=120"], env, log)
    try:
        running = _wait_for("the replay's container runs", lambda: [
            c for c in private_daemon.studypack_containers() if c.status == "running"], replay)
        private_daemon.kill()
        assert replay.wait(timeout=60) == 4, log.read_text()
    finally:
        if replay.poll() is None:
            replay.kill()
            replay.wait()
    _assert_one_clear_sentence(log.read_text(), "was running in its container")
    assert set(temp.iterdir()) == leftovers_of_create, "temp files left behind"

    # Dead daemon, nobody could remove the container: it is still there after a restart.
    private_daemon.start()
    orphan = running[0].id
    assert orphan in [c.id for c in private_daemon.studypack_containers()]

    # The next studypack command cleans up — and works.
    again = run_cli("replay", bundle, "--mode", "trace", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert private_daemon.studypack_containers() == []
    assert set(temp.iterdir()) == leftovers_of_create


BUILD_CHILD = '''\
import sys
from pathlib import Path

from studypack.engine import Engine
from studypack.errors import StudypackError

try:
    Engine.connect().build(Path(sys.argv[1]), tag="studypack-fault-test:slow-build")
except StudypackError as err:
    print(f"studypack: {err.message}\\n  {err.hint or ''}", file=sys.stderr)
    sys.exit(err.exit_code)
'''


@pytest.mark.skipif(BUSYBOX is None, reason="the build's image needs busybox-static")
def test_the_daemon_killed_during_a_build_gives_one_sentence_and_leaves_no_container(
        private_daemon, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"DOCKER_HOST": private_daemon.host, "TMPDIR": str(temp)}
    context = tmp_path / "context"
    context.mkdir()
    shutil.copy(BUSYBOX, context / "busybox")
    (context / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "120"]\n')
    (tmp_path / "build.py").write_text(BUILD_CHILD)

    log = tmp_path / "build.log"
    build = _start([str(tmp_path / "build.py"), str(context)], env, log)
    try:
        def build_step_running():
            with private_daemon.client() as client:
                return client.containers.list(filters={"status": "running"})
        step = _wait_for("the build's RUN step runs", build_step_running, build)
        private_daemon.kill()
        assert build.wait(timeout=60) == 4, log.read_text()
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
    _assert_one_clear_sentence(log.read_text(), "building the image")
    # The builder's containers carry no label: studypack noted this one's id, and that
    # note is the only file it left in the temp folder.
    records = list(temp.iterdir())
    assert [r.name.startswith(BUILD_RECORD) for r in records] == [True], records
    assert step[0].id[:12] in records[0].read_text()

    private_daemon.start()
    with private_daemon.client() as client:
        assert step[0].id in [c.id for c in client.containers.list(all=True)]

    connect = subprocess.run(
        [sys.executable, "-c", "from studypack.engine import Engine; Engine.connect().close()"],
        env={**os.environ, **env}, capture_output=True, text=True)
    assert connect.returncode == 0, connect.stderr
    with private_daemon.client() as client:
        assert client.containers.list(all=True) == []
    assert list(temp.iterdir()) == []
