"""The environment stored once, end to end: the example study's real traced run and
real vendored numpy wheel. Files the wheel reproduces are references, standard tools
still check the bag, a replay rebuilds them, and any change to a package or a
reference is refused by verify and by replay, even when the bag's manifests were
written again to match."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest

from studypack.bundle.reader import read_info
from studypack.errors import BundleError
from studypack.replay import replay_bundle
from studypack.storeonce import LISTING, listing_text, read_listing
from tests.support.helpers import run_cli
from tests.e2e.test_beyond_pip import jq_bundle  # noqa: F401 (fixture)
from tests.e2e.test_replay import script_bundle  # noqa: F401 (fixture)
from tests.support.rebag import rebag, unbag


@pytest.fixture(scope="module")
def example_bag(example_bundle, tmp_path_factory) -> Path:
    """The example bundle unpacked by plain zstd + tar (read-only for the tests)."""
    return unbag(example_bundle, tmp_path_factory.mktemp("example-bag"))


def test_files_the_wheels_reproduce_are_stored_once(example_bundle, example_bag):
    refs = read_listing(example_bag)
    numpy_refs = [r for r in refs if "/site-packages/numpy" in r.file]
    assert numpy_refs
    assert all(r.package.startswith("data/env/wheelhouse/numpy-") for r in numpy_refs)
    assert any(r.size > 1_000_000 for r in numpy_refs)       # the compiled libraries
    for ref in refs:                                          # not a second copy
        assert not (example_bag / ref.file).exists()
    meta = read_info(example_bundle).metadata["traced_files"]
    assert meta["from_packages"]["files"] == len(refs)
    # Standard tools: the bag is complete and every stored file matches its checksum.
    subprocess.run(["sha256sum", "-c", "--quiet", "manifest-sha256.txt"], cwd=example_bag,
                   check=True)
    # ...and a referenced file is rebuilt with unzip alone, as the listing's header says.
    ref = max(numpy_refs, key=lambda r: r.size)
    data = subprocess.run(["unzip", "-p", example_bag / ref.package, ref.member],
                          capture_output=True, check=True).stdout
    assert hashlib.sha256(data).hexdigest() == ref.sha256


def test_directory_replay_rebuilds_the_referenced_files(example_bundle, tmp_path):
    result = replay_bundle(example_bundle, mode="directory", keep=tmp_path / "work")
    assert result.reproduced
    bag = next((tmp_path / "work" / "bag").iterdir())
    for ref in read_listing(bag)[:5]:
        assert hashlib.sha256((bag / ref.file).read_bytes()).hexdigest() == ref.sha256


def _tamper_wheel(bag: Path) -> None:
    """Change one referenced file inside the numpy wheel (a valid zip again)."""
    ref = next(r for r in read_listing(bag) if r.member.endswith(".py"))
    wheel = bag / ref.package
    changed = wheel.with_suffix(".new")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(changed, "w",
                                                       zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data + b"\n# changed\n" if info.filename == ref.member else data)
    changed.replace(wheel)


def _tamper_reference(bag: Path) -> None:
    """Point one reference at another member of the same wheel."""
    refs = read_listing(bag)
    i, first = next((i, r) for i, r in enumerate(refs) if "numpy" in r.package)
    other = next(r for r in refs if r.package == first.package and r.member != first.member)
    refs[i] = dataclasses.replace(first, member=other.member)
    (bag / LISTING).write_bytes(listing_text(refs))


@pytest.mark.parametrize("tamper", [_tamper_wheel, _tamper_reference])
def test_a_changed_package_or_reference_is_refused_even_when_rebagged(
        example_bundle, tmp_path, tamper):
    bag = unbag(example_bundle, tmp_path / "unpacked")
    tamper(bag)
    bundle = rebag(bag, tmp_path / "changed.studypack")
    verified = run_cli("verify", bundle)
    assert verified.returncode == 1
    assert "is not what the run used" in verified.stderr and "Traceback" not in verified.stderr
    replayed = run_cli("replay", "--mode", "directory", bundle)
    assert replayed.returncode != 0 and "Traceback" not in replayed.stderr
    assert "is not what the run used" in replayed.stderr


@pytest.mark.parametrize("mode", ["directory", "sandbox"])
def test_a_replay_rebuilding_during_the_unpack_refuses_a_changed_wheel_before_any_run(
        example_bundle, tmp_path, mode, monkeypatch):
    """The first replay rebuilds the files stored once while it unpacks: a wheel that
    gives other bytes is still refused, nothing is kept for a later replay, and no run
    starts (its study folder is never made)."""
    from studypack.replay.sandbox import bwrap_problem
    if mode == "sandbox" and bwrap_problem():
        pytest.skip(bwrap_problem())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bag = unbag(example_bundle, tmp_path / "unpacked")
    _tamper_wheel(bag)
    bundle = rebag(bag, tmp_path / "changed.studypack")
    work = tmp_path / "work"
    with pytest.raises(BundleError, match="is not what the run used"):
        replay_bundle(bundle, mode=mode, keep=work)
    assert (work / "bag").is_dir()                   # unpacked and verified, then refused
    assert not (work / "study").exists() and not (work / "rebuilt").exists()
    assert not list((tmp_path / "cache").rglob("complete.json"))


def test_auto_without_docker_rebuilds_during_the_unpack(example_bundle, tmp_path, monkeypatch):
    """auto, which chooses after the unpack, starts the rebuild during it when the
    bundle's description says it will need the traced files (no Docker here: sandbox
    or directory), and the replay reproduces."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    said = []
    result = replay_bundle(example_bundle, mode="auto", report=said.append)
    assert result.reproduced and result.mode in ("sandbox", "directory")
    rebuild = [p.message for p in said if p.phase == "rebuild"]
    assert rebuild and rebuild[-1].startswith("rebuilt the traced files"), rebuild


