"""Write a bundle: one pass over the files, hashing while zstd compresses.

The stream is: a skippable frame with the format marker, then zstd frames holding a
pax tar whose members are, in order, the head tag files (bagit.txt, bag-info.txt,
studypack.json, fetch.txt), the payload under data/, and the two manifests, which can
only be written once every payload byte has been hashed.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from ..errors import UsageError, WriteError
from ..fsutil import atomic_output, atomic_write_text, utc_now_iso
from ..hashing import file_key
from ..progress import CancelToken, Progress, Reporter, reporter, token
from . import format as fmt
from .portable import is_plain_name
from .tagfiles import encode_path

CHUNK = 4 * 1024 * 1024
# A frame switch flushes zstd's worker pipeline; only large precompressed members
# (a saved image, big wheels or archives) are worth a fast frame of their own.
FAST_FRAME_MIN = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE


@dataclass
class Member:
    arcname: str                   # POSIX path relative to the bag directory
    size: int
    source: Path | None = None     # a file on disk ...
    data: bytes | None = None      # ... or bytes made in memory
    mode: int = 0o644
    mtime: int = 0
    # (sha256, hashing.file_key) of the source as hashed before: used only when the
    # file opened for packing has exactly that key, else it is hashed again
    known_sha256: tuple[str, tuple[int, ...]] | None = None

    @classmethod
    def from_bytes(cls, arcname: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> "Member":
        return cls(arcname, len(data), data=data, mode=mode, mtime=mtime)

    @classmethod
    def from_file(cls, arcname: str, path: Path) -> "Member":
        return cls.from_stat(arcname, path, path.stat())

    @classmethod
    def from_stat(cls, arcname: str, path: Path, st: os.stat_result) -> "Member":
        mode = 0o755 if st.st_mode & 0o111 else 0o644
        return cls(arcname, st.st_size, source=path, mode=mode, mtime=int(st.st_mtime))

    @property
    def precompressed(self) -> bool:
        return self.arcname.lower().endswith(fmt.PRECOMPRESSED_SUFFIXES) or \
            self.arcname == fmt.IMAGE_TAR

    @property
    def frame_kind(self) -> str:
        """"fast" (level 1) for a large member that is compressed already, else "main"."""
        return "fast" if self.precompressed and self.size >= FAST_FRAME_MIN else "main"


@dataclass
class PackPlan:
    bag_name: str
    bag_info: dict[str, str] = field(default_factory=dict)
    metadata: bytes = b"{}"                  # studypack.json
    fetch: list[tuple[str, int, str, str]] = field(default_factory=list)  # url,size,arcname,sha256
    payload: list[Member] = field(default_factory=list)

    @property
    def payload_bytes(self) -> int:
        return sum(m.size for m in self.payload) + sum(f[1] for f in self.fetch)

    @property
    def payload_count(self) -> int:
        return len(self.payload) + len(self.fetch)


@dataclass
class PackResult:
    path: Path
    sha256: str
    size: int
    files: int
    payload_bytes: int


class _HashingFile:
    """Counts and hashes the compressed bytes on their way to disk (the sidecar)."""

    def __init__(self, raw):
        self.raw, self.sha256, self.size = raw, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self):
        self.raw.flush()

    def copy_from(self, source, length: int, buffer: bytearray) -> None:
        """Copy ``length`` bytes of ``source``: each block is hashed in a thread while
        it is written (both let go of the GIL), the next one read into the other half
        of ``buffer`` meanwhile."""
        half = len(buffer) // 2
        views = (memoryview(buffer)[:half], memoryview(buffer)[half:2 * half])
        with ThreadPoolExecutor(1, thread_name_prefix="studypack-hash") as pool:
            hashing = None
            turn = 0
            while length:
                block = views[turn]
                n = source.readinto(block[:min(half, length)])
                if not n:
                    raise WriteError("A prepacked part of the bundle was cut short.")
                block = block[:n]
                if hashing is not None:
                    hashing.result()     # the previous block first: one sha256, in order
                hashing = pool.submit(self.sha256.update, block)
                self.raw.write(block)
                self.size += n
                length -= n
                turn = 1 - turn
            if hashing is not None:
                hashing.result()


def compressor(kind: str, level: int, threads: int) -> zstandard.ZstdCompressor:
    """The compressor of a frame of ``kind`` ("main" or "fast"): every frame of a bundle,
    prepacked or not, is made by one of these two."""
    return zstandard.ZstdCompressor(level=level if kind == "main" else 1, threads=threads,
                                    write_checksum=True)


class _FrameWriter:
    """A zstd writer that can end a frame and go on at another level: members that are
    already compressed get a fast frame instead of a second slow compression. Frames
    compressed earlier (:mod:`studypack.bundle.prepack`) are copied in between."""

    def __init__(self, out, level: int, threads: int):
        self.out = out
        self.params = {kind: compressor(kind, level, threads) for kind in ("main", "fast")}
        self.kind = "main"
        self.pending = False     # bytes written since the frame began
        self.writer = self._open("main")

    def _open(self, kind):
        return self.params[kind].stream_writer(self.out, closefd=False, write_return_read=True)

    def use(self, kind: str) -> None:
        if kind != self.kind:
            self.end_frame()
            self.writer = self._open(kind)
            self.kind = kind

    def end_frame(self) -> None:
        if self.pending:
            self.writer.flush(zstandard.FLUSH_FRAME)
            self.pending = False

    def write(self, data) -> None:
        self.writer.write(data)
        self.pending = True

    def splice(self, source, length: int, buffer: bytearray) -> None:
        """Copy ``length`` bytes of whole zstd frames from ``source`` (at its position)
        between this stream's frames."""
        self.end_frame()
        self.out.copy_from(source, length, buffer)

    def close(self) -> None:
        self.writer.flush(zstandard.FLUSH_FRAME)


