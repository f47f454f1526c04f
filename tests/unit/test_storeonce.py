"""Store once: traced files a vendored package reproduces become references, and a
replay rebuilds them from real archives (a zip wheel, a .deb made by dpkg-deb) and
refuses bytes that differ from the recorded ones."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from studypack.bundle.writer import Member
from studypack.errors import BundleError
from studypack.packages import DebArchive, WheelArchive, open_package
from studypack.storeonce import (LISTING, listing_text, parse_listing, plan_store_once,
                                 read_listing, rebuild_files)

LIB = bytes(range(256)) * 40          # 10 KiB, "a shared library"
MODULE = b"def f():\n    return 42\n" * 30


def make_wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def make_deb(tmp: Path, files: dict[str, bytes]) -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    root = tmp / "debroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: demo\nVersion: 1.0\nArchitecture: all\nMaintainer: A <a@b.c>\n"
        "Description: demo\n")
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    out = tmp / "demo_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)],
                   check=True, capture_output=True)
    return out


def bag_with(tmp: Path, packages: dict[str, Path]) -> Path:
    bag = tmp / "bag"
    for arc, path in packages.items():
        (bag / arc).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, bag / arc)
    return bag


def traced(tmp: Path, files: dict[str, bytes]) -> list[Member]:
    members = []
    for abs_path, data in files.items():
        path = tmp / "host" / abs_path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        members.append(Member.from_file(f"data/rootfs/{abs_path.lstrip('/')}", path))
    return members


def test_archives_list_and_read_their_files(tmp_path):
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/lib.so": LIB})
    deb = make_deb(tmp_path, {"usr/lib/demo/lib.so": LIB})
    assert isinstance(open_package(wheel), WheelArchive)
    assert isinstance(open_package(deb), DebArchive)
    assert open_package(tmp_path / "requirements.lock") is None
    for archive, name in ((open_package(wheel), "demo/lib.so"),
                          (open_package(deb), "usr/lib/demo/lib.so")):
        assert (name, len(LIB)) in list(archive.members())
        got = {n: b"".join(chunks) for n, chunks in archive.read({name})}
        assert got == {name: LIB}


def test_reproduced_files_become_references_and_are_rebuilt(tmp_path):
    site = "/venv/lib/python3.11/site-packages"
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl",
                       {"demo/lib.so": LIB, "demo/mod.py": MODULE, "demo/tiny.py": b"x = 1\n"})
    deb = make_deb(tmp_path, {"usr/lib/demo/lib.so": LIB[::-1]})
    rootfs = traced(tmp_path, {
        f"{site}/demo/lib.so": LIB,                       # same bytes: a reference
        f"{site}/demo/mod.py": MODULE.replace(b"42", b"43"),  # same size, other bytes
        f"{site}/demo/tiny.py": b"x = 1\n",               # too small to be worth it
        "/usr/lib/demo/lib.so": LIB[::-1],                # from the .deb
        "/usr/bin/own": LIB,                              # not under a package's path
    })
    packages = [Member.from_file("data/env/wheelhouse/demo-1.0-py3-none-any.whl", wheel),
                Member.from_file("data/env/debs/demo_1.0_all.deb", deb)]
    once = plan_store_once(rootfs, b"{}", packages)
    by_file = {r.file: r for r in once.references}
    assert set(by_file) == {f"data/rootfs{site}/demo/lib.so", "data/rootfs/usr/lib/demo/lib.so"}
    assert by_file["data/rootfs/usr/lib/demo/lib.so"].member == "usr/lib/demo/lib.so"
    assert {m.arcname for m in once.stored} == {
        f"data/rootfs{site}/demo/mod.py", f"data/rootfs{site}/demo/tiny.py",
        "data/rootfs/usr/bin/own"}
    assert len(once.digest) == 64 and once.metadata()["from_packages"]["files"] == 2

    bag = bag_with(tmp_path, {m.arcname: m.source for m in packages})
    (bag / LISTING).parent.mkdir(parents=True)
    (bag / LISTING).write_bytes(once.listing.data)
    assert read_listing(bag) == sorted(once.references, key=lambda r: r.file)
    out = tmp_path / "rootfs"
    rebuilt = rebuild_files(bag, read_listing(bag), out)
    assert rebuilt == 2 * len(LIB)
    assert (out / site.lstrip("/") / "demo/lib.so").read_bytes() == LIB
    # with its recorded time: a .pyc is valid only for its source's mtime
    assert (out / site.lstrip("/") / "demo/lib.so").stat().st_mtime == \
        int((tmp_path / "host" / site.lstrip("/") / "demo/lib.so").stat().st_mtime)
    assert (out / "usr/lib/demo/lib.so").read_bytes() == LIB[::-1]


def _record_line(name: str, data: bytes) -> str:
    import base64
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n"


def test_a_wheels_record_spares_reading_it_but_a_record_that_lies_is_caught(
        tmp_path, monkeypatch):
    """A wheel's RECORD gives each file's sha256: with the zip's CRC-32 of the member
    agreeing, the file becomes a reference without decompressing it. A RECORD that
    claims the traced bytes for a member holding others is not believed."""
    site = "/venv/lib/python3.11/site-packages"
    other = LIB[::-1]
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {
        "demo/lib.so": LIB, "demo/liar.so": other,
        "demo-1.0.dist-info/RECORD": _record_line("demo/lib.so", LIB)
        + _record_line("demo/liar.so", LIB)            # the lie: LIB's digest for other
        + "demo-1.0.dist-info/RECORD,,\n"})
    assert WheelArchive(wheel).recorded()["demo/lib.so"][0] == hashlib.sha256(LIB).hexdigest()
    rootfs = traced(tmp_path, {f"{site}/demo/lib.so": LIB, f"{site}/demo/liar.so": LIB})
    read: list[str] = []
    original = WheelArchive.read

    def counted(self, names):
        read.extend(names)
        return original(self, names)

    monkeypatch.setattr(WheelArchive, "read", counted)
    packages = [Member.from_file("data/env/wheelhouse/demo-1.0-py3-none-any.whl", wheel)]
    once = plan_store_once(rootfs, b"{}", packages)
    assert [r.file for r in once.references] == [f"data/rootfs{site}/demo/lib.so"]
    assert [m.arcname for m in once.stored] == [f"data/rootfs{site}/demo/liar.so"]
    assert read == ["demo/liar.so"]     # only the member the RECORD could not vouch for
    bag = bag_with(tmp_path, {m.arcname: m.source for m in packages})
    (bag / LISTING).parent.mkdir(parents=True)
    (bag / LISTING).write_bytes(once.listing.data)
    out = tmp_path / "rootfs"
    assert rebuild_files(bag, read_listing(bag), out) == len(LIB)
    assert (out / site.lstrip("/") / "demo/lib.so").read_bytes() == LIB


def _one_reference_bag(tmp_path, package_bytes: bytes = LIB, recorded: bytes = LIB):
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/lib.so": package_bytes})
    bag = bag_with(tmp_path, {"data/env/wheelhouse/demo-1.0-py3-none-any.whl": wheel})
    ref_line = (f"{hashlib.sha256(recorded).hexdigest()}\t{len(recorded)}\t755\t1700000000\t"
                "data/rootfs/venv/demo/lib.so\tdata/env/wheelhouse/demo-1.0-py3-none-any.whl\t"
                "demo/lib.so\n")
    (bag / LISTING).parent.mkdir(parents=True)
    (bag / LISTING).write_bytes(listing_text([]) + ref_line.encode())
    return bag


def test_a_package_that_gives_other_bytes_is_refused(tmp_path):
    tampered = bytearray(LIB)
    tampered[100] ^= 1
    bag = _one_reference_bag(tmp_path, package_bytes=bytes(tampered))
    out = tmp_path / "rootfs"
    with pytest.raises(BundleError, match="is not what the run used"):
        rebuild_files(bag, read_listing(bag), out)
    with pytest.raises(BundleError, match="is not what the run used"):
        rebuild_files(bag, read_listing(bag), None)      # verify: the same check
    assert not (out / "venv/demo/lib.so").exists()
    assert not [p for p in out.rglob("*") if p.is_file()]   # no temporary file left


def test_a_missing_package_or_member_is_refused(tmp_path):
    bag = _one_reference_bag(tmp_path)
    (bag / "data/env/wheelhouse/demo-1.0-py3-none-any.whl").unlink()
    with pytest.raises(BundleError, match="does not carry"):
        rebuild_files(bag, read_listing(bag), None)
    (tmp_path / "b").mkdir()
    bag2 = _one_reference_bag(tmp_path / "b")
    text = (bag2 / LISTING).read_text().replace("\tdemo/lib.so\n", "\tdemo/other.so\n")
    (bag2 / LISTING).write_text(text)
    with pytest.raises(BundleError, match="has no file demo/other.so"):
        rebuild_files(bag2, read_listing(bag2), None)


@pytest.mark.parametrize("file,package", [
    ("data/rootfs/../../etc/passwd", "data/env/wheelhouse/demo-1.0-py3-none-any.whl"),
    ("data/study/analysis.py", "data/env/wheelhouse/demo-1.0-py3-none-any.whl"),
    ("data/rootfs/venv/demo/lib.so", "data/../outside.whl"),
])
def test_unsafe_paths_in_the_listing_are_refused(file, package):
    line = f"{'a' * 64}\t10\t644\t0\t{file}\t{package}\tdemo/lib.so\n"
    with pytest.raises(BundleError, match="unsafe"):
        parse_listing(line.encode())


def test_a_rebuilt_file_never_lands_outside_through_a_link(tmp_path):
    bag = _one_reference_bag(tmp_path)
    out = tmp_path / "rootfs"
    out.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, out / "venv")        # as a hostile symlinks.json could make it
    with pytest.raises(BundleError, match="outside the traced files"):
        rebuild_files(bag, read_listing(bag), out)
    assert not list(outside.iterdir())


def test_paths_with_tabs_and_newlines_survive_the_listing(tmp_path):
    from studypack.storeonce import Reference
    ref = Reference("b" * 64, 300, 0o644, 1, "data/rootfs/a\tb/c\nd%e", "data/env/x.whl",
                    "a\tb")
    assert parse_listing(listing_text([ref])) == [ref]


def test_a_member_larger_than_recorded_is_refused_before_it_is_all_written(tmp_path):
    bag = _one_reference_bag(tmp_path, package_bytes=LIB * 400)     # 4 MB, 10 KB recorded
    out = tmp_path / "rootfs"
    with pytest.raises(BundleError, match="larger than the 10240 bytes"):
        rebuild_files(bag, read_listing(bag), out)
    assert not [p for p in out.rglob("*") if p.is_file()]


def _manifest_of(bundle: Path) -> dict[str, str]:
    import io
    import tarfile

    import zstandard
    from studypack.bundle import format as fmt
    with open(bundle, "rb") as fh:
        fh.seek(len(fmt.MARKER))
        data = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        text = tar.extractfile("demo/manifest-sha256.txt").read().decode()
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in text.splitlines()}


def test_the_writer_reuses_a_digest_only_for_the_file_it_was_computed_on(tmp_path):
    """The digest store-once computed is taken by the writer (no second hash) only while
    the file is unchanged; a file written since is hashed again, never a stale digest."""
    from studypack.bundle.writer import PackPlan, pack
    from studypack.hashing import sha256_file_keyed
    lib = tmp_path / "libx.so"
    lib.write_bytes(LIB)
    member = Member.from_file("data/rootfs/usr/lib/libx.so", lib)
    plan_store_once([member], b"{}", [])
    assert member.known_sha256 == sha256_file_keyed(lib)
    assert member.known_sha256[0] == hashlib.sha256(LIB).hexdigest()
    # A digest marked known for this very file is what the manifest gets: it was reused.
    member.known_sha256 = ("0" * 64, member.known_sha256[1])
    pack(PackPlan("demo", payload=[member]), tmp_path / "a.studypack")
    assert _manifest_of(tmp_path / "a.studypack")[member.arcname] == "0" * 64
    # The same size, the same mtime, other bytes: the ctime tells, it is hashed again.
    stat = lib.stat()
    time.sleep(0.02)   # past a coarse timestamp tick, so the ctime moves
    lib.write_bytes(LIB[::-1])
    os.utime(lib, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    pack(PackPlan("demo", payload=[member]), tmp_path / "b.studypack")
    assert _manifest_of(tmp_path / "b.studypack")[member.arcname] == \
        hashlib.sha256(LIB[::-1]).hexdigest()
