"""Environment capture without a container engine: detection, the hash-pinned pip lock
with its wheelhouse (real pip, real PyPI wheels), the conda lock and its vendored
channel (real conda packages, indexed and installed with py-rattler)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from studypack.environment.condalock import METHOD_CONDA_META, lock_conda_environment
from studypack.environment.dockerfile import DockerfileInputs, render_dockerfile
from studypack.environment.kinds import pip_install_steps
from studypack.environment.detect import detect_environment, find_interpreter
from studypack.environment import capture_environment
from studypack.environment.piplock import choose_distributions, list_distributions, lock_pip_environment
from studypack.environment.wheels import pip_cache_dir
from studypack.errors import EnvironmentCaptureError
from studypack.spec import load_spec

from tests.support.docker_fixtures import make_venv

DIGEST = "sha256:" + "ab" * 32


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- detection

def test_a_virtualenv_is_found_from_its_bin_python(study_python):
    env = detect_environment(str(study_python))
    assert env.kind == "venv"
    assert env.prefix == study_python.parent.parent
    assert env.python_version == ".".join(map(str, sys.version_info[:3]))
    assert "a virtualenv at" in env.describe()


def test_the_interpreter_a_venv_was_made_from_is_a_system_python():
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    env = detect_environment(str(base))
    assert env.kind == "system"
    assert env.prefix == Path(sys.base_prefix)


def test_a_relative_python_in_the_spec_is_found_in_the_study_folder(tmp_path, study_python):
    study = tmp_path / "study"
    study.mkdir()
    (study / ".venv").symlink_to(study_python.parent.parent)
    (study / "studypack.toml").write_text(
        '[study]\nname = "s"\ntitle = "S"\n[run]\ncommand = ["python", "a.py"]\n'
        '[environment]\npython = ".venv/bin/python"\n')
    spec = load_spec(study)
    assert find_interpreter(None, spec) == str(study / ".venv" / "bin" / "python")


def test_a_missing_interpreter_is_named():
    with pytest.raises(EnvironmentCaptureError, match="/nowhere/bin/python does not exist"):
        detect_environment("/nowhere/bin/python")


# ------------------------------------------------------------------ pip lock

@pytest.fixture(scope="module")
def numpy_lock(study_python, tmp_path_factory):
    out = tmp_path_factory.mktemp("pip-lock")
    return lock_pip_environment(detect_environment(str(study_python)), out)


def test_every_installed_distribution_is_pinned_with_the_hash_of_its_vendored_wheel(
        study_python, numpy_lock):
    installed = subprocess.run(
        [str(study_python), "-m", "pip", "list", "--format=json"], capture_output=True,
        text=True, check=True).stdout
    expected = {d["name"].lower(): d["version"] for d in json.loads(installed)}
    text = numpy_lock.lock_file.read_text()
    for name, version in expected.items():
        assert f"{name}=={version} \\" in text.lower()
    wheels = sorted(numpy_lock.wheelhouse.glob("*.whl"))
    assert len(wheels) == len(expected)
    for wheel in wheels:
        assert f"--hash=sha256:{sha256(wheel)}" in text
    numpy_wheel = next(w.name for w in wheels if w.name.startswith("numpy-"))
    assert "-cp311-cp311-manylinux" in numpy_wheel and numpy_wheel.endswith("x86_64.whl")


def test_pip_refuses_a_vendored_wheel_that_changed(numpy_lock, tmp_path):
    """What --require-hashes is for: a wheel altered after locking is rejected."""
    wheelhouse = tmp_path / "wheelhouse"
    shutil.copytree(numpy_lock.wheelhouse, wheelhouse)
    lock = tmp_path / "requirements.lock"
    shutil.copy(numpy_lock.lock_file, lock)

    def fetch(dest):
        return subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-index", "--find-links",
             str(wheelhouse), "--require-hashes", "--no-deps", "--only-binary=:all:",
             "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
             "-r", str(lock), "-d", str(dest)], capture_output=True, text=True)

    assert fetch(tmp_path / "ok").returncode == 0
    numpy_wheel = next(wheelhouse.glob("numpy-*.whl"))
    with open(numpy_wheel, "ab") as fh:
        fh.write(b"tampered")
    refused = fetch(tmp_path / "bad")
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stdout + refused.stderr


@pytest.mark.slow
def test_a_package_without_a_wheel_is_named_and_the_studys_own_code_is_left_out(
        tmp_path, monkeypatch):
    project = tmp_path / "mycode"
    (project / "mycode").mkdir(parents=True)
    (project / "mycode" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "mycode"\nversion = "0.1"\n'
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n')
    # docopt 0.6.2 was only ever published as a source distribution.
    python = make_venv(tmp_path / "venv", "docopt==0.6.2", "-e", str(project))
    env = detect_environment(str(python))

    locked, skipped = choose_distributions(env, list_distributions(env))
    assert "editable" in skipped["mycode"]
    assert "mycode" not in {d.name for d in locked}

    # pip built a wheel of it when it installed it: pip's cache has it.
    cache = tmp_path / "pip-cache"
    shutil.copytree(pip_cache_dir() / "wheels", cache / "wheels")
    monkeypatch.setenv("PIP_CACHE_DIR", str(cache))
    lock = lock_pip_environment(env, tmp_path / "cached")
    assert lock.to_metadata()["wheel_sources"]["docopt"] == "pip's cache"

    # With an empty cache the index has no wheel of it: the last resort is a wheel
    # rebuilt from the installed files, marked as such in the lock and the metadata.
    shutil.rmtree(cache)
    lock = lock_pip_environment(env, tmp_path / "out")
    assert lock.rebuilt == ["docopt"]
    assert lock.to_metadata()["wheel_sources"]["docopt"] == "rebuilt from the installed files"
    text = lock.lock_file.read_text()
    assert "# docopt: REBUILT from the installed files" in text
    assert "mycode" not in text.split("# not locked")[-1].split("\n", 1)[1]

    # Without its RECORD nothing can rebuild it: the sentence names it, the real cause
    # and the fix.
    record = next(Path(env.site_packages[0]).glob("docopt-0.6.2.dist-info")) / "RECORD"
    record.unlink()
    with pytest.raises(EnvironmentCaptureError) as err:
        lock_pip_environment(env, tmp_path / "again")
    assert "docopt==0.6.2" in err.value.message
    assert "the index has no wheel of it for Linux x86_64 / Python 3.11" in err.value.message
    assert "mycode" not in err.value.message
    assert "--find-links DIR" in err.value.hint


def test_without_an_engine_the_bundle_still_gets_lock_and_wheels(study_python, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    capture = capture_environment(str(study_python), None, tmp_path / "stage",
                                  build_image=None, save_image=False)
    assert capture.metadata["kind"] == "venv"
    assert capture.metadata["image"] == {"built": False}
    assert (capture.files_dir / "requirements.lock").is_file()
    assert any(capture.files_dir.glob("wheelhouse/numpy-*.whl"))
    assert any("no container engine answers" in m for m in capture.messages)


# ---------------------------------------------------------------- Dockerfile

def test_the_dockerfile_pins_the_base_by_digest_and_installs_offline():
    text = render_dockerfile(DockerfileInputs(
        base_image=f"127.0.0.1:5000/base/python@{DIGEST}", base_ref="base/python:3.11",
        study_name="heat-diffusion", title="Heat diffusion on a rod",
        description="A rod.", version="1.0", system_packages=[("libc6", "2.36-9+deb12u4")],
        command=["python", "analysis.py"],
        install_steps=pip_install_steps("requirements.lock", has_wheels=True)))
    from_lines = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert from_lines == [f"FROM 127.0.0.1:5000/base/python@{DIGEST}"]
    assert ("pip install --no-index --find-links /env/wheelhouse --require-hashes"
            in text)
    assert 'org.opencontainers.image.title="Heat diffusion on a rod"' in text
    assert 'org.opencontainers.image.version="1.0"' in text
    assert 'io.studypack.study="heat-diffusion"' in text
    assert "#   libc6=2.36-9+deb12u4" in text
    assert "WORKDIR /study" in text and "COPY study/ /study/" in text


def test_a_bare_tag_is_never_rendered():
    with pytest.raises(ValueError, match="pinned by digest"):
        render_dockerfile(DockerfileInputs(base_image="python:3.11-slim", study_name="s"))


# ---------------------------------------------------------------- conda

def _make_conda_package(root: Path, name: str, version: str, depends: list[str],
                        extension: str) -> Path:
    """A real noarch conda package built with conda-package-handling."""
    from conda_package_handling import api

    src = root / f"src-{name}"
    (src / "info").mkdir(parents=True)
    (src / "share" / name).mkdir(parents=True)
    payload = src / "share" / name / "values.txt"
    payload.write_text(f"{name} {version}\n")
    (src / "info" / "index.json").write_text(json.dumps({
        "name": name, "version": version, "build": "0", "build_number": 0,
        "depends": depends, "license": "MIT", "noarch": "generic", "subdir": "noarch",
        "timestamp": 1700000000000}))
    rel = f"share/{name}/values.txt"
    (src / "info" / "files").write_text(rel + "\n")
    (src / "info" / "paths.json").write_text(json.dumps({"paths_version": 1, "paths": [
        {"_path": rel, "path_type": "hardlink", "sha256": sha256(payload),
         "size_in_bytes": payload.stat().st_size}]}))
    out = root / "channel" / "noarch"
    out.mkdir(parents=True, exist_ok=True)
    created = api.create(str(src), [rel, "info/index.json", "info/files", "info/paths.json"],
                         f"{name}-{version}-0{extension}", out_folder=str(out))
    return Path(created)


def _install(channel: Path, specs: list[str], prefix: Path, cache: Path) -> None:
    import rattler
    import rattler.index

    async def go():
        records = await rattler.solve([channel.as_uri()], specs,
                                      platforms=["linux-64", "noarch"])
        await rattler.install(records, str(prefix), cache_dir=str(cache), show_progress=False)

    asyncio.run(go())


@pytest.fixture(scope="module")
def conda_env(tmp_path_factory):
    """A conda environment installed by py-rattler from a local channel of real packages."""
    import rattler.index

    root = tmp_path_factory.mktemp("conda")
    _make_conda_package(root, "heatdata", "1.0", ["heatutil >=2"], ".conda")
    _make_conda_package(root, "heatutil", "2.1", [], ".tar.bz2")
    asyncio.run(rattler.index.index_fs(root / "channel"))
    prefix = root / "env"
    _install(root / "channel", ["heatdata"], prefix, root / "cache")
    tool = prefix / "bin" / "heat"   # the study's program in the env (not Python)
    tool.parent.mkdir(exist_ok=True)
    tool.write_text("#!/bin/sh\ncat \"$(dirname \"$0\")/../share/heatdata/values.txt\"\n")
    tool.chmod(0o755)
    return root, prefix, tool


def test_a_conda_env_is_locked_from_conda_meta_without_a_solver(conda_env, tmp_path):
    root, prefix, tool = conda_env
    env = detect_environment(str(tool))
    assert env.kind == "conda" and env.prefix == prefix
    lock = lock_conda_environment(env, tmp_path)
    assert lock.method == METHOD_CONDA_META

    doc = yaml.safe_load(lock.lock_file.read_text())
    assert doc["version"] == 1 and doc["metadata"]["platforms"] == ["linux-64"]
    packages = {p["name"]: p for p in doc["package"]}
    assert set(packages) == {"heatdata", "heatutil"}
    for name, package in packages.items():
        original = next((root / "channel" / "noarch").glob(f"{name}-*"))
        assert package["url"] == original.as_uri()
        assert package["hash"]["sha256"] == sha256(original)
        vendored = tmp_path / "channel" / "noarch" / original.name
        assert sha256(vendored) == sha256(original)
    assert packages["heatdata"]["dependencies"] == {"heatutil": ">=2"}
    explicit = lock.explicit_file.read_text()
    assert "@EXPLICIT" in explicit
    assert "file:///env/channel/noarch/heatdata-1.0-0.conda#" in explicit


def test_the_vendored_channel_installs_the_same_environment_offline(conda_env, tmp_path):
    _root, _prefix, tool = conda_env
    lock = lock_conda_environment(detect_environment(str(tool)), tmp_path / "out")
    again = tmp_path / "again"
    _install(lock.channel, ["heatdata"], again, tmp_path / "cache")
    assert (again / "share" / "heatdata" / "values.txt").read_text() == "heatdata 1.0\n"
    assert (again / "share" / "heatutil" / "values.txt").read_text() == "heatutil 2.1\n"


def test_capture_says_which_way_the_conda_lock_was_written(conda_env, tmp_path, monkeypatch):
    _root, _prefix, tool = conda_env
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    capture = capture_environment(str(tool), None, tmp_path / "stage", build_image=None)
    assert capture.metadata["lock_method"] == "conda-meta (no solver)"
    assert any("conda-meta (no solver)" in m for m in capture.messages)
    assert (capture.files_dir / "conda-lock.yml").is_file()
    assert (capture.files_dir / "channel" / "noarch" / "repodata.json").is_file()


def test_a_package_gone_from_every_cache_is_named(conda_env, tmp_path):
    root, prefix, _tool = conda_env
    copy = tmp_path / "env"
    shutil.copytree(prefix, copy, symlinks=True)
    for meta in (copy / "conda-meta").glob("heatutil-*.json"):
        record = json.loads(meta.read_text())
        record["url"] = record["url"].replace("/channel/", "/channel-removed/")
        record.pop("extracted_package_dir", None)
        meta.write_text(json.dumps(record))
    with pytest.raises(EnvironmentCaptureError, match="heatutil-2.1-0.tar.bz2"):
        lock_conda_environment(detect_environment(str(copy / "bin" / "heat")), tmp_path / "o")
