"""Studies shaped like real research code, packed with the real `studypack create`
(ReproZip trace, pip, zstd): symlinked data, a run by a shell script, a crowded venv
packed with no network at all (in a network namespace with no interfaces)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from studypack.bundle.reader import read_info
from tests.support.helpers import STUDIES, run_cli
from tests.support.wheel_index import WheelIndex
from tests.unit.test_collect import linked_study

pytestmark = pytest.mark.slow


def members(bundle: Path) -> dict[str, bytes]:
    """Every regular file of a bundle, by its name inside the bag (bag name stripped)."""
    found = {}
    with open(bundle, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(
            fh, read_across_frames=True) as stream, tarfile.open(fileobj=stream,
                                                                   mode="r|") as tar:
        for member in tar:
            if member.isfile():
                found[member.name.split("/", 1)[1]] = tar.extractfile(member).read()
    return found


def with_python(study: Path, python: Path) -> Path:
    spec = study / "studypack.toml"
    spec.write_text(spec.read_text() + f'\n[environment]\npython = "{python}"\n')
    return study


def test_symlinked_data_is_packed_recorded_and_replays(study_python, tmp_path):
    study, _disk = linked_study(tmp_path)
    old = study / "results" / "from-last-year.txt"   # a result this run does not rewrite
    old.write_text("old\n")
    os.utime(old, (1_600_000_000, 1_600_000_000))
    with_python(study, study_python)
    out = tmp_path / "linked.studypack"
    made = run_cli("create", study, "-o", out, "--no-image")
    assert made.returncode == 0, made.stderr
    assert ("1 file(s) under [outputs] paths were not written by the traced run (e.g. "
            "results/from-last-year.txt); they are packed with the study, not compared at "
            "replay") in made.stderr
    # A log a researcher can read: the Debian packages in a few counted lines (each one
    # in studypack.json), no R line for a Python run.
    assert made.stderr.count("Debian package") <= 6, made.stderr
    assert "R package" not in made.stderr
    meta = read_info(out).metadata
    assert meta["outputs"] == ["results/counts.txt"]
    assert "results/from-last-year.txt" in meta["inputs"]
    assert meta["counts"]["data"]["files"] == 5
    assert {link["path"]: link["kind"] for link in meta["study_links"]} == {
        "data/shared": "folder", "data/extra.csv": "file"}
    packed = members(out)
    assert packed["data/study/data/shared/b.csv"] == b"x\n1\n2\n3\n"
    assert packed["data/study/data/extra.csv"] == b"x\n9\n"

    replay = run_cli("replay", out, "--mode", "directory")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    # results/from-last-year.txt was in the study before the run: not "(1 new)"
    assert "Reproduced 1/1 outputs." in replay.stdout


def test_shell_study_with_glob_outputs_locks_no_python_and_leaves_its_log_out(tmp_path):
    study = tmp_path / "shell-glob"
    shutil.copytree(STUDIES / "shell-glob", study)
    out = tmp_path / "shell.studypack"
    with open(study / "create.log", "w") as log:   # `studypack create … > study/create.log`
        made = subprocess.run([sys.executable, "-m", "studypack", "create", str(study),
                               "-o", str(out), "--no-image"], stdout=log,
                              stderr=subprocess.STDOUT, timeout=600)
    text = (study / "create.log").read_text()
    assert made.returncode == 0, text
    assert "left out create.log (still being written by studypack itself)" in text
    assert "started no Python interpreter: no Python environment is locked" in text
    meta = read_info(out).metadata
    assert sorted(meta["outputs"]) == ["sorted.dat", "words.dat"]
    assert meta["environment"]["kind"] == "none"
    assert meta["left_out"] == [{"path": "create.log",
                                 "reason": "still being written by studypack itself"}]
    assert not any(name.startswith("data/env/wheelhouse/") for name in members(out))


@pytest.mark.docker
def test_tag_names_the_built_image_and_the_default_carries_the_version(
        tmp_path, base_image, docker_engine):
    study = tmp_path / "shell-glob"
    shutil.copytree(STUDIES / "shell-glob", study)
    spec = study / "studypack.toml"
    spec.write_text(spec.read_text().replace('license = "CC0-1.0"',
                                             'license = "CC0-1.0"\nversion = "2.0"'))
    tag = f"studypack-test/capture-{os.getpid()}:mine"
    made = run_cli("create", study, "-o", tmp_path / "a.studypack", "--base-image",
                   base_image, "--tag", tag)
    assert made.returncode == 0, made.stderr
    assert f"image built offline: {tag}" in made.stderr
    assert "io.studypack.study" not in made.stdout + made.stderr   # no Dockerfile shown
    image = read_info(tmp_path / "a.studypack").metadata["environment"]["image"]
    assert image["tag"] == tag
    docker_engine.remove_image(tag)

    shown = run_cli("create", study, "-o", tmp_path / "b.studypack", "--base-image",
                    base_image, "--show-dockerfile")
    assert shown.returncode == 0, shown.stderr
    assert "FROM 127.0.0.1:5000/" in shown.stdout and "io.studypack.study" in shown.stdout
    image = read_info(tmp_path / "b.studypack").metadata["environment"]["image"]
    assert image["tag"] == "studypack/shell-glob:2.0"
    docker_engine.remove_image(image["tag"])

    refused = run_cli("create", study, "-o", tmp_path / "c.studypack", "--tag", "Bad Tag")
    assert refused.returncode == 2
    assert "--tag 'Bad Tag' is not a valid image name." in refused.stderr


def test_a_log_shows_every_run_of_a_pipeline(study_python, tmp_path):
    study = with_python(shutil.copytree(STUDIES / "timestamp", tmp_path / "timestamp"),
                        study_python)
    made = run_cli("create", study, "-o", tmp_path / "t.studypack", "--no-image")
    assert made.returncode == 0, made.stderr
    assert "[trace] run 1/2: python stamp.py" in made.stderr
    assert "[trace] run 2/2: python report.py" in made.stderr
    assert "step 4/4: pack" in made.stderr


def test_an_untracked_script_the_run_read_makes_the_code_dirty(tmp_path):
    study = tmp_path / "shell-glob"
    shutil.copytree(STUDIES / "shell-glob", study)

    def git(*args):
        subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.org", *args],
                       cwd=study, check=True, capture_output=True)
    git("init", "-q")
    git("add", "studypack.toml", "data")
    git("commit", "-qm", "everything but the script")   # run.sh never committed
    out = tmp_path / "dirty.studypack"
    made = run_cli("create", study, "-o", out, "--no-image", "-q")
    assert made.returncode == 0, made.stderr
    state = read_info(out).runs[0]["git"]
    assert state["dirty"] is True
    assert state["changed_files_read"] == {"run.sh": "untracked"}


def offline_ok() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-rn", "true"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    """A venv holding packages the study never imports, installed by its own pip (the
    one Python ships) from an index that lets pip cache the files: that pip's cache,
    and the cache of a newer pip that downloaded the same wheels, are the warm caches
    of the offline tests."""
    base = tmp_path_factory.mktemp("crowded")
    files = base / "files"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "six",
                    "idna", "attrs", "-d", str(files)], check=True)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    caches = {"venv's pip": base / "cache-venv-pip", "newer pip": base / "cache-newer-pip"}
    with WheelIndex(files) as index:
        plain = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "",
                 "PIP_INDEX_URL": index.url, "PIP_TRUSTED_HOST": "127.0.0.1"}  # pip caches
        # nothing it gets over plain http from a host it does not trust
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        "six", "idna", "attrs"], check=True,
                       env={**plain, "PIP_CACHE_DIR": str(caches["venv's pip"])})
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "six",
                        "idna", "attrs", "-d", str(base / "again")], check=True,
                       env={**plain, "PIP_CACHE_DIR": str(caches["newer pip"])})
    study = base / "unused-packages"
    shutil.copytree(STUDIES / "unused-packages", study)
    with_python(study, venv / "bin" / "python")
    return study, caches


def create_offline(study: Path, out: Path, cache: Path, *args: str):
    """`studypack create` in a network namespace with no interfaces: no network at all."""
    return subprocess.run(["unshare", "-rn", sys.executable, "-m", "studypack", "create",
                           str(study), "-o", str(out), "--no-image", *args],
                          env={**os.environ, "PIP_CACHE_DIR": str(cache),
                               "XDG_CACHE_HOME": str(out.parent / "xdg-cache")},
                          capture_output=True, text=True, timeout=600)


def installs_offline(bundle: Path, tmp_path: Path) -> str:
    """Install the bundle's lock into a new venv with no index and no network."""
    env_dir = tmp_path / "env"
    for name, data in members(bundle).items():
        if name.startswith("data/env/"):
            target = env_dir / name[len("data/env/"):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    venv = tmp_path / "check-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(["unshare", "-rn", str(venv / "bin" / "python"), "-m", "pip",
                          "install", "-q", "--no-index", "--find-links",
                          str(env_dir / "wheelhouse"), "--require-hashes", "-r",
                          str(env_dir / "requirements.lock")], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    return subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import six; print(six.ensure_text(b'ok'))"],
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(not offline_ok(), reason="needs unshare -rn (user namespaces)")
def test_offline_with_an_empty_pip_cache_rebuilds_only_what_the_run_used(crowded, tmp_path):
    study, _caches = crowded
    empty = tmp_path / "empty-cache"
    out = tmp_path / "cold.studypack"
    made = create_offline(study, out, empty)
    assert made.returncode == 0, made.stderr
    assert "no network: the package index cannot be reached" in made.stderr
    assert "REBUILT from the installed files" in made.stderr
    env = read_info(out).metadata["environment"]
    assert "six" in env["rebuilt"]
    assert env["wheel_sources"]["six"] == "rebuilt from the installed files"
    assert {"idna", "attrs", "pip"} <= set(env["left_out"])
    assert "left out of the lock" in made.stderr and "idna" in made.stderr
    lock = members(out)["data/env/requirements.lock"].decode()
    assert "# six: REBUILT from the installed files" in lock
    assert "\nidna==" not in lock and "\nattrs==" not in lock
    assert installs_offline(out, tmp_path) == "ok"


