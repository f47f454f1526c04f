"""Replays that explain, for real: modes that cannot run are refused with one sentence
and JSON; the sandbox mode as a user with no root and no Docker; a run that needs the
network; an output that depends on the interpreter (the environment changed); a
matplotlib study (PNG + PDF) in every mode."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from studypack.replay import replay_bundle
from studypack.replay.sandbox import bwrap_problem
from tests.e2e.conftest import create
from tests.support.docker_fixtures import make_venv
from tests.support.helpers import REPO, run_cli

SANDBOX_USER = "studypack-sandbox-test"


def _need_in_ci(condition: bool, why: str) -> None:
    """Skip on a developer machine; in CI (setup.sh provides everything) fail."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def write_study(folder: Path, script: str, python: Path, outputs: str = "results/") -> Path:
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(script)
    (folder / "studypack.toml").write_text(
        f'[study]\nname = "{folder.name}"\ntitle = "{folder.name}"\n'
        '[run]\ncommand = ["python", "main.py"]\n'
        f'[outputs]\npaths = ["{outputs}"]\n[environment]\npython = "{python}"\n')
    return folder


# -------------------------------------------------------- modes that cannot run

def test_a_mode_that_cannot_run_is_one_sentence_exit_2_and_json(random_bundle):
    run = run_cli("replay", random_bundle, "--mode", "image", "--json")
    assert run.returncode == 2, run.stderr
    doc = json.loads(run.stdout)
    assert doc["reproduced"] is False and doc["outputs"] == []
    assert doc["reason"] == ("The image mode cannot replay this bundle here: the bundle has "
                             "no saved image.")
    assert run.stderr.startswith("studypack: The image mode cannot replay")
    assert "Traceback" not in run.stderr

    unknown = run_cli("replay", random_bundle, "--mode", "chroot", "--json")
    assert unknown.returncode == 2
    assert json.loads(unknown.stdout)["reason"] == "Unknown replay mode 'chroot'."

    missing = run_cli("replay", random_bundle.parent / "nope.studypack", "--json")
    assert missing.returncode == 2 and json.loads(missing.stdout)["reproduced"] is False


def test_help_lists_the_modes_this_machine_can_run(tmp_path):
    run = run_cli("replay", "--help", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    offered, _, missing = run.stdout.partition("not available on this machine:")
    assert "directory" in offered and "sandbox" in offered
    for mode in ("image", "rebuild", "trace"):
        assert f"  {mode} " not in offered and mode in missing
    assert "No Docker daemon answers" in missing


# ------------------------------------------------------------------ sandbox

def _sandbox_user() -> pwd.struct_passwd:
    _need_in_ci(os.geteuid() == 0 and shutil.which("runuser") is not None,
                "testing the sandbox as another user needs root (to make the user) and runuser")
    _need_in_ci(shutil.which("bwrap") is not None, "bubblewrap is not installed")
    try:
        return pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        SANDBOX_USER], check=True, capture_output=True)
        return pwd.getpwnam(SANDBOX_USER)


