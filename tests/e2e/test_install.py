"""Install anywhere (#19), for real: `python -m build` makes a wheel and an sdist that
`twine check` accepts; the wheel installed into a fresh virtualenv WITHOUT ReproZip —
what pip installs on macOS or Windows, where the environment marker leaves it out —
receives bundles (info, verify, unpack, deposit, fetch, replay --mode rebuild, the
replay window with an image replay), says in one sentence why `create` cannot trace and
offers --no-trace (which works), ships the demo's example study, and
`studypack-gui --register` gives double-click opening."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support.deposit_bundles import make_bundle
from tests.support.desktop import (assert_registered, bundle_like, desktop_env,  # noqa: F401
                                   needs_desktop_tools)
from tests.support.helpers import REPO, copy_example, run_cli
from tests.support.zenodo_server import FakeZenodo

pytestmark = pytest.mark.slow

MAC = {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix", "extra": ""}
WINDOWS = {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt", "extra": ""}
LINUX = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "extra": ""}
NOT_SOURCES = shutil.ignore_patterns(".venv*", ".git", "build", "dist", "*.egg-info",
                                     "__pycache__", "*.studypack", "*.studypack.sha256",
                                     "studypack-demo", "demo-out", ".studypack-trace", "out")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """``python -m build`` on a copy of the sources: the sdist, and the wheel built from it."""
    base = tmp_path_factory.mktemp("dist")
    source = base / "src"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(base / "out"),
                            str(source)], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = (base / "out").glob("*.whl")
    [sdist] = (base / "out").glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as zf:
        [name] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(zf.read(name).decode())
    return [Requirement(text) for text in meta.get_all("Requires-Dist")]


def wanted_on(wheel: Path, platform: dict) -> list[str]:
    """What pip installs with the wheel on ``platform`` (markers evaluated as pip does)."""
    chosen = []
    for req in requirements(wheel):
        if req.marker is None or req.marker.evaluate(platform):
            req.marker = None
            chosen.append(str(req))
    return chosen


@pytest.fixture(scope="module")
def receiving(dist, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel and the dependencies pip picks on a Mac: the
    bin/ folder of a studypack that has no ReproZip."""
    venv = tmp_path_factory.mktemp("receiving") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", str(dist["wheel"])], check=True, timeout=600)
    subprocess.run([*pip, *wanted_on(dist["wheel"], MAC)], check=True, timeout=900)
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import reprozip"],
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'reprozip'" in probe.stderr
    return venv / "bin"


def studypack(bin_dir: Path, *args, env: dict | None = None, cwd: Path | None = None,
              timeout: int = 900) -> subprocess.CompletedProcess:
    """The installed command, as a user types it (not this checkout's sources)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(bin_dir / "studypack"), *map(str, args)],
                          env={**clean, **(env or {})}, cwd=cwd or bin_dir,
                          capture_output=True, text=True, timeout=timeout)


def one_sentence(proc: subprocess.CompletedProcess) -> str:
    """The error: one ``studypack:`` sentence, at most a hint line after it (the steps'
    progress lines may come before it), and no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("studypack: ")]
    assert len(errors) == 1 and len(lines) - errors[0] <= 2, proc.stderr
    return "\n".join(lines[errors[0]:])


# ------------------------------------------------------------------- the distribution