def test_a_changed_wheel_is_refused_by_its_checksum(example_bundle, tmp_path):
    """Not re-bagged: the manifest already catches it."""
    bag = unbag(example_bundle, tmp_path / "unpacked")
    wheel = bag / read_listing(bag)[-1].package
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF                 # one byte, same size
    wheel.write_bytes(bytes(data))
    order = " ".join(f"{bag.name}/{n}" for n in ("bagit.txt", "bag-info.txt", "studypack.json",
                                                  "data", "manifest-sha256.txt",
                                                  "tagmanifest-sha256.txt"))
    subprocess.run(f"tar --format=pax -cf - {order} | zstd -q -o ../changed.studypack",
                   shell=True, cwd=bag.parent, check=True)
    verified = run_cli("verify", tmp_path / "changed.studypack")
    assert verified.returncode == 1 and "does not match its checksum" in verified.stderr


@pytest.mark.docker
def test_trace_mode_reuses_the_image_of_the_same_traced_files(example_bundle, docker_engine,
                                                              tmp_path):
    first = replay_bundle(example_bundle, mode="trace")
    assert first.reproduced
    second = replay_bundle(example_bundle, mode="trace", keep=tmp_path / "work")
    assert second.reproduced
    assert any("reused the image" in n for n in second.notes), second.notes
    # The traced files were checked but not written: the image has them.
    bag = next((tmp_path / "work" / "bag").iterdir())
    assert not [p for p in (bag / "data/rootfs").rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.mark.docker
def test_a_bundle_claiming_another_bundles_traced_files_is_refused(
        example_bundle, docker_engine, tmp_path):
    """studypack.json announces the digest of the traced files an image was made from;
    a bundle whose files differ from what it announces must not run in that image."""
    assert replay_bundle(example_bundle, mode="trace").reproduced   # the image exists
    bag = unbag(example_bundle, tmp_path / "unpacked")
    stored = next(p for p in sorted((bag / "data/rootfs").rglob("*.py")) if p.is_file())
    stored.write_bytes(stored.read_bytes() + b"\n# changed\n")
    bundle = rebag(bag, tmp_path / "changed.studypack")    # manifests hold, the claim not
    with pytest.raises(BundleError, match="do not match the digest"):
        replay_bundle(bundle, mode="trace")


@pytest.mark.docker
def test_a_reused_trace_image_still_gets_the_venv_inside_the_study(script_bundle,
                                                                   docker_engine):
    """The traced files under the study folder (its .venv, numpy stored once in the
    wheel) make the replay's study folder, also when the image is reused."""
    assert replay_bundle(script_bundle, mode="trace").reproduced
    again = replay_bundle(script_bundle, mode="trace")
    assert any("reused the image" in n for n in again.notes)
    assert again.reproduced and again.runs[0].stdout.startswith("shell step\n")


@pytest.mark.docker
def test_files_a_vendored_deb_reproduces_are_stored_once(jq_bundle, tmp_path):
    """jq and its libraries, vendored as .deb files (tests/e2e/test_beyond_pip.py), are
    not packed a second time among the traced files; a replay rebuilds them."""
    bag = unbag(jq_bundle, tmp_path / "unpacked")
    by_file = {r.file: r for r in read_listing(bag)}
    jq = by_file["data/rootfs/usr/bin/jq"]
    assert jq.package.startswith("data/env/debs/jq_") and jq.member == "usr/bin/jq"
    assert any(r.package.startswith("data/env/debs/libonig5_") for r in by_file.values())
    assert not (bag / "data/rootfs/usr/bin/jq").exists()
    assert run_cli("verify", jq_bundle).returncode == 0
    result = replay_bundle(jq_bundle, mode="directory")
    assert result.reproduced
