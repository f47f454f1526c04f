"""Hostile and broken bundles, crafted at test time with tarfile + zstandard.

Each case starts from a small, *valid* bag (``base_members``) and changes one thing,
so a refusal can only come from that one thing: the test suite checks that the
unchanged base verifies and unpacks cleanly (the control), and that every case is
refused with a sentence containing one of its ``expect`` words.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

import zstandard

from studypack.bundle.format import MARKER

BAG = "study"
PAYLOAD = {
    "data/study/analysis.py": b"print(sum(range(10)))\n",
    "data/study/input/numbers.csv": b"a,b\n1,2\n3,4\n",
    "data/outputs/result.txt": b"45\n",
    "data/REPLAY.md": b"# Replay\nRun replay.sh.\n",
}
# Where a bundle's members try to land: a folder beside the unpack destination
# (DEST/../outside). The tests create it and check that it does not change.
OUTSIDE = "outside"


@dataclass
class Member:
    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644
    devmajor: int = 0
    devminor: int = 0
    # a file whose bytes are produced lazily (the bomb): (size, byte)
    lazy: tuple[int, bytes] | None = None

    @property
    def size(self) -> int:
        return self.lazy[0] if self.lazy else len(self.data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def metadata(format_version: int = 1) -> dict:
    return {"format": "studypack", "format_version": format_version,
            "studypack_version": "0.1.0",
            "study": {"name": BAG, "title": "A hostile test study", "authors": []},
            "runs": [], "counts": {}}


def base_members(payload: dict[str, bytes] | None = None, *, meta: dict | None = None,
                 oxum: str | None = None, extra_manifest: Iterable[str] = ()) -> list[Member]:
    """A complete bag in the documented member order, manifests consistent."""
    payload = dict(PAYLOAD if payload is None else payload)
    if oxum is None:
        oxum = f"{sum(map(len, payload.values()))}.{len(payload)}"
    tags = {
        "bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
        "bag-info.txt": (f"Bag-Software-Agent: studypack tests\nPayload-Oxum: {oxum}\n"
                         "Bagging-Date: 2026-01-01\n").encode(),
        "studypack.json": (json.dumps(meta or metadata(), indent=2) + "\n").encode(),
    }
    manifest_lines = [f"{sha256(d)}  {p}\n" for p, d in payload.items()]
    manifest_lines += list(extra_manifest)
    manifest = "".join(manifest_lines).encode()
    tagmanifest = "".join(f"{sha256(d)}  {p}\n" for p, d in
                          [*tags.items(), ("manifest-sha256.txt", manifest)]).encode()
    members = [Member(f"{BAG}/{p}", d) for p, d in tags.items()]
    members += [Member(f"{BAG}/{p}", d) for p, d in payload.items()]
    members += [Member(f"{BAG}/manifest-sha256.txt", manifest),
                Member(f"{BAG}/tagmanifest-sha256.txt", tagmanifest)]
    return members


class _Zeros(io.RawIOBase):
    """``size`` bytes of one value, produced as they are read (the bomb's payload)."""

    def __init__(self, size: int, byte: bytes) -> None:
        self.left, self.byte = size, byte

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = self.byte * n
        self.left -= n
        return n


def tar_members(members: list[Member], out, fmt=tarfile.PAX_FORMAT,
                pax_overrides: dict | None = None) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=fmt,
                      encoding="utf-8", errors="surrogateescape") as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.pax_headers = dict((pax_overrides or {}).get(m.name, {}))
            info.type, info.mode, info.mtime = m.type, m.mode, 1_700_000_000
            info.linkname = m.linkname
            info.devmajor, info.devminor = m.devmajor, m.devminor
            if m.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = m.size
                source = _Zeros(*m.lazy) if m.lazy else io.BytesIO(m.data)
                tar.addfile(info, io.BufferedReader(source) if m.lazy else source)
            else:
                tar.addfile(info)