def test_wheel_and_sdist_pass_twine_check_with_full_metadata(dist):
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict",
                            str(dist["wheel"]), str(dist["sdist"])],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and check.stdout.count("PASSED") == 2, check.stdout
    with zipfile.ZipFile(dist["wheel"]) as zf:
        names = zf.namelist()
        [meta_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(zf.read(meta_name).decode())
    assert meta["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    classifiers = meta.get_all("Classifier")
    for expected in ("Operating System :: MacOS", "Operating System :: Microsoft :: Windows",
                     "Operating System :: POSIX :: Linux", "Intended Audience :: Science/Research"):
        assert expected in classifiers
    assert {u.split(",")[0] for u in meta.get_all("Project-URL")} >= {"Homepage", "Source"}
    # the GUI installs as studypack_gui (never a bare `ui`); the example study ships
    assert "studypack_gui/app.py" in names and not any(n.startswith("ui/") for n in names)
    assert "studypack/examples/heat-diffusion/analysis.py" in names
    assert "studypack_gui/freedesktop/studypack.desktop" in names


def test_reprozip_is_required_on_linux_only(dist):
    def has_reprozip(platform):
        return any(r.startswith("reprozip") for r in wanted_on(dist["wheel"], platform))
    assert has_reprozip(LINUX)
    assert not has_reprozip(MAC) and not has_reprozip(WINDOWS)


# --------------------------------------------------- receiving a bundle without ReproZip

@pytest.fixture(scope="module")
def image_bundle(tmp_path_factory, study_python, base_image, docker_engine) -> Path:
    """The example, made on Linux with a trace, its Dockerfile and the saved image; the
    image create built is removed, so that an image replay really loads it."""
    base = tmp_path_factory.mktemp("install-image")
    out = base / "heat-diffusion.studypack"
    made = run_cli("create", copy_example(base, study_python), "-o", out, "-q",
                   "--save-image", "--base-image", base_image)
    assert made.returncode == 0, made.stderr
    from studypack.bundle.reader import read_info

    image = (read_info(out).metadata.get("environment") or {}).get("image") or {}
    for ref in filter(None, [image.get("tag"), image.get("id")]):
        docker_engine.remove_image(ref)
    return out


@pytest.mark.docker
def test_info_verify_unpack_and_rebuild_replay_without_reprozip(receiving, image_bundle,
                                                                 tmp_path):
    info = studypack(receiving, "info", image_bundle)
    assert info.returncode == 0 and "Heat diffusion on a rod" in info.stdout, info.stderr
    verify = studypack(receiving, "verify", image_bundle)
    assert verify.returncode == 0, verify.stderr
    unpack = studypack(receiving, "unpack", image_bundle, tmp_path / "unpacked")
    assert unpack.returncode == 0, unpack.stderr
    assert list((tmp_path / "unpacked").rglob("analysis.py"))
    replay = studypack(receiving, "replay", image_bundle, "--mode", "rebuild", "--json")
    assert replay.returncode == 0, replay.stdout[-2000:] + replay.stderr[-2000:]
    doc = json.loads(replay.stdout)
    assert doc["mode"] == "rebuild" and doc["reproduced"] is True


GUI_SCRIPT = """
import sys
from pathlib import Path
from studypack_gui import dialogs, tasks
from studypack_gui.app import StudypackApplication
from studypack_gui.replay_window import ReplayWindow

app = StudypackApplication([sys.argv[0]])
tasks.set_immediate(True)
dialogs.recorder = []
window = ReplayWindow()
window.replays_dir = Path(sys.argv[2])
window.show()
window.open_bundle(Path(sys.argv[1]))
view = window.view
modes = [view.mode.itemData(i) for i in range(view.mode.count())]
view.mode.setCurrentIndex(view.mode.findData("image"))
view.replay_button.click()
result = window.replay_result
print(view.integrity.state, result.mode if result else None,
      bool(result and result.reproduced), ",".join(map(str, modes)), len(dialogs.recorder))
"""


@pytest.mark.docker
@pytest.mark.gui
def test_the_replay_window_opens_verifies_and_replays_an_image_without_reprozip(
        receiving, image_bundle, tmp_path):
    proc = subprocess.run([str(receiving / "python"), "-c", GUI_SCRIPT, str(image_bundle),
                           str(tmp_path / "replays")],
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                               "XDG_CONFIG_HOME": str(tmp_path / "config")},
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state, mode, reproduced, modes, dialogs_shown = proc.stdout.split()
    assert (state, mode, reproduced, dialogs_shown) == ("ok", "image", "True", "0")
    assert {"image", "rebuild"} <= set(modes.split(","))


def test_create_says_why_it_cannot_trace_and_no_trace_works(receiving, study_python,
                                                            tmp_path):
    study = copy_example(tmp_path, study_python)
    refused = studypack(receiving, "create", study, "-o", tmp_path / "traced.studypack",
                        "--no-image")
    assert refused.returncode == 2
    message = one_sentence(refused)
    assert "Tracing a run needs" in message and "--no-trace" in message
    assert not (tmp_path / "traced.studypack").exists()

    # --no-trace packs the outputs already there: run the study as its author would
    subprocess.run([str(study_python), "analysis.py", "--steps", "100"], cwd=study,
                   check=True, capture_output=True)
    made = studypack(receiving, "create", study, "-o", tmp_path / "untraced.studypack",
                     "--no-trace", "--no-image", "-q")
    assert made.returncode == 0, made.stderr
    assert studypack(receiving, "verify", tmp_path / "untraced.studypack").returncode == 0


def test_deposit_and_fetch_without_reprozip(receiving, tmp_path):
    bundle = make_bundle(tmp_path / "made", payload_bytes=256 << 10)
    env = {"ZENODO_TOKEN": "install-test-token", "XDG_STATE_HOME": str(tmp_path / "state"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    with FakeZenodo() as server:
        server.add_token("install-test-token")
        deposit = studypack(receiving, "deposit", bundle, "--url", server.url, "--yes",
                            "--publish", "--json", env=env)
        assert deposit.returncode == 0, deposit.stderr
        record_url = json.loads(deposit.stdout)["record_url"]
        fetch = studypack(receiving, "fetch", record_url, "-o", tmp_path / "fetched",
                          "--json", env=env)
        assert fetch.returncode == 0, fetch.stderr
    fetched = tmp_path / "fetched" / bundle.name
    assert fetched.read_bytes() == bundle.read_bytes()


def test_export_rpz_says_it_needs_reprozip(receiving, tmp_path):
    bundle = make_bundle(tmp_path / "made", payload_bytes=1 << 10)
    refused = studypack(receiving, "export", "--rpz", bundle, "-o", tmp_path / "x.rpz")
    assert refused.returncode == 2
    assert "needs ReproZip" in one_sentence(refused)
    assert not (tmp_path / "x.rpz").exists()


def test_the_demo_study_ships_in_the_package(receiving):
    code = ("from studypack.cli.demo import EXAMPLE; "
            "print(EXAMPLE.is_relative_to(__import__('sys').prefix), "
            "sorted(p.name for p in EXAMPLE.iterdir()))")
    out = subprocess.run([str(receiving / "python"), "-c", code], capture_output=True,
                         text=True, check=True, cwd="/").stdout
    assert out.startswith("True") and "'analysis.py'" in out and "'studypack.toml'" in out


@needs_desktop_tools
def test_register_from_the_installed_wheel_opens_bundles_on_double_click(receiving,
                                                                         desktop_env, tmp_path):
    bundle = bundle_like(tmp_path / "received.studypack")
    proc = subprocess.run([str(receiving / "studypack-gui"), "--register"],
                          env={**desktop_env, "QT_QPA_PLATFORM": "offscreen"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert_registered(desktop_env, tmp_path / "data", bundle)
    desktop = (tmp_path / "data" / "applications" / "studypack.desktop").read_text()
    assert f"Exec={receiving / 'studypack-gui'} %f" in desktop
