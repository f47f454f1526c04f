"""Prepack: the study's files compressed during the run, copied into the bundle only
where the final plan has the same members and their files are unchanged. Every bundle
here is checked with the real tools (zstd -t, sha256sum -c, tar --zstd -x) and
studypack's own verify."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from studypack.bundle.prepack import NO_ROOM, Prepack, plan_chunks
from studypack.bundle.reader import verify
from studypack.bundle.writer import Member, PackPlan, pack
from studypack.progress import CancelToken

BAG = "demo"
META = json.dumps({"format": "studypack", "format_version": 1,
                   "study": {"name": BAG, "title": "Prepacked", "authors": []},
                   "runs": [], "counts": {}}).encode()


def plan_of(payload: list[Member]) -> PackPlan:
    return PackPlan(BAG, metadata=META, payload=payload)


def make_study(root: Path) -> dict[str, bytes]:
    files = {
        "analysis.py": b"print('hello')\n" * 50,
        "data/a.csv": b"1,2,3\n" * 40_000,
        "data/b.csv": b"4,5,6\n" * 30_000,
        "data/c.bin": os.urandom(150_000),
        "data/d.txt": b"the end\n" * 1000,
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def members(root: Path, names) -> list[Member]:
    return [Member.from_file(f"data/study/{rel}", root / rel) for rel in names]


def prepacked(root: Path, tmp: Path, names, cancel=None) -> Prepack:
    # ~200 KB chunks: several chunks of one or two files each
    pre = Prepack(members(root, names), BAG, tmp / "prepack", 3, chunk_input=200_000,
                  cancel=cancel).start()
    pre.wait()
    return pre


def check_bundle(bundle: Path, tmp: Path, expected: dict[str, bytes]) -> None:
    """Valid for the plain tools and for studypack, and holding ``expected``."""
    subprocess.run(["zstd", "-tq", str(bundle)], check=True)
    subprocess.run(["sha256sum", "-c", "--quiet", bundle.name + ".sha256"], cwd=bundle.parent,
                   check=True)
    verify(bundle)
    out = tmp / ("x-" + bundle.stem)
    out.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(bundle), "-C", str(out)], check=True)
    for rel, data in expected.items():
        assert (out / BAG / "data/study" / rel).read_bytes() == data, rel
    subprocess.run(["sha256sum", "-c", "--quiet", "manifest-sha256.txt"], cwd=out / BAG,
                   check=True)


def test_chunks_follow_the_members_and_stop_at_one_made_in_memory(tmp_path):
    make_study(tmp_path)
    ms = members(tmp_path, ["analysis.py", "data/a.csv", "data/b.csv"])
    ms.insert(1, Member.from_bytes("data/study/studypack.toml", b"scrubbed"))
    chunks = plan_chunks(ms, chunk_input=10**9)
    assert [[e.arcname for e in c.entries] for c in chunks] == [
        ["data/study/analysis.py"], ["data/study/data/a.csv", "data/study/data/b.csv"]]


def test_unchanged_files_are_copied_in_from_the_prepacked_frames(tmp_path):
    files = make_study(tmp_path / "study")
    pre = prepacked(tmp_path / "study", tmp_path, files)
    assert len(pre.chunks) >= 3 and all(c.state == "done" for c in pre.chunks)
    head = Member.from_bytes("data/run.json", b"{}")
    plan = plan_of([head] + members(tmp_path / "study", files))
    bundle = tmp_path / "a.studypack"
    spilled = pre.spill.stat().st_blocks * 512
    pack(plan, bundle, prepacked=pre)
    assert pre.spliced == pre.chunks            # every chunk copied in, none packed again
    # each chunk's part of the spill was freed once copied (a hole: no blocks left)
    assert spilled > 0 and pre.spill.stat().st_blocks * 512 < spilled // 10
    check_bundle(bundle, tmp_path, files)
    # Within ~0.3 % of the bundle packed without it.
    plain = tmp_path / "plain.studypack"
    pack(plan, plain)
    assert bundle.stat().st_size <= plain.stat().st_size * 1.003 + 200
    pre.stop()
    assert not (tmp_path / "prepack").exists()


def test_a_file_the_run_rewrote_is_packed_from_its_new_content(tmp_path):
    """Same size, mtime set back with os.utime: only the ctime tells, and it is enough."""
    root = tmp_path / "study"
    files = make_study(root)
    pre = prepacked(root, tmp_path, files)
    target = root / "data/b.csv"
    st = target.stat()
    time.sleep(0.02)    # past a coarse timestamp tick
    new = b"9,9,9\n" * 30_000
    target.write_bytes(new)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    files["data/b.csv"] = new
    plan = plan_of(members(root, files))
    bundle = tmp_path / "r.studypack"
    pack(plan, bundle, prepacked=pre)
    spliced = {e.arcname for c in pre.spliced for e in c.entries}
    assert "data/study/data/b.csv" not in spliced
    # its chunk (with c.bin) is packed again; the other chunks are still copied in
    assert {"data/study/data/a.csv", "data/study/data/d.txt"} <= spliced
    check_bundle(bundle, tmp_path, files)


def test_a_file_the_run_opened_for_writing_is_never_copied_in(tmp_path):
    """A rewrite within one tick of a coarse clock keeps the file's key (same size,
    mtime and ctime): the key cannot tell, the trace's list of written files does."""
    from studypack.hashing import file_key

    root = tmp_path / "study"
    files = make_study(root)
    target = root / "data/b.csv"
    new = b"9,9,9\n" * 30_000
    for forget in (False, True):
        target.write_bytes(files["data/b.csv"])
        pre = prepacked(root, tmp_path, files)
        target.write_bytes(new)
        for chunk in pre.chunks:   # the key such a filesystem reports: unchanged
            for entry in chunk.entries:
                if entry.source == target:
                    entry.key = file_key(os.stat(target))
        if forget:
            pre.forget({str(target)})
        bundle = tmp_path / f"w{int(forget)}.studypack"
        pack(plan_of(members(root, files)), bundle, prepacked=pre)
        spliced = {e.arcname for c in pre.spliced for e in c.entries}
        pre.stop()
        assert ("data/study/data/b.csv" in spliced) is not forget
        if forget:
            check_bundle(bundle, tmp_path, files | {"data/b.csv": new})