@pytest.mark.skipif(not offline_ok(), reason="needs unshare -rn (user namespaces)")
@pytest.mark.parametrize("which", ["venv's pip", "newer pip"])
def test_offline_with_a_warm_pip_cache_takes_the_cached_wheels(crowded, tmp_path, which):
    study, caches = crowded
    out = tmp_path / "warm.studypack"
    made = create_offline(study, out, caches[which], "--lock", "all")
    assert made.returncode == 0, made.stderr
    env = read_info(out).metadata["environment"]
    for name in ("six", "idna", "attrs"):
        assert env["wheel_sources"][name] == "pip's cache", env["wheel_sources"]
    assert "six" not in env["rebuilt"]
    assert "3 from pip's cache" in made.stderr
    assert installs_offline(out, tmp_path) == "ok"


@pytest.mark.skipif(not offline_ok(), reason="needs unshare -rn (user namespaces)")
def test_a_wheelhouse_the_user_names_comes_first(crowded, tmp_path):
    study, caches = crowded
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    for wheel in (caches["venv's pip"].parent / "files").glob("six-*.whl"):
        shutil.copyfile(wheel, wheelhouse / wheel.name)
    out = tmp_path / "named.studypack"
    made = create_offline(study, out, caches["newer pip"], "--find-links", str(wheelhouse))
    assert made.returncode == 0, made.stderr
    env = read_info(out).metadata["environment"]
    assert env["wheel_sources"]["six"] == f"your wheelhouse {wheelhouse}"