def bundle_bytes(members: list[Member], fmt=tarfile.PAX_FORMAT, *, marker: bool = True,
                 pax_overrides: dict | None = None) -> bytes:
    """The format marker frame (as studypack writes it), then one zstd frame of tar."""
    out = io.BytesIO()
    if marker:
        out.write(MARKER)
    cctx = zstandard.ZstdCompressor(level=3)
    with cctx.stream_writer(out, closefd=False) as writer:
        tar_members(members, writer, fmt, pax_overrides)
    return out.getvalue()


def _replace_member(members: list[Member], name: str, **changes) -> list[Member]:
    return [replace(m, **changes) if m.name == f"{BAG}/{name}" else m for m in members]


def _insert_payload(members: list[Member], *new: Member) -> list[Member]:
    """Insert before the manifests (where payload lives in the stream)."""
    at = next(i for i, m in enumerate(members) if m.name.endswith("/manifest-sha256.txt"))
    return members[:at] + list(new) + members[at:]


@dataclass(frozen=True)
class Case:
    name: str
    why: str
    expect: tuple[str, ...]            # the refusal sentence contains one of these (lowercase)
    build: Callable[[], bytes] = field(repr=False)


def _absolute_path() -> bytes:
    return bundle_bytes(_insert_payload(base_members(), Member("/tmp/studypack-hostile-abs.txt", b"x")))


def _dotdot() -> bytes:
    return bundle_bytes(_insert_payload(base_members(),
                                        Member(f"{BAG}/data/../../../{OUTSIDE}/dotdot.txt", b"x")))


def _symlink_outside() -> bytes:
    # a link to a folder outside, then a file written "through" it
    return bundle_bytes(_insert_payload(
        base_members(),
        Member(f"{BAG}/data/study/escape", type=tarfile.SYMTYPE, linkname=f"../../../../{OUTSIDE}"),
        Member(f"{BAG}/data/study/escape/through-symlink.txt", b"x")))


def _symlink_absolute() -> bytes:
    return bundle_bytes(_insert_payload(
        base_members(), Member(f"{BAG}/data/study/passwd", type=tarfile.SYMTYPE,
                               linkname="/etc/passwd")))


def _hardlink_outside() -> bytes:
    return bundle_bytes(_insert_payload(
        base_members(), Member(f"{BAG}/data/study/hard", type=tarfile.LNKTYPE,
                               linkname="/etc/passwd")))


def _hardlink_dotdot() -> bytes:
    return bundle_bytes(_insert_payload(
        base_members(), Member(f"{BAG}/data/study/hard", type=tarfile.LNKTYPE,
                               linkname=f"{BAG}/../../{OUTSIDE}/victim.txt")))


def _device() -> bytes:
    return bundle_bytes(_insert_payload(
        base_members(), Member(f"{BAG}/data/study/sda", type=tarfile.BLKTYPE,
                               devmajor=8, devminor=0)))


def _char_device() -> bytes:
    return bundle_bytes(_insert_payload(
        base_members(), Member(f"{BAG}/data/study/null", type=tarfile.CHRTYPE,
                               devmajor=1, devminor=3)))


def _fifo() -> bytes:
    return bundle_bytes(_insert_payload(
        base_members(), Member(f"{BAG}/data/study/pipe", type=tarfile.FIFOTYPE)))


def _duplicate() -> bytes:
    members = base_members()
    # the same path again, later in the stream, with other bytes: last-one-wins would hide it
    return bundle_bytes(_insert_payload(members, Member(f"{BAG}/data/study/analysis.py",
                                                        b"import os; os.system('rm -rf ~')\n")))


BOMB_BYTES = 100 * 1024 * 1024
TAG_BOMB_BYTES = 300 * 1024 * 1024


def _bomb() -> bytes:
    # bag-info declares 61 bytes of payload; one member inflates to 100 MiB of zeros
    members = base_members(oxum=f"{sum(map(len, PAYLOAD.values()))}.{len(PAYLOAD)}")
    return bundle_bytes(_insert_payload(members, Member(f"{BAG}/data/study/zeros.bin",
                                                        lazy=(BOMB_BYTES, b"\0"))))