def tar_header(arcname: str, size: int, mode: int, mtime: int, kind=tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(arcname)
    info.size, info.mode, info.mtime, info.type = size, mode, mtime, kind
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def bagit_txt() -> bytes:
    return b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def bag_info_txt(plan: PackPlan) -> bytes:
    labels = {"Bagging-Date": utc_now_iso()[:10],
              "Payload-Oxum": f"{plan.payload_bytes}.{plan.payload_count}",
              **plan.bag_info}
    lines = []
    for key, value in labels.items():
        for line in str(value).splitlines() or [""]:
            lines.append(f"{key}: {line}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def fetch_txt(plan: PackPlan) -> bytes:
    return "".join(f"{url} {size} {encode_path(arc)}\n"
                   for url, size, arc, _ in plan.fetch).encode()


def _manifest(entries: dict[str, str]) -> bytes:
    """RFC 8493: a path's CR, LF and % are percent-encoded in manifests."""
    return "".join(f"{digest}  {encode_path(name)}\n"
                   for name, digest in entries.items()).encode("utf-8")


def check_arcname(name: str) -> None:
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts) or \
            any(c in name for c in "\n\r\\\0"):
        raise UsageError(f"Cannot pack a file named {name!r}: its path is not portable.")
    if len(name.encode("utf-8", "surrogateescape")) > fmt.MAX_NAME_BYTES - 256 or any(
            len(p.encode("utf-8", "surrogateescape")) > fmt.MAX_COMPONENT_BYTES for p in parts):
        raise UsageError(f"Cannot pack a file named {name[:80]!r}…: its path is too long.")


def check_names(plan: PackPlan) -> None:
    """What a reader would refuse is never written: unportable paths, more members
    than a bundle may hold, a fetched file twice."""
    if not is_plain_name(plan.bag_name):
        raise UsageError(f"Cannot name a bundle's folder {plan.bag_name!r}: use letters, "
                         "digits, '.', '_' and '-'.")
    if len(plan.payload) + 16 > fmt.MAX_MEMBERS:
        raise UsageError(f"The study has {len(plan.payload):,} files to pack; a bundle holds "
                         f"at most {fmt.MAX_MEMBERS:,}.",
                         "Pack many small files into an archive (zip or tar) inside the study.")
    if len(plan.metadata) > fmt.TAG_FILE_LIMITS[fmt.METADATA]:
        raise UsageError(f"The study's metadata ({len(plan.metadata):,} bytes) is over the "
                         f"bound of {fmt.kib(fmt.TAG_FILE_LIMITS[fmt.METADATA])}.")
    for m in plan.payload:
        check_arcname(m.arcname)
    for _, _, arcname, _ in plan.fetch:
        check_arcname(arcname)


def pack(plan: PackPlan, out_path: str | os.PathLike, *, level: int = 3, threads: int = -1,
         overwrite: bool = False, report: Reporter | None = None,
         cancel: CancelToken | None = None, prepacked=None) -> PackResult:
    """Write ``plan`` to ``out_path`` atomically, then the ``.sha256`` sidecar.

    ``prepacked`` (a :class:`studypack.bundle.prepack.Prepack`) offers runs of members
    compressed earlier; each is copied in only where the plan has exactly those members
    and their files are unchanged, else the members are packed here as usual."""
    report, cancel = reporter(report), token(cancel)
    out_path = Path(out_path)
    if not 1 <= level <= 22:
        raise UsageError(f"The compression level must be between 1 and 22, not {level}.")
    check_names(plan)
    total = plan.payload_bytes
    done = 0
    payload_digests: dict[str, str] = {}
    tag_digests: dict[str, str] = {}
    bag = plan.bag_name
    buffer = bytearray(CHUNK)

    with atomic_output(out_path, overwrite=overwrite) as raw:
        raw.write(fmt.MARKER)
        hashed = _HashingFile(raw)
        hashed.sha256.update(fmt.MARKER)
        hashed.size += len(fmt.MARKER)
        zw = _FrameWriter(hashed, level, threads)

        def put_bytes(arcname: str, data: bytes, digests: dict[str, str]) -> None:
            zw.write(tar_header(f"{bag}/{arcname}", len(data), 0o644, 0))
            zw.write(data)
            zw.write(b"\0" * (-len(data) % BLOCK))
            digests[arcname] = hashlib.sha256(data).hexdigest()

        put_bytes(fmt.BAGIT_TXT, bagit_txt(), tag_digests)
        put_bytes(fmt.BAG_INFO, bag_info_txt(plan), tag_digests)
        put_bytes(fmt.METADATA, plan.metadata, tag_digests)
        if plan.fetch:
            put_bytes(fmt.FETCH_TXT, fetch_txt(plan), tag_digests)
        for url, size, arcname, digest in plan.fetch:
            payload_digests[arcname] = digest

        report(Progress("pack", 0, total, "packing"))
        index = 0
        while index < len(plan.payload):
            cancel.check()
            chunk = prepacked.take(plan, index, level) if prepacked is not None else None
            if chunk is not None:   # these members, compressed while the study ran
                chunk.copy_to(zw, buffer)
                for entry in chunk.entries:
                    payload_digests[entry.arcname] = entry.sha256
                    done += entry.size
                index += len(chunk.entries)
                report(Progress("pack", done, total, chunk.entries[-1].arcname))
                continue
            member = plan.payload[index]
            index += 1
            zw.use(member.frame_kind)
            zw.write(tar_header(f"{bag}/{member.arcname}", member.size, member.mode, member.mtime))
            if member.data is not None:
                zw.write(member.data)
                payload_digests[member.arcname] = hashlib.sha256(member.data).hexdigest()
                written = member.size
            else:
                written = _copy_file(member, zw, buffer, payload_digests, cancel)
            zw.write(b"\0" * (-member.size % BLOCK))
            done += written
            report(Progress("pack", done, total, member.arcname))
        zw.use("main")
        manifest = _manifest(payload_digests)
        put_bytes(fmt.MANIFEST, manifest, tag_digests)
        put_bytes(fmt.TAGMANIFEST, _manifest(tag_digests), {})
        zw.write(b"\0" * (2 * BLOCK))  # end-of-archive: two zero blocks
        zw.close()
        digest = hashed.sha256.hexdigest()
        size = hashed.size

    sidecar = Path(fmt.sidecar_path(out_path))
    try:
        atomic_write_text(sidecar, f"{digest}  {out_path.name}\n")
    except WriteError:
        out_path.unlink(missing_ok=True)
        raise
    report(Progress("pack", total, total, f"wrote {out_path.name}"))
    return PackResult(out_path, digest, size, plan.payload_count, total)


def _copy_file(member: Member, zw: _FrameWriter, buffer: bytearray,
               digests: dict[str, str], cancel: CancelToken) -> int:
    sha = hashlib.sha256()
    view = memoryview(buffer)
    remaining = member.size
    try:
        fh = open(member.source, "rb", buffering=0)
    except OSError as exc:
        raise UsageError(f"Cannot read {member.source}: {exc.strerror}.") from None
    with fh:
        known = member.known_sha256
        if known is not None and known[1] != file_key(os.fstat(fh.fileno())):
            known = None   # changed since it was hashed: never trust that digest
        while remaining:
            n = fh.readinto(view[:min(CHUNK, remaining)])
            if not n:
                raise UsageError(f"{member.source} shrank while it was being packed.",
                                 "Do not change the study's files while packing.")
            chunk = view[:n]
            if known is None:
                sha.update(chunk)
            zw.write(chunk)
            remaining -= n
            if n == CHUNK:
                cancel.check()
        if fh.read(1):
            raise UsageError(f"{member.source} grew while it was being packed.",
                             "Do not change the study's files while packing.")
        if known is not None and known[1] != file_key(os.fstat(fh.fileno())):
            raise UsageError(f"{member.source} changed while it was being packed.",
                             "Do not change the study's files while packing.")
    digests[member.arcname] = known[0] if known is not None else sha.hexdigest()
    return member.size