def test_a_missing_wheelhouse_is_refused_before_the_run(crowded, tmp_path):
    study, _caches = crowded
    made = run_cli("create", study, "-o", tmp_path / "x.studypack", "--no-image",
                   "--find-links", tmp_path / "nowhere")
    assert made.returncode == 2
    assert f"The wheelhouse {tmp_path / 'nowhere'} does not exist." in made.stderr
    assert "step 2/4" not in made.stderr   # refused in the plan step, before any run


@pytest.mark.skipif(not offline_ok(), reason="needs unshare -rn (user namespaces)")
def test_a_requires_python_the_run_does_not_meet_is_named_as_the_cause(tmp_path):
    """Its only wheel needs a newer Python, it was installed anyway and without a RECORD:
    nothing can vendor it, and the sentence says why (not "no wheel")."""
    project = tmp_path / "newonly"
    (project / "newonly").mkdir(parents=True)
    (project / "newonly" / "__init__.py").write_text("VALUE = 1\n")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "newonly"\nversion = "1.0"\nrequires-python = ">=3.99"\n'
        '[build-system]\nrequires = ["setuptools>=64"]\n'
        'build-backend = "setuptools.build_meta"\n')
    wheelhouse = tmp_path / "wheelhouse"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--ignore-requires-python", "-w",
                    str(wheelhouse), str(project)], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--ignore-requires-python", "--no-index", "--find-links", str(wheelhouse),
                    "newonly"], check=True)
    for record in venv.glob("lib/python*/site-packages/newonly-1.0.dist-info/RECORD"):
        record.unlink()
    study = tmp_path / "study"
    study.mkdir()
    (study / "main.py").write_text("import newonly\nopen('out.txt', 'w').write('1')\n")
    (study / "studypack.toml").write_text(
        '[study]\nname = "newonly-study"\ntitle = "t"\n[run]\ncommand = ["python", "main.py"]\n'
        f'[outputs]\npaths = ["out.txt"]\n[environment]\npython = "{venv}/bin/python"\n')
    made = create_offline(study, tmp_path / "x.studypack", tmp_path / "empty-cache",
                          "--find-links", str(wheelhouse))
    assert made.returncode == 2, made.stderr
    assert "No wheel could be vendored for newonly==1.0 (newonly-1.0-py3-none-any.whl " \
           "requires Python >=3.99, the run used 3.11" in made.stderr
    assert "--find-links DIR" in made.stderr