def _tag_file_bomb() -> bytes:
    # outside data/ (a BagIt tag file), so not counted in Payload-Oxum: 300 MiB of zeros
    members = base_members()
    return bundle_bytes(members[:3] + [Member(f"{BAG}/extra-tags.txt", lazy=(TAG_BOMB_BYTES, b"\0"))]
                        + members[3:])


SPARSE_REAL_SIZE = 1 << 40


def _sparse_bomb() -> bytes:
    """A PAX 1.0 sparse member: 1 byte stored, 1 TiB of holes; bag-info declares 2 TiB,
    so only a bound on inflation (not the declared size) stops it."""
    members = base_members(oxum=f"{2 * SPARSE_REAL_SIZE}.{len(PAYLOAD) + 1}")
    sparse_map = b"1\n0\n1\n".ljust(tarfile.BLOCKSIZE, b"\0")   # one region: offset 0, 1 byte
    out = io.BytesIO(MARKER)
    out.seek(0, io.SEEK_END)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        at = next(i for i, m in enumerate(members) if m.name.endswith("/manifest-sha256.txt"))
        for i, m in enumerate(members):
            if i == at:
                info = tarfile.TarInfo(f"{BAG}/data/study/GNUSparseFile.0/holes.bin")
                info.size = len(sparse_map) + 1
                info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                                    "GNU.sparse.name": f"{BAG}/data/study/holes.bin",
                                    "GNU.sparse.realsize": str(SPARSE_REAL_SIZE)}
                tar.addfile(info, io.BytesIO(sparse_map + b"x"))
            info = tarfile.TarInfo(m.name)
            info.size = len(m.data)
            tar.addfile(info, io.BytesIO(m.data))
    out.write(zstandard.ZstdCompressor().compress(raw.getvalue()))
    return out.getvalue()


def _file_then_folder() -> bytes:
    # a file, then a member that needs the same path to be a folder
    return bundle_bytes(_insert_payload(base_members(),
                                        Member(f"{BAG}/data/outputs/result.txt/inner.txt", b"x")))


def _folder_then_file() -> bytes:
    return bundle_bytes(_insert_payload(
        base_members(), Member(f"{BAG}/data/study/sub", type=tarfile.DIRTYPE, mode=0o755),
        Member(f"{BAG}/data/study/sub", b"x")))


def _marker_says_newer() -> bytes:
    from studypack.bundle.format import SKIPPABLE_MAGIC
    import struct

    payload = b"studypack\nformat-version: 7\n"
    marker = struct.pack("<II", SKIPPABLE_MAGIC, len(payload)) + payload
    return marker + bundle_bytes(base_members(), marker=False)


def _deeply_nested_metadata() -> bytes:
    members = base_members()
    nested = b'{"format": "studypack", "format_version": 1, "x": ' + b"[" * 100_000 \
        + b"]" * 100_000 + b"}"
    return bundle_bytes(_replace_member(members, "studypack.json", data=nested))


def _metadata_wrong_types() -> bytes:
    meta = metadata()
    meta["study"] = "not a section"
    return bundle_bytes(base_members(meta=meta))


def _run_record_wrong_types() -> bytes:
    meta = metadata()
    meta["runs"] = [{"index": "one", "command": "rm -rf /"}]
    return bundle_bytes(base_members(meta=meta))


def _version_not_a_number() -> bytes:
    meta = metadata()
    meta["format_version"] = [1]
    return bundle_bytes(base_members(meta=meta))


def _empty() -> bytes:
    return b""


def _marker_only() -> bytes:
    return MARKER


