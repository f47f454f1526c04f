"""Beyond pip, for real: a study calling a Debian program (jq) that the base image lacks,
and an R study (Debian's r-base-core, r-cran-jsonlite, and a package from a local
library), traced by ReproZip, packed with their .deb files, and replayed in rebuild mode
(the image built again from the vendored packages, no network) and in trace mode."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.helpers import run_cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _need(program: str) -> None:
    if shutil.which(program) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is missing (packaging/setup.sh installs it)")
        pytest.skip(f"{program} is not installed (packaging/setup.sh installs it)")


def _write_study(folder: Path, name: str, command: list[str], files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    (folder / "studypack.toml").write_text(
        f'[study]\nname = "{name}"\ntitle = "{name}"\n\n[run]\ncommand = {json.dumps(command)}'
        '\n\n[data]\npaths = ["data"]\n\n[outputs]\npaths = ["results"]\n')
    return folder


def _metadata(bundle: Path) -> dict:
    info = run_cli("info", bundle, "--json")
    assert info.returncode == 0, info.stderr
    return json.loads(info.stdout)


def _member(bundle: Path, name: str) -> bytes:
    """A file of the bundle read with the standard tools only (tar --zstd)."""
    out = subprocess.run(["tar", "--zstd", "-xOf", str(bundle), f"{bundle.stem}/{name}"],
                         capture_output=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _replay(bundle: Path, mode: str) -> dict:
    run = run_cli("replay", bundle, "--mode", mode, "--json")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["mode"] == mode and result["reproduced"] is True
    return result


@pytest.fixture(scope="module")
def jq_bundle(tmp_path_factory, base_image, docker_engine) -> Path:
    _need("jq")
    root = tmp_path_factory.mktemp("jq-study")
    study = _write_study(root / "jq-sum", "jq-sum", [
        "sh", "-c", "mkdir -p results && jq '.values|add' data/in.json > results/sum.txt"],
        {"data/in.json": '{"values": [3, 1, 4, 1, 5, 9, 2, 6]}\n'})
    out = root / "jq-sum.studypack"
    made = run_cli("create", study, "-o", out, "--base-image", base_image, "-v")
    assert made.returncode == 0, made.stderr[-4000:]
    # The review counts what was vendored, what came with the base, and why not;
    # -v lists each package.
    assert "Debian packages vendored: 3 (.deb with sha256" in made.stderr
    assert "Debian package(s) in all" in made.stderr
    assert "came with the base image at the same version: " in made.stderr
    assert "Debian package vendored: jq=" in made.stderr
    assert "no Python environment is locked" in made.stderr
    return out


def test_a_debian_program_is_vendored_as_debs_and_rebuilds_offline(jq_bundle, base_image,
                                                                  docker_engine):
    # The program is not in the base image: only the vendored .deb can bring it.
    assert docker_engine.run(base_image, ["sh", "-c", "command -v jq"]).exit_code != 0
    env = _metadata(jq_bundle)["environment"]
    assert env["kind"] == "none" and "debian" in env["kinds"]
    packages = {p["name"]: p for p in env["debian"]["packages"]}
    for name in ("jq", "libjq1", "libonig5"):
        assert packages[name]["status"] == "vendored", packages[name]
        assert packages[name]["source"] in ("apt-cache", "mirror", "rebuilt")
        deb = _member(jq_bundle, f"data/env/{packages[name]['file']}")
        assert hashlib.sha256(deb).hexdigest() == packages[name]["sha256"]
    assert packages["libc6"]["status"] == "in base image"
    lock = _member(jq_bundle, "data/env/debian-packages.lock").decode()
    assert "\njq\t" in lock and "\tvendored\t" in lock
    dockerfile = _member(jq_bundle, "data/env/Dockerfile").decode()
    assert "COPY env/debs/ /env/debs/" in dockerfile and "wheelhouse" not in dockerfile

    rebuilt = _replay(jq_bundle, "rebuild")
    assert [o["status"] for o in rebuilt["outputs"]] == ["reproduced"]
    _replay(jq_bundle, "trace")


def test_each_vendoring_source_gives_the_exact_package(tmp_path, monkeypatch):
    """The mirror (apt-get download, checked by apt) and dpkg-repack (the installed
    files), each asked alone, give the installed version, marked by where it came from."""
    from studypack.environment import debian

    _need("jq")
    _need("dpkg-repack")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))   # no earlier copies
    installed = debian.installed_packages()
    for source, name in (("rebuilt", "libjq1"), ("mirror", "libonig5")):
        lock = debian.plan_debian_packages([{"name": name, "files": ["/usr/lib/x"]}],
                                           installed=installed, base={
                                               n: p for n, p in installed.items() if n != name})
        debian.vendor_debian_packages(lock, tmp_path / source, sources=(source,))
        package = next(p for p in lock.packages if p.name == name)
        assert package.status == "vendored", package.reason
        assert package.source == source
        fields = subprocess.run(["dpkg-deb", "-f", str(tmp_path / source / package.file),
                                 "Package", "Version"], capture_output=True, text=True).stdout
        assert f"Version: {installed[name].version}" in fields
        sums = (tmp_path / source / "debs" / "SHA256SUMS").read_text()
        assert f"{package.sha256}  {Path(package.file).name}" in sums


R_SCRIPT = """library(jsonlite)
library(tinystat)
v <- read.csv("data/values.csv")$x
dir.create("results", showWarnings = FALSE)
writeLines(toJSON(list(n = length(v), half_sum = half(sum(v))), auto_unbox = TRUE),
           "results/summary.json")
