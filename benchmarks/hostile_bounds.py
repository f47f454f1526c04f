"""Time and peak memory of `studypack verify`, `unpack` and `info` on the hostile bundles
of issue 18, at the issue's own sizes, and on an honest bundle at the member bound.

Each command runs in a fresh child through measure.py (peak RSS = ``ru_maxrss`` of that
child). The bound the reader enforces (studypack/bundle/format.py) should stop each
hostile case within a few seconds and far under 300 MB; the honest bundle at the bound
shows what accepting the largest allowed bundle costs.

    .venv/bin/python benchmarks/hostile_bounds.py [--only NAME,...] [--dir DIR]

Nothing in the test suite asserts a time: the corpus in tests/support/hostile has the
same cases at small sizes and checks the sentences.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import zstandard

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from studypack.bundle.format import MARKER, MAX_MEMBERS  # noqa: E402
from tests.support.hostile.corpus import (BAG, CASES_BY_NAME, PAYLOAD, Member,  # noqa: E402
                                          base_members, members_tar, tar_members)

MiB = 1024 * 1024


def _tar(members: list[Member], *, end: bool = True) -> bytes:
    if not end:
        return members_tar(members)
    raw = io.BytesIO()
    tar_members(members, raw)
    return raw.getvalue()


def _frame(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def _copies(block: bytes, count: int, per_frame: int) -> bytes:
    """``count`` copies of ``block`` as repeated identical zstd frames (cheap to build:
    one frame is compressed, then repeated)."""
    frame = _frame(block * per_frame)
    tail = _frame(block * (count % per_frame)) if count % per_frame else b""
    return frame * (count // per_frame) + tail


def _head_then(middle: bytes) -> bytes:
    members = base_members()
    return (MARKER + _frame(_tar(members[:3], end=False)) + middle
            + _frame(_tar(members[3:])))


def pax_comment() -> bytes:
    """One folder header repeated 200 times, each with a 60 MiB pax comment."""
    info = tarfile.TarInfo(f"{BAG}/data/study/")
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    info.pax_headers = {"comment": "x" * (60 * MiB)}
    return _head_then(_copies(info.tobuf(tarfile.PAX_FORMAT), 200, 1))


def directory_headers() -> bytes:
    """5 million identical folder headers."""
    info = tarfile.TarInfo(f"{BAG}/data/study")
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return _head_then(_copies(info.tobuf(tarfile.USTAR_FORMAT), 5_000_000, 4096))


def zero_padding() -> bytes:
    """64 GiB of zeros after the end of the archive."""
    return MARKER + _frame(_tar(base_members())) + _copies(b"\0" * MiB, 64 * 1024, 1024)


def newline_bag_info() -> bytes:
    """bag-info.txt of 60 MiB of newlines (under the old 64 MiB tag-file bound)."""
    members = base_members()
    members[1] = Member(members[1].name, members[1].data + b"\n" * (60 * MiB))
    return MARKER + _frame(_tar(members))


def empty_files(count: int) -> bytes:
    """``count`` empty payload files (bag-info declares them, manifests list them)."""
    names = [f"data/study/f/{i:07d}" for i in range(count)]
    empty = hashlib.sha256(b"").hexdigest()
    members = base_members(oxum=f"{sum(map(len, PAYLOAD.values()))}.{len(PAYLOAD) + count}",
                           extra_manifest=[f"{empty}  {n}\n" for n in names])
    out = io.BytesIO(MARKER)
    out.seek(0, io.SEEK_END)
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as writer:
        raw = io.BytesIO()
        tar_members(members[:-2], raw)
        head = raw.getvalue()
        writer.write(head[:len(head.rstrip(b"\0")) + (-len(head.rstrip(b"\0")) % 512)])
        for name in names:
            info = tarfile.TarInfo(f"{BAG}/{name}")
            writer.write(info.tobuf(tarfile.USTAR_FORMAT))
        writer.write(_tar(members[-2:]))
    return out.getvalue()


def skippable_frame() -> bytes:
    """1 MiB hidden in a skippable frame after the end (the corpus case)."""
    return CASES_BY_NAME["skippable-frame-after-end"].build()


CASES = {
    "pax-comment-60MiB-x200": pax_comment,
    "directory-headers-5M": directory_headers,
    "zero-padding-64GiB": zero_padding,
    "metadata-1.5M-objects": CASES_BY_NAME["metadata-many-values"].build,
    "bag-info-60MiB-newlines": newline_bag_info,
    "chained-pax-headers-5000": CASES_BY_NAME["chained-pax-headers"].build,
    "empty-files-700k": lambda: empty_files(700_000),
    "skippable-frame-1MiB": skippable_frame,
    "honest-at-bound": lambda: empty_files(MAX_MEMBERS - 20),
}


def measure(*command: str) -> dict:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "measure.py"), "--",
                           *command], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--dir", type=Path, help="keep the bundles here")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(CASES)
    work = args.dir or Path(tempfile.mkdtemp(prefix="studypack-bounds-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for name in chosen:
            bundle = work / f"{name}.studypack"
            if not bundle.exists():
                bundle.write_bytes(CASES[name]())
            for command in ("verify", "unpack", "info"):
                dest = work / f"dest-{name}"
                shutil.rmtree(dest, ignore_errors=True)
                argv = [sys.executable, "-m", "studypack", command, str(bundle)]
                argv += ["-q"] if command == "verify" else []
                argv += [str(dest), "-q"] if command == "unpack" else []
                got = measure(*argv)
                shutil.rmtree(dest, ignore_errors=True)
                said = (got["stderr"].strip() or got["stdout"].strip()).splitlines()
                rows.append((name, bundle.stat().st_size, command, got["rc"], got["wall"],
                             got["rss_mb"], said[0][:110] if said else ""))
                print(f"{name:26} {rows[-1][1] / 1024:>9,.0f} KB  {command:6} exit {got['rc']}"
                      f"  {got['wall']:6.2f} s  {got['rss_mb']:6.1f} MB  {rows[-1][6]}",
                      flush=True)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print("\n| case | bundle | command | exit | time | peak RSS | first line |")
    print("|---|---:|---|---:|---:|---:|---|")
    for name, size, command, rc, wall, rss, said in rows:
        print(f"| {name} | {size / 1024:,.0f} KB | {command} | {rc} | {wall:.2f} s | "
              f"{rss:.0f} MB | {said.replace('|', '/')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