def _truncated() -> bytes:
    whole = bundle_bytes(base_members(_bigger_payload()))
    return whole[: len(whole) * 2 // 3]


def _garbage_after_end() -> bytes:
    return bundle_bytes(base_members()) + b"\x00GARBAGE-AFTER-THE-END" * 64


def _garbage_after_tar_end() -> bytes:
    """Inside the compressed stream this time: a tar archive, its end, then more bytes
    (which `tar` ignores, and which could carry anything)."""
    tar = io.BytesIO()
    tar_members(base_members(), tar)
    return MARKER + zstandard.ZstdCompressor().compress(
        tar.getvalue() + b"HIDDEN PAYLOAD AFTER THE END OF THE ARCHIVE" * 100)


def _unknown_version() -> bytes:
    return bundle_bytes(base_members(meta=metadata(format_version=999)))


def _payload_disagrees() -> bytes:
    members = base_members()
    return bundle_bytes(_replace_member(members, "data/outputs/result.txt", data=b"46\n"))


def _manifest_lists_absent_file() -> bytes:
    ghost = f"{sha256(b'ghost')}  data/study/ghost.txt\n"
    return bundle_bytes(base_members(extra_manifest=[ghost]))


def _payload_not_in_manifest() -> bytes:
    # Payload-Oxum counts the stowaway, so only the manifest can tell
    stowaway = b"echo hi\n"
    oxum = f"{sum(map(len, PAYLOAD.values())) + len(stowaway)}.{len(PAYLOAD) + 1}"
    return bundle_bytes(_insert_payload(base_members(oxum=oxum),
                                        Member(f"{BAG}/data/study/stowaway.sh", stowaway)))


def _non_utf8_name() -> bytes:
    # GNU format stores the raw bytes; \udcff is how Python spells byte 0xff
    return bundle_bytes(_insert_payload(base_members(), Member(f"{BAG}/data/study/caf\udce9.txt",
                                                               b"x")), fmt=tarfile.GNU_FORMAT)


def _overlong_component() -> bytes:
    return bundle_bytes(_insert_payload(base_members(), Member(f"{BAG}/data/study/{'n' * 300}.txt",
                                                               b"x")))


def _overlong_path() -> bytes:
    deep = "/".join(["d" * 200] * 25)  # 5 000 bytes: longer than PATH_MAX
    return bundle_bytes(_insert_payload(base_members(), Member(f"{BAG}/data/study/{deep}/f.txt",
                                                               b"x")))


def _not_zstd() -> bytes:
    return b"PK\x03\x04 this is a zip file, not a studypack bundle" * 10


def _two_bags() -> bytes:
    other = [replace(m, name=m.name.replace(f"{BAG}/", "second/", 1)) for m in base_members()]
    return bundle_bytes(base_members() + other)


def _bigger_payload() -> dict[str, bytes]:
    import random

    rng = random.Random(8)
    payload = dict(PAYLOAD)
    payload["data/study/input/noise.bin"] = rng.randbytes(256 * 1024)
    return payload


# ----------------------------------------------------- second round (issue 18)

def members_tar(members: list[Member]) -> bytes:
    """The members as tar bytes without the end-of-archive blocks (so more can follow;
    no member here ends in a whole block of zeros)."""
    raw = io.BytesIO()
    tar_members(members, raw)
    body = raw.getvalue()
    return body[:len(body.rstrip(b"\0")) + (-len(body.rstrip(b"\0")) % 512)]  # no end blocks


def _repeated(block: bytes, count: int) -> bytes:
    """``count`` copies of ``block``, streamed through zstd (never whole in memory)."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as writer:
        chunk = block * max(1, (1 << 20) // len(block))
        per = len(chunk) // len(block)
        left = count
        while left >= per:
            writer.write(chunk)
            left -= per
        writer.write(block * left)
    return out.getvalue()


def _head_then(members: list[Member], middle: bytes) -> bytes:
    """The bag's first three members, ``middle`` (raw tar bytes), then the rest."""
    head, rest = members[:3], members[3:]
    return (MARKER + zstandard.ZstdCompressor().compress(members_tar(head))
            + middle + zstandard.ZstdCompressor().compress(members_tar(rest) + b"\0" * 1024))


def _pax_comment_repeated() -> bytes:
    """One folder member, again and again, each with a 1 MiB pax comment (the issue's
    was 60 MiB x 200): refused at the first header."""
    info = tarfile.TarInfo(f"{BAG}/data/study/")
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    info.pax_headers = {"comment": "x" * (1 << 20)}
    return _head_then(base_members(), _repeated(info.tobuf(tarfile.PAX_FORMAT), 5))


def _many_directory_headers() -> bytes:
    """The same folder header more times than a bundle may have members."""
    from studypack.bundle.format import MAX_MEMBERS

    info = tarfile.TarInfo(f"{BAG}/data/study")
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return _head_then(base_members(), _repeated(info.tobuf(tarfile.USTAR_FORMAT),
                                                 MAX_MEMBERS + 10))


def _zero_padding_after_end() -> bytes:
    """64 MiB of zeros after the end-of-archive blocks (the issue's was 64 GiB)."""
    tar = io.BytesIO()
    tar_members(base_members(), tar)
    return MARKER + zstandard.ZstdCompressor().compress(tar.getvalue()) \
        + _repeated(b"\0" * 4096, 64 * 256)


def _metadata_many_values() -> bytes:
    """A few KB of compressed studypack.json that parses into millions of objects."""
    meta = json.dumps(metadata())[:-1].encode() + b', "x": [' + b"{}," * 1_500_000 + b"{}]}"
    return bundle_bytes(_replace_member(base_members(), "studypack.json", data=meta))


def _metadata_too_big() -> bytes:
    meta = json.dumps({**metadata(), "x": "y" * (17 * 1024 * 1024)}).encode()
    return bundle_bytes(_replace_member(base_members(), "studypack.json", data=meta))


def _bag_info_of_newlines() -> bytes:
    members = base_members()
    info = next(m for m in members if m.name.endswith("/bag-info.txt"))
    return bundle_bytes(_replace_member(members, "bag-info.txt",
                                        data=info.data + b"\n" * (2 * 1024 * 1024)))


def _chained_pax_headers() -> bytes:
    """Thousands of pax headers in a row: tarfile follows them by recursion."""
    one = tarfile.TarInfo._create_pax_generic_header({"comment": "chained"}, tarfile.XHDTYPE,
                                                     "utf-8")
    return _head_then(base_members(), zstandard.ZstdCompressor().compress(one * 5000))


def _many_pax_records() -> bytes:
    info = tarfile.TarInfo(f"{BAG}/data/study/tagged.txt")
    info.pax_headers = {f"SCHILY.xattr.user.k{i}": "v" for i in range(1000)}
    return bundle_bytes(_insert_payload(base_members(), Member(info.name, b"")),
                        pax_overrides={info.name: info.pax_headers})


def _bag_named_star() -> bytes:
    """A bag folder named ``*``: once matched by a glob, it removed others' staging."""
    return bundle_bytes([replace(m, name=m.name.replace(f"{BAG}/", "*/", 1))
                         for m in base_members()])


def _fetch_bag(url: str, size: str = "11", *, in_manifest: bool = True,
               in_tagmanifest: bool = True) -> bytes:
    """A bag that keeps data/study/ref.csv outside by reference."""
    ref = b"ref,1\nref,2"
    payload = dict(PAYLOAD)
    oxum = f"{sum(map(len, payload.values())) + len(ref)}.{len(payload) + 1}"
    extra = [f"{sha256(ref)}  data/study/ref.csv\n"] if in_manifest else []
    members = base_members(payload, oxum=oxum, extra_manifest=extra)
    fetch = f"{url} {size} data/study/ref.csv\n".encode()
    members = members[:3] + [Member(f"{BAG}/fetch.txt", fetch)] + members[3:]
    if in_tagmanifest:
        members = _relisted_tagmanifest(members)
    return bundle_bytes(members)


def _relisted_tagmanifest(members: list[Member]) -> list[Member]:
    tags = [m for m in members if "/data/" not in m.name and
            not m.name.endswith("/tagmanifest-sha256.txt")]
    listing = "".join(f"{sha256(m.data)}  {m.name.split('/', 1)[1]}\n" for m in tags).encode()
    return _replace_member(members, "tagmanifest-sha256.txt", data=listing)


def _fetch_file_url_signed() -> bytes:
    """The issue's case: analysis.py removed, fetch.txt points at a local file."""
    bundle_members = [m for m in base_members() if not m.name.endswith("analysis.py")]
    return bundle_bytes(bundle_members[:3] + [Member(
        f"{BAG}/fetch.txt", b"file:///etc/hostname 10 data/study/analysis.py\n")]
        + bundle_members[3:])


def _skippable_frame(where: str) -> bytes:
    import struct
    from studypack.bundle.format import SKIPPABLE_MAGIC

    hidden = struct.pack("<II", SKIPPABLE_MAGIC, 1 << 20) + b"H" * (1 << 20)
    if where == "end":
        return bundle_bytes(base_members()) + hidden
    members = base_members()
    return (MARKER + zstandard.ZstdCompressor().compress(members_tar(members[:3])) + hidden
            + zstandard.ZstdCompressor().compress(members_tar(members[3:]) + b"\0" * 1024))


def _no_bagit_txt() -> bytes:
    return bundle_bytes([m for m in base_members() if not m.name.endswith("/bagit.txt")])


def _bagit_version_99() -> bytes:
    return bundle_bytes(_replace_member(base_members(), "bagit.txt",
                                        data=b"BagIt-Version: 99\nTag-File-Character-Encoding: UTF-8\n"))


def _unlisted_tag_file() -> bytes:
    members = base_members()
    return bundle_bytes(members[:3] + [Member(f"{BAG}/notes.txt", b"not covered\n")]
                        + members[3:])


CASES: list[Case] = [
    Case("absolute-path", "a member named /tmp/...", ("absolute",), _absolute_path),
    Case("dotdot", "a member with .. components", ("..",), _dotdot),
    Case("symlink-outside", "a symlink to a folder outside, then a file through it",
         ("link", "outside"), _symlink_outside),
    Case("symlink-absolute", "a symlink to /etc/passwd", ("link", "outside"), _symlink_absolute),
    Case("hardlink-outside", "a hard link to /etc/passwd", ("link", "outside"), _hardlink_outside),
    Case("hardlink-dotdot", "a hard link climbing out with ..", ("link", "outside", ".."),
         _hardlink_dotdot),
    Case("block-device", "a block device node", ("device",), _device),
    Case("char-device", "a character device node", ("device",), _char_device),
    Case("fifo", "a named pipe", ("fifo", "pipe", "special"), _fifo),
    Case("duplicate-member", "the same path twice with different bytes",
         ("twice", "duplicate"), _duplicate),
    Case("decompression-bomb", "61 bytes declared, 100 MiB inside",
         ("declared", "bomb"), _bomb),
    Case("sparse-bomb", "a 1 TiB sparse file in a 1 KB bundle declaring 2 TiB",
         ("bomb",), _sparse_bomb),
    Case("tag-file-bomb", "a 300 MiB tag file outside the payload", ("bomb", "large"),
         _tag_file_bomb),
    Case("truncated", "the stream cut at two thirds", ("truncated", "incomplete", "ends"),
         _truncated),
    Case("garbage-after-end", "bytes after the zstd frame", ("after the end", "after its end", "trailing"),
         _garbage_after_end),
    Case("garbage-after-tar-end", "bytes after the tar archive's end, inside the zstd stream",
         ("after the end",), _garbage_after_tar_end),
    Case("unknown-version", "format_version 999", ("newer", "version"), _unknown_version),
    Case("marker-says-newer", "the marker frame announces format 7", ("version 7",),
         _marker_says_newer),
    Case("metadata-deeply-nested", "studypack.json nested 100 000 levels deep",
         ("not valid json", "nested more than"), _deeply_nested_metadata),
    Case("metadata-wrong-types", "studypack.json whose study section is a string",
         ("malformed",), _metadata_wrong_types),
    Case("run-record-wrong-types", "a run record with text where numbers belong",
         ("malformed",), _run_record_wrong_types),
    Case("version-not-a-number", "format_version is a list", ("malformed", "version"),
         _version_not_a_number),
    Case("payload-disagrees", "an output altered after the manifest was written",
         ("checksum", "does not match", "altered"), _payload_disagrees),
    Case("manifest-lists-absent-file", "the manifest names a file that is not there",
         ("missing", "absent", "not in the bundle"), _manifest_lists_absent_file),
    Case("payload-not-in-manifest", "a payload file no checksum covers",
         ("not listed", "not in the manifest", "no checksum", "unlisted"), _payload_not_in_manifest),
    Case("non-utf8-name", "a member name that is not UTF-8", ("utf-8",), _non_utf8_name),
    Case("overlong-component", "a 304-byte file name", ("long",), _overlong_component),
    Case("overlong-path", "a 5 000-byte path", ("long",), _overlong_path),
    Case("not-zstd", "a zip file renamed .studypack", ("not a studypack", "zstd", "not a zstd"),
         _not_zstd),
    Case("file-then-folder", "a file used as a folder by a later member",
         ("both as a file and as a folder",), _file_then_folder),
    Case("folder-then-file", "a folder and a file at the same path",
         ("both as a file and as a folder",), _folder_then_file),
    Case("empty-file", "zero bytes", ("empty",), _empty),
    Case("marker-only", "the format marker and nothing else", ("empty", "truncated"),
         _marker_only),
    Case("two-bags", "two bag folders in one bundle", ("outside its bag folder",),
         _two_bags),
    # second round (issue 18): bounded work, whole signatures, BagIt as bagit.py reads it
    Case("pax-comment-repeated", "a folder header repeated with a 1 MiB pax comment",
         ("pax header of", "over the bound"), _pax_comment_repeated),
    Case("many-directory-headers", "300 010 copies of one folder header",
         ("more than 300,000 members",), _many_directory_headers),
    Case("oxum-declares-700k-files", "bag-info.txt declares 700 004 payload files",
         ("declares 700,004 payload files",),
         lambda: bundle_bytes(base_members(oxum=f"{sum(map(len, PAYLOAD.values()))}.700004"))),
    Case("zero-padding-after-end", "64 MiB of zeros after the end of the archive",
         ("padding after the end", "over the bound"), _zero_padding_after_end),
    Case("metadata-many-values", "studypack.json holding 1.5 million empty objects",
         ("more than 1,000,000 values",), _metadata_many_values),
    Case("metadata-too-big", "a 17 MiB studypack.json", ("over the bound of 16 mib",),
         _metadata_too_big),
    Case("bag-info-of-newlines", "bag-info.txt with 2 MiB of newlines",
         ("bag-info.txt is", "over the bound of 1 mib"), _bag_info_of_newlines),
    Case("chained-pax-headers", "5000 pax headers in a row", ("chained pax headers",),
         _chained_pax_headers),
    Case("many-pax-records", "1000 pax records for one member", ("pax records",),
         _many_pax_records),
    Case("bag-named-star", "the bag folder is named *", ("not a plain file name",),
         _bag_named_star),
    Case("fetch-not-in-tagmanifest", "fetch.txt left out of the tag manifest",
         ("fetch.txt is not listed in tagmanifest",),
         lambda: _fetch_bag("https://example.org/ref.csv", in_tagmanifest=False)),
    Case("fetch-file-url", "analysis.py removed, fetch.txt names file:///etc/hostname",
         ("http or https",), _fetch_file_url_signed),
    Case("fetch-without-size", "a fetch.txt line with '-' for its size",
         ("no size",), lambda: _fetch_bag("https://example.org/ref.csv", "-")),
    Case("fetch-without-sha256", "a fetched file the manifest gives no sha256 for",
         ("no sha256",), lambda: _fetch_bag("https://example.org/ref.csv", in_manifest=False)),
    Case("skippable-frame-after-end", "1 MiB hidden in a skippable frame after the end",
         ("skippable zstd frame",), lambda: _skippable_frame("end")),
    Case("skippable-frame-inside", "1 MiB hidden in a skippable frame between frames",
         ("skippable zstd frame",), lambda: _skippable_frame("inside")),
    Case("no-bagit-txt", "a bag without bagit.txt", ("no bagit.txt",), _no_bagit_txt),
    Case("bagit-version-99", "bagit.txt declares version 99", ("version '99'",),
         _bagit_version_99),
    Case("unlisted-tag-file", "a tag file the tag manifest does not list",
         ("notes.txt is not listed in tagmanifest",), _unlisted_tag_file),
]

CASES_BY_NAME = {c.name: c for c in CASES}


def valid_bundle() -> bytes:
    """The control: what every case starts from."""
    return bundle_bytes(base_members())