"""


@pytest.fixture(scope="module")
def r_bundle(tmp_path_factory, base_image, docker_engine) -> Path:
    _need("Rscript")
    root = tmp_path_factory.mktemp("r-study")
    # A package from a local library (R CMD INSTALL of a tiny source package).
    source = root / "src" / "tinystat"
    (source / "R").mkdir(parents=True)
    (source / "DESCRIPTION").write_text(
        "Package: tinystat\nVersion: 0.1.0\nTitle: Halves Numbers\nDescription: A tiny "
        "package for the tests.\nLicense: MIT\nAuthors@R: person(\"T\", \"A\", role = "
        "c(\"aut\", \"cre\"), email = \"t@example.org\")\n")
    (source / "NAMESPACE").write_text("export(half)\n")
    (source / "R" / "half.R").write_text("half <- function(x) x / 2\n")
    library = root / "library"
    library.mkdir()
    install = subprocess.run(["R", "CMD", "INSTALL", "-l", str(library), str(source)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    study = _write_study(root / "r-halves", "r-halves", ["Rscript", "analysis.R"],
                         {"analysis.R": R_SCRIPT, "data/values.csv": "x\n1\n2\n3.5\n"})
    out = root / "r-halves.studypack"
    made = run_cli("create", study, "-o", out, "--base-image", base_image,
                   env={"R_LIBS": str(library)})
    assert made.returncode == 0, made.stderr[-4000:]
    return out


def test_an_r_study_locks_its_packages_and_replays_in_rebuild_and_trace(r_bundle, base_image,
                                                                       docker_engine):
    assert docker_engine.run(base_image, ["sh", "-c", "command -v Rscript"]).exit_code != 0
    env = _metadata(r_bundle)["environment"]
    assert "r" in env["kinds"] and "debian" in env["kinds"]
    r_packages = {p["name"]: p for p in env["r"]["packages"]}
    assert r_packages["jsonlite"]["origin"] == "distribution package"
    assert r_packages["jsonlite"]["deb"].startswith("r-cran-jsonlite=")
    assert r_packages["tinystat"]["origin"] == "local library"
    assert r_packages["tinystat"]["vendored"] == "r-library/tinystat"
    assert r_packages["stats"]["deb"].startswith("r-base-core=")
    debs = {p["name"]: p["status"] for p in env["debian"]["packages"]}
    assert debs["r-base-core"] == debs["r-cran-jsonlite"] == "vendored"
    lock = _member(r_bundle, "data/env/r-packages.lock").decode()
    assert "\ntinystat\t0.1.0\tlocal library\t" in lock
    assert _member(r_bundle, "data/env/r-library/tinystat/DESCRIPTION").startswith(
        b"Package: tinystat")

    _replay(r_bundle, "rebuild")
    _replay(r_bundle, "trace")


def test_without_a_pullable_base_create_says_so_and_uses_the_debian_base(
        tmp_path, base_image, docker_engine):
    """No python:X.Y-slim / debian:bookworm-slim can be pulled here: create says so in
    one line and pins the Debian base `studypack base-image` makes (the same code made the
    tests' base image: here it is published under the name create looks for)."""
    from studypack.environment import baseimage

    _need("jq")
    suite = baseimage.host_suite()
    if suite is None:
        pytest.skip("this machine does not run a Debian release studypack knows")
    if baseimage.find_base_image(docker_engine, suite) is None:
        image = docker_engine.client.images.get(base_image)
        ref = baseimage.base_image_ref(suite)
        image.tag(*ref.rsplit(":", 1))
        for line in docker_engine.client.images.push(ref.rsplit(":", 1)[0],
                                                     tag=suite, stream=True, decode=True):
            assert "error" not in line, line
    study = _write_study(tmp_path / "jq-sum", "jq-sum", [
        "sh", "-c", "mkdir -p results && jq '.values|add' data/in.json > results/sum.txt"],
        {"data/in.json": '{"values": [1, 2]}\n'})
    out = tmp_path / "jq-sum.studypack"
    made = run_cli("create", study, "-o", out, "--no-image")
    assert made.returncode == 0, made.stderr[-3000:]
    said = [line for line in made.stderr.splitlines() if "is not on this machine; using" in line]
    assert len(said) == 1 and "`studypack base-image`" in said[0], made.stderr
    dockerfile = _member(out, "data/env/Dockerfile").decode()
    assert "FROM 127.0.0.1:5000/studypack/debian-python@sha256:" in dockerfile