def test_a_new_file_between_prepacked_files_is_packed_in_its_place(tmp_path):
    root = tmp_path / "study"
    files = make_study(root)
    pre = prepacked(root, tmp_path, files)
    (root / "data/b2.log").write_bytes(b"written by the run\n")
    after = dict(files)
    after["data/b2.log"] = b"written by the run\n"
    order = sorted(after)
    plan = plan_of(members(root, order))
    bundle = tmp_path / "n.studypack"
    pack(plan, bundle, prepacked=pre)
    assert pre.spliced and len(pre.spliced) < len(pre.chunks)
    for chunk in pre.spliced:   # each copied chunk is where the plan has its members
        names = [e.arcname for e in chunk.entries]
        i = [m.arcname for m in plan.payload].index(names[0])
        assert [m.arcname for m in plan.payload[i:i + len(names)]] == names
    check_bundle(bundle, tmp_path, after)


def test_cancel_stops_the_prepack_and_leaves_no_spill(tmp_path):
    root = tmp_path / "study"
    files = make_study(root)
    (root / "data/e-big.bin").write_bytes(os.urandom(16 << 20))
    files["data/e-big.bin"] = (root / "data/e-big.bin").read_bytes()
    names = sorted(files)
    cancel = CancelToken()
    pre = Prepack(members(root, names), BAG, tmp_path / "prepack", 3,
                  chunk_input=200_000, cancel=cancel).start()
    while pre.chunks[0].state != "done":     # the thread is under way: cancel now
        time.sleep(0.001)
    cancel.cancel()
    pre.wait()
    assert pre.chunks[-1].state == "failed"   # the big file's chunk was cut short
    assert not pre.spill.exists()
    # The writer packs what was not prepacked, as usual.
    bundle = tmp_path / "c.studypack"
    pack(plan_of(members(root, names)), bundle, prepacked=pre)
    assert pre.spliced == []
    check_bundle(bundle, tmp_path, files)
    pre.stop()
    assert not (tmp_path / "prepack").exists()


def test_no_room_in_the_work_folder_means_no_prepack(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    root = tmp_path / "study"
    files = make_study(root)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 1000))
    pre = Prepack(members(root, files), BAG, tmp_path / "prepack", 3).start()
    assert pre.skipped == NO_ROOM and all(c.state == "failed" for c in pre.chunks)
    bundle = tmp_path / "d.studypack"
    pack(plan_of(members(root, files)), bundle, prepacked=pre)
    assert pre.spliced == []
    check_bundle(bundle, tmp_path, files)


def test_after_hurry_the_work_goes_on_at_normal_priority(tmp_path):
    """The run ended: the low-priority thread hands the chunk under way to another
    thread, which ends the frame and goes on in a new one; the bundle is valid."""
    root = tmp_path / "study"
    files = make_study(root)
    pre = Prepack(members(root, files), BAG, tmp_path / "prepack", 3,
                  chunk_input=10**9).start()     # one chunk: the handover is inside it
    pre.hurry()
    pre.wait()
    assert pre._helper is not None and [c.state for c in pre.chunks] == ["done"]
    with open(pre.spill, "rb") as fh:   # two frames in the chunk: one per thread
        data = fh.read()
    assert data.count(b"\x28\xb5\x2f\xfd") >= 2
    bundle = tmp_path / "h.studypack"
    pack(plan_of(members(root, files)), bundle, prepacked=pre)
    assert pre.spliced == pre.chunks
    check_bundle(bundle, tmp_path, files)


def test_the_study_spec_is_packed_scrubbed_and_left_out_of_the_prepack(tmp_path):
    """The study's own studypack.toml, reached through a link as well, is a member made
    in memory (scrubbed of a token typed into its command): never prepacked."""
    from studypack.collect import StudyFile
    from studypack.create.layout import study_members
    from studypack.secrets import Scrubber
    from studypack.spec import load_spec
    root = tmp_path / "study"
    make_study(root)
    token = "s3cr3t-t0ken-value"
    (root / "studypack.toml").write_text(
        '[study]\nname = "demo"\ntitle = "Demo"\n'
        f'[run]\ncommand = ["python", "analysis.py", "--token", "{token}"]\n')
    (root / "data" / "spec-link.toml").symlink_to("../studypack.toml")
    spec = load_spec(root / "studypack.toml")
    scrubber = Scrubber()
    scrubber.scrub_argv(list(spec.runs[0].command))
    inputs = [StudyFile(rel, root / rel, (root / rel).stat().st_size, "code")
              for rel in ("analysis.py", "data/spec-link.toml", "studypack.toml")]
    found = study_members(spec, inputs, scrubber)
    assert [m.data is None for m in found] == [True, False, False]
    assert all(token.encode() not in m.data for m in found[1:])
    assert found[0].size == (root / "analysis.py").stat().st_size
    chunks = plan_chunks(found)
    assert [[e.arcname for e in c.entries] for c in chunks] == [["data/study/analysis.py"]]