def _as_user(user: pwd.struct_passwd, home: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m studypack ARGS` as ``user``, with no root and none of root's groups.

    The user runs this Python when it can reach it, else the system's Python of the same
    version with this environment's packages (root's home may be closed to others)."""
    python, env = sys.executable, {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    reach = subprocess.run(["runuser", "-u", user.pw_name, "--", python, "-c", "pass"],
                           capture_output=True)
    if reach.returncode != 0:
        python = f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"],
                                             sysconfig.get_paths()["platlib"]])
    return subprocess.run(["runuser", "-u", user.pw_name, "--", "env", "-i",
                           *[f"{k}={v}" for k, v in env.items()], python, "-m", "studypack",
                           *args], capture_output=True, text=True, timeout=600)


def test_sandbox_mode_as_a_user_with_no_root_and_no_docker(random_bundle):
    user = _sandbox_user()
    home = Path(tempfile.mkdtemp(prefix="studypack-sandbox-user-"))
    try:
        os.chown(home, user.pw_uid, user.pw_gid)
        bundle = home / random_bundle.name
        shutil.copy(random_bundle, bundle)
        os.chown(bundle, user.pw_uid, user.pw_gid)
        socket = Path("/var/run/docker.sock")
        if socket.exists():
            probe = subprocess.run(["runuser", "-u", user.pw_name, "--", "test", "-w",
                                    str(socket)])
            assert probe.returncode != 0, "the test user must not reach the Docker socket"
        run = _as_user(user, home, "replay", str(bundle), "--json")
        assert run.returncode == 3, run.stderr
        doc = json.loads(run.stdout)
        assert doc["mode"] == "sandbox", doc["mode_reason"]
        assert "not image:" in doc["mode_reason"]          # auto says why not the others
        assert doc["network"] is False
        assert {o["path"]: (o["status"], o["cause"]) for o in doc["outputs"]} == {
            "results/draw.csv": ("differs", "nondeterministic"),
            "results/draw.json": ("differs", "nondeterministic")}
        assert doc["environment_diff"] is not None
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_sandbox_root_is_read_only_and_has_no_network(tmp_path, plain_python):
    _need_in_ci(shutil.which("bwrap") is not None, "bubblewrap is not installed")
    script = ("import os, socket\nos.makedirs('results', exist_ok=True)\n"
              "def writable(p):\n    try:\n        open(p, 'w').close(); return 'yes'\n"
              "    except OSError as e:\n        return e.strerror\n"
              "names = sorted(n for _, n in socket.if_nameindex())\n"
              "open('results/facts.txt', 'w').write(f\"{writable('/etc/new')} {writable(os.environ.get('TMPDIR', '/tmp') + '/x')}"
              " {' '.join(names)}\\n\")\n"
              "open('results/epoch.txt', 'w').write(os.environ['SOURCE_DATE_EPOCH'])\n")
    bundle = create(write_study(tmp_path / "confined", script, plain_python),
                    tmp_path / "confined.studypack", "--no-image")
    result = replay_bundle(bundle, mode="sandbox", keep=tmp_path / "work", repeat=1)
    facts = (result.actual_dir / "results/facts.txt").read_text().split()
    assert facts[:3] == ["Read-only", "file", "system"]     # the traced files: read-only
    assert facts[3] == "yes"                      # its temporary folder (TMPDIR): writable
    assert facts[4:] == ["lo"]                               # no network but loopback
    # SOURCE_DATE_EPOCH: the traced run's start, recorded, and the same in the replay
    epoch = next(o for o in result.outputs if o.path == "results/epoch.txt")
    assert epoch.status == "reproduced"
    run_record = json.loads((result.workdir / "bag" / "confined" / "data/runs/1/run.json")
                            .read_text())
    assert run_record["source_date_epoch"] == str(result.source_date_epoch)
    assert (result.actual_dir / "results/epoch.txt").read_text() == str(result.source_date_epoch)



def test_sandbox_runs_with_the_original_locale(tmp_path, plain_python):
    """The traced run loaded only LC_CTYPE's locale file (the interpreter sets only that
    category): the sandbox replay runs with the same locale, and its probe says so."""
    _need_in_ci(bwrap_problem() is None, f"bubblewrap cannot run here: {bwrap_problem()}")
    script = ("import locale, os, random\nos.makedirs('results', exist_ok=True)\n"
              "open('results/locale.txt', 'w').write(locale.setlocale(locale.LC_CTYPE))\n"
              "open('results/random.txt', 'w').write(str(random.random()))\n")
    study = write_study(tmp_path / "localed", script, plain_python)
    made = run_cli("create", study, "-o", tmp_path / "localed.studypack", "-q", "--no-image",
                   env={"LANG": "C.UTF-8", "LC_ALL": "", "LC_CTYPE": ""})
    assert made.returncode == 0, made.stderr
    result = replay_bundle(tmp_path / "localed.studypack", mode="sandbox",
                           keep=tmp_path / "work", repeat=1)
    assert (result.actual_dir / "results/locale.txt").read_text() == "C.UTF-8"
    assert next(o for o in result.outputs if o.path == "results/locale.txt").status == \
        "reproduced"
    # random.txt differs, so the replay examined its environment: the locale is the same
    assert result.environment_diff is not None
    assert [d for d in result.environment_diff if d["what"] == "locale"] == []

# ------------------------------------------------------------------ network

def test_a_run_that_needs_the_network_suggests_network(tmp_path, plain_python, registry):
    _need_in_ci(shutil.which("bwrap") is not None, "bubblewrap is not installed")
    host, port = registry.split(":")
    script = ("import os, socket\n"
              f"socket.getaddrinfo('localhost', {port})\n"
              f"socket.create_connection(('{host}', {port}), timeout=10).close()\n"
              "os.makedirs('results', exist_ok=True)\n"
              "open('results/reached.txt', 'w').write('the registry answered\\n')\n")
    study = write_study(tmp_path / "online", script, plain_python)
    made = run_cli("create", study, "-o", tmp_path / "online.studypack", "--no-image")
    assert made.returncode == 0, made.stderr
    assert "looked up network names" in made.stdout + made.stderr     # warned at create
    offline = run_cli("replay", tmp_path / "online.studypack", "--mode", "sandbox")
    assert offline.returncode == 5, offline.stdout + offline.stderr
    assert "Connection refused" in offline.stderr and "--network" in offline.stderr
    online = run_cli("replay", tmp_path / "online.studypack", "--mode", "sandbox", "--network")
    assert online.returncode == 0, online.stdout + online.stderr


# ------------------------------------------------------- interpreter version

def _image_python(docker_engine, image: str) -> str:
    out = docker_engine.client.containers.run(
        image, ["python3", "-c", "import platform; print(platform.python_version())"],
        remove=True, network_mode="none")
    return out.decode().strip()


@pytest.mark.docker
def test_an_output_of_the_interpreter_version_is_the_environment_in_rebuild_mode(
        tmp_path, study_python, base_image, docker_engine):
    """The study's virtualenv is this machine's Python; the rebuild installs its locked
    packages on the base image's Python, another version."""
    import platform

    theirs = _image_python(docker_engine, base_image)
    if theirs == platform.python_version():
        pytest.skip(f"the base image has this machine's Python ({theirs}): nothing changes")
    script = ("import os, platform\nos.makedirs('results', exist_ok=True)\n"
              "open('results/version.txt', 'w').write(platform.python_version() + '\\n')\n"
              "open('results/answer.txt', 'w').write(str(6 * 7) + '\\n')\n")
    study = write_study(tmp_path / "version", script, study_python)
    bundle = create(study, tmp_path / "version.studypack", "--no-image",
                    "--base-image", base_image)
    run = run_cli("replay", bundle, "--mode", "rebuild", "--json")
    assert run.returncode == 3, run.stderr
    doc = json.loads(run.stdout)
    outputs = {o["path"]: (o["status"], o["cause"]) for o in doc["outputs"]}
    assert outputs == {"results/answer.txt": ("reproduced", None),
                       "results/version.txt": ("differs", "environment")}
    assert doc["replays"] == 2
    assert {"what": "Python interpreter", "original": platform.python_version(),
            "replay": theirs} in doc["environment_diff"]


# ---------------------------------------------------------------- matplotlib

MATPLOTLIB_STUDY = """\
import os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

x = np.linspace(0, 2 * np.pi, 200)
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot(x, np.sin(x), label="sin")
ax.plot(x, np.cos(x), label="cos")
ax.set_title("two waves")
ax.legend()
os.makedirs("results", exist_ok=True)
fig.savefig("results/waves.png", dpi=72)
fig.savefig("results/waves.pdf")
"""


@pytest.fixture(scope="session")
def matplotlib_bundle(tmp_path_factory, base_image, docker_engine) -> Path:
    """A study drawing a PNG and a PDF with matplotlib (from PyPI), its image saved."""
    base = tmp_path_factory.mktemp("matplotlib")
    python = make_venv(base / "venv", "matplotlib")
    study = write_study(base / "waves", MATPLOTLIB_STUDY, python)
    return create(study, base / "waves.studypack", "--save-image", "--base-image", base_image)


@pytest.mark.docker
@pytest.mark.parametrize("mode", ["image", "rebuild", "trace", "sandbox", "directory"])
def test_matplotlib_png_and_pdf_reproduce_in_every_mode(matplotlib_bundle, mode):
    result = replay_bundle(matplotlib_bundle, mode=mode)
    statuses = {o.path: (o.status, o.details) for o in result.outputs}
    assert set(statuses) == {"results/waves.png", "results/waves.pdf"}
    assert result.reproduced, statuses
    assert result.replays == 1            # nothing differed: no second replay
