"""The files stored once, rebuilt while the bundle unpacks (studypack/replay/rebuild_ahead.py):
real zip wheels inside real bundles (tar + zstd), unpacked by the real reader. The
rebuild starts during the unpack, yet nothing is put in place before the bundle is
verified, a package that gives other bytes is refused, and a damaged bundle leaves
nothing behind."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from studypack.bundle.reader import unpack
from studypack.errors import BundleError
from studypack.replay.rebuild_ahead import SPLIT_MIN, RebuildAhead
from studypack.storeonce import LISTING, Reference, listing_text, read_listing
from tests.support.hostile.corpus import base_members, bundle_bytes

WHEEL = "data/env/wheelhouse/demo-1.0-py3-none-any.whl"
LIB = bytes(range(256)) * 400                 # 100 KB, "a shared library"
MTIME = 1_700_000_000


def _wheel(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def _ref(member: str, data: bytes, file: str) -> Reference:
    return Reference(hashlib.sha256(data).hexdigest(), len(data), 0o755, MTIME,
                     f"data/rootfs/venv/{file}", WHEEL, member)


def _bundle(tmp_path: Path, payload: dict[str, bytes], damage: str | None = None) -> Path:
    """A valid bundle of ``payload`` (in that member order); with ``damage``, that
    member's bytes are changed after the manifest was written."""
    members = base_members(payload)
    if damage is not None:
        member = next(m for m in members if m.name.endswith("/" + damage))
        member.data = bytes([member.data[0] ^ 1]) + member.data[1:]
    path = tmp_path / "demo.studypack"
    path.write_bytes(bundle_bytes(members))
    return path


def _payload(wheel: bytes, refs: list[Reference], *, listing_first: bool = True) -> dict:
    listing = {LISTING: listing_text(refs)}
    rest = {WHEEL: wheel, "data/rootfs/venv/demo/own.py": b"x = 1\n" * 50}
    return {**listing, **rest} if listing_first else {WHEEL: wheel, **listing, **rest}


def _unpack(bundle: Path, dest: Path, ahead: RebuildAhead, seen: dict):
    def written(rel: str, path: Path) -> None:
        ahead.written(rel, path)
        seen[rel] = set(ahead.jobs)          # what had started when this file was written
    return unpack(bundle, dest, on_written=written)


@pytest.mark.parametrize("listing_first", [True, False])
def test_files_are_rebuilt_during_the_unpack_and_placed_only_after_it(tmp_path, listing_first):
    refs = [_ref("demo/lib.so", LIB, "demo/lib.so"), _ref("demo/mod.py", LIB[::-1], "demo/mod.py")]
    bundle = _bundle(tmp_path, _payload(_wheel({"demo/lib.so": LIB, "demo/mod.py": LIB[::-1]}),
                                        refs, listing_first=listing_first))
    ahead, seen = RebuildAhead(tmp_path / "side"), {}
    try:
        bag = _unpack(bundle, tmp_path / "dest", ahead, seen).bag_dir
        # the wheel's rebuild had started before the unpack wrote the last member
        assert WHEEL in seen["data/rootfs/venv/demo/own.py"]
        rootfs = bag / "data/rootfs"
        assert not (rootfs / "venv/demo/lib.so").exists()     # not before finish()
        assert ahead.finish(bag, read_listing(bag), rootfs) == 2 * len(LIB)
        assert {ref for ref, _ in ahead.made} == set(refs)    # rebuilt by the workers
        lib = rootfs / "venv/demo/lib.so"
        assert lib.read_bytes() == LIB and (rootfs / "venv/demo/mod.py").read_bytes() == LIB[::-1]
        assert lib.stat().st_mtime == MTIME and lib.stat().st_mode & 0o777 == 0o755
    finally:
        ahead.close()
    assert not (tmp_path / "side").exists()


def test_a_wheel_that_gives_other_bytes_is_refused_and_nothing_is_placed(tmp_path):
    tampered = bytearray(LIB)
    tampered[100] ^= 1                       # the manifest matches: only the rebuild sees it
    refs = [_ref("demo/lib.so", LIB, "demo/lib.so")]
    bundle = _bundle(tmp_path, _payload(_wheel({"demo/lib.so": bytes(tampered)}), refs))
    ahead, seen = RebuildAhead(tmp_path / "side"), {}
    try:
        bag = _unpack(bundle, tmp_path / "dest", ahead, seen).bag_dir
        assert WHEEL in seen["data/rootfs/venv/demo/own.py"]
        with pytest.raises(BundleError, match="is not what the run used"):
            ahead.finish(bag, read_listing(bag), bag / "data/rootfs")
        assert not [p for p in (bag / "data/rootfs").rglob("*") if p.name != "own.py"
                    and p.is_file()]
    finally:
        ahead.close()
    assert not (tmp_path / "side").exists()


def test_a_damaged_bundle_stops_the_rebuild_and_leaves_nothing(tmp_path):
    """The rebuild starts before the bundle is verified; when verification fails, the
    unpack refuses the bundle and what the rebuild wrote goes with it."""
    refs = [_ref("demo/lib.so", LIB, "demo/lib.so")]
    bundle = _bundle(tmp_path, _payload(_wheel({"demo/lib.so": LIB}), refs),
                     damage="data/rootfs/venv/demo/own.py")
    ahead, seen = RebuildAhead(tmp_path / "side"), {}
    try:
        with pytest.raises(BundleError, match="damaged"):
            _unpack(bundle, tmp_path / "dest", ahead, seen)
        assert WHEEL in seen["data/rootfs/venv/demo/own.py"]   # it had started
    finally:
        ahead.close()
    assert not (tmp_path / "side").exists()
    assert not list((tmp_path / "dest").iterdir())


def test_what_the_workers_could_not_rebuild_is_rebuilt_or_refused_after(tmp_path):
    """A listing naming a package the bundle does not carry: the same sentence as a
    rebuild after the unpack."""
    refs = [_ref("demo/lib.so", LIB, "demo/lib.so"),
            Reference("a" * 64, 300, 0o644, MTIME, "data/rootfs/venv/x.so",
                      "data/env/wheelhouse/gone-1.0-py3-none-any.whl", "x.so")]
    bundle = _bundle(tmp_path, _payload(_wheel({"demo/lib.so": LIB}), refs))
    ahead, seen = RebuildAhead(tmp_path / "side"), {}
    try:
        bag = _unpack(bundle, tmp_path / "dest", ahead, seen).bag_dir
        with pytest.raises(BundleError, match="does not carry"):
            ahead.finish(bag, read_listing(bag), bag / "data/rootfs")
    finally:
        ahead.close()


def test_a_large_wheel_is_shared_by_the_workers(tmp_path):
    """Past SPLIT_MIN referenced bytes, a wheel's members are rebuilt by two workers,
    each reading its own share; every file is still checked and placed."""
    count = SPLIT_MIN // len(LIB) + 4
    files = {f"demo/lib{i}.so": LIB[i:] + LIB[:i] for i in range(count)}
    refs = [_ref(name, data, name) for name, data in files.items()]
    bundle = _bundle(tmp_path, _payload(_wheel(files), refs))
    ahead, seen = RebuildAhead(tmp_path / "side", workers=2), {}
    try:
        bag = _unpack(bundle, tmp_path / "dest", ahead, seen).bag_dir
        assert len(ahead.jobs[WHEEL]) == 2
        ahead.finish(bag, read_listing(bag), bag / "data/rootfs")
        for name, data in files.items():
            assert (bag / "data/rootfs/venv" / name).read_bytes() == data
    finally:
        ahead.close()
