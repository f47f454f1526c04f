"""The trace image imported while the bundle unpacks (studypack/replay/trace_stream.py),
with the real Docker daemon and the example study's real bundle: the image holds the
same files as one imported from the layer written to disk, and a bundle refused after
its upload began leaves no image behind."""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid
from pathlib import Path

import pytest

from studypack.bundle.reader import read_info, unpack
from studypack.errors import BundleError
from studypack.progress import token
from studypack.replay import replay_bundle
from studypack.replay.cache import DIGEST_LABEL, claimed_digest
from studypack.replay.rebuild_ahead import RebuildAhead
from studypack.replay.study import load_layout
from studypack.replay.trace import which_busybox, write_rootfs_tar
from studypack.replay.trace_stream import LayerStream
from studypack.storeonce import read_listing
from tests.e2e.test_store_once import _tamper_wheel
from tests.support.rebag import rebag, unbag

pytestmark = pytest.mark.docker
# what Docker puts in every container (at its creation time)
DOCKER_MADE = {".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab",
               "dev", "proc", "sys", "etc"}


def _files_of(client, image: str) -> list[tuple]:
    """Every entry of the image's file system: name, type, mode, size, link, time, and
    the sha256 of a file's bytes."""
    container = client.containers.create(image, command=["/x"])
    try:
        data = b"".join(container.export())
    finally:
        container.remove(force=True)
    entries = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            if m.name.rstrip("/") in DOCKER_MADE or m.name.startswith(("dev/", "proc/", "sys/")):
                continue
            digest = hashlib.sha256(tar.extractfile(m).read()).hexdigest() if m.isreg() else ""
            entries.append((m.name.rstrip("/"), m.type, m.mode, m.size, m.linkname,
                            int(m.mtime) if not m.isdir() else 0, digest))
    return sorted(entries)


def test_the_image_imported_during_the_unpack_holds_the_same_files(example_bundle,
                                                                   docker_engine, tmp_path):
    client = docker_engine.client
    info = read_info(example_bundle)
    digest = claimed_digest(info.metadata)
    work = tmp_path / "work"
    final_rootfs = work / "bag" / info.bag_name / "data/rootfs"
    stream = LayerStream.start(digest, final_rootfs)
    ahead = RebuildAhead(work / "rebuilt")
    streamed, from_disk = (f"studypack-test-perf6-{uuid.uuid4().hex[:8]}:{kind}"
                           for kind in ("streamed", "disk"))
    try:
        bag = unpack(example_bundle, work / "bag",
                     on_written=lambda rel, path: (ahead.written(rel, path),
                                                   stream.written(rel, path))).bag_dir
        assert stream.sent                          # sent while the unpack went on
        layout = load_layout(bag)
        refs = read_listing(bag)
        ahead.finish(bag, refs, layout.rootfs)
        busybox = which_busybox()
        rebuilt = {r.file.removeprefix("data/rootfs/") for r in refs}
        assert stream.finish(layout.rootfs, busybox, streamed, rebuilt, token(None)) == streamed
        write_rootfs_tar(layout.rootfs, tmp_path / "layer.tar", busybox, lambda p: None,
                         token(None))
        client.api.import_image_from_file(str(tmp_path / "layer.tar"),
                                          *from_disk.split(":"))
        assert client.images.get(streamed).labels.get(DIGEST_LABEL) == digest
        files = _files_of(client, streamed)
        assert any(name.endswith("numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so")
                   for name, *_ in files)               # a file stored once, rebuilt
        assert files == _files_of(client, from_disk)
    finally:
        ahead.close()
        stream.close()
        for tag in (streamed, from_disk):
            try:
                client.images.remove(tag, force=True)
            except Exception:
                pass


def test_a_bundle_refused_after_the_upload_began_leaves_no_image(example_bundle,
                                                                 docker_engine, tmp_path):
    """A wheel that gives other bytes than the run used is found once the bundle is
    unpacked (and verified: its manifests were written again): the import of the traced
    files had begun, and is abandoned without an image. (One traced file is changed
    too, and the digest studypack.json announces with it, so that no image of these
    traced files exists here, made by another test.)"""
    import json

    from studypack.replay.cache import bag_traced_digest

    client = docker_engine.client
    bag = unbag(example_bundle, tmp_path / "unpacked")
    stored = next(p for p in sorted((bag / "data/rootfs").rglob("*.py")) if p.is_file())
    stored.write_bytes(stored.read_bytes() + f"\n# {uuid.uuid4()}\n".encode())
    bag = unbag(rebag(bag, tmp_path / "one.studypack"), tmp_path / "again")
    digest = bag_traced_digest(bag)
    meta = json.loads((bag / "studypack.json").read_text())
    meta["traced_files"]["digest"] = digest
    (bag / "studypack.json").write_text(json.dumps(meta))
    _tamper_wheel(bag)
    bundle = rebag(bag, tmp_path / "changed.studypack")
    assert claimed_digest(read_info(bundle).metadata) == digest
    labelled = {"label": f"{DIGEST_LABEL}={digest}"}
    assert client.images.list(all=True, filters=labelled) == []
    said = []
    with pytest.raises(BundleError, match="is not what the run used"):
        replay_bundle(bundle, mode="trace", report=said.append)
    assert any(p.phase == "unpack" for p in said)
    assert client.images.list(all=True, filters=labelled) == []