def test_the_session_step_by_step_says_when_a_file_the_run_read_is_gone(study_python,
                                                                         tmp_path):
    """The core session as the wizard drives it, page by page: a file outside the study
    that the run read disappears before the bundle is written; the bundle says so."""
    from studypack.create import CreateOptions, CreateSession
    from studypack.spec import load_spec

    outside = tmp_path / "elsewhere" / "calibration.txt"
    outside.parent.mkdir()
    outside.write_text("1.5\n")
    study = tmp_path / "study"
    study.mkdir()
    (study / "main.py").write_text(
        f"open('out.txt', 'w').write(open({str(outside)!r}).read())\n")
    (study / "studypack.toml").write_text(
        '[study]\nname = "gone"\ntitle = "t"\n[run]\ncommand = ["python", "main.py"]\n'
        f'[outputs]\npaths = ["out.txt"]\n[environment]\npython = "{study_python}"\n')
    steps = []
    with CreateSession(load_spec(study), CreateOptions(build_image=False),
                       tmp_path / "gone.studypack") as session:
        session.plan(steps.append)
        session.trace(steps.append)
        outside.unlink()
        session.capture_environment(report=steps.append)
        result = session.pack(report=steps.append)
    assert [p.phase for p in steps][0] == "plan" and "pack" in {p.phase for p in steps}
    assert (f"1 file(s) the run read are gone or cannot be read now, so they are not in the "
            f"bundle: {outside}") in result.warnings
    assert result.path.is_file()
