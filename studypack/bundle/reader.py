"""Read a bundle safely: info (head only), verify (every checksum), unpack.

A bundle may come from a stranger. Every member is checked before a byte of it is
written: one top-level bag folder, no absolute or ``..`` paths, regular files and
folders only (no links, devices or FIFOs), no duplicates, bounded names and bounded
sizes (the payload may not exceed what bag-info.txt declared). Any problem ends in a
:class:`~studypack.errors.BundleError` naming the member.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import struct
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import zstandard

from ..errors import BundleError, UnsafeBundleError, UnsupportedFormatError, UsageError, \
    WriteError, write_error
from ..fsutil import remove_stale_partials, temp_path_for
from ..progress import CancelToken, Progress, Reporter, reporter, token
from ..safetext import printable
from . import format as fmt
from . import portable
from .frames import check_frames
from .inflate import Inflated
from .manifests import compare
from .metadata_checks import check_metadata, malformed
from .tagfiles import check_bagit_txt, load_json, parse_fetch, parse_tag_lines
from .tarheaders import BoundedTarInfo, TarBoundError

HEAD_CHUNK = 64 * 1024              # info reads only the first members
CHUNK = 1024 * 1024
TAG_ALLOWANCE = fmt.TAG_ALLOWANCE   # room for tag files beyond the declared payload
# Even when the declared size is honest-looking, a bundle may not inflate to more than
# this many times its own size (plus a slack): a 1 KB bundle declaring a 1 TB sparse or
# all-zero file would otherwise keep verify busy for hours. Real data is far below it.
MAX_INFLATION = 1000
INFLATION_SLACK = 1024 * 1024 * 1024


@dataclass
class BundleInfo:
    path: Path
    bag_name: str
    format_version: int
    metadata: dict
    bag_info: dict[str, str]
    compressed_size: int

    @property
    def study(self) -> dict:
        return self.metadata.get("study", {})

    @property
    def runs(self) -> list[dict]:
        return self.metadata.get("runs", [])


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    payload_bytes: int = 0
    sidecar: str = "absent"          # "ok" | "mismatch" | "absent"
    tagmanifest: bytes = b""         # for signature checks

    def to_json(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "problems": self.problems,
                "sidecar": self.sidecar}


@dataclass
class UnpackResult:
    bag_dir: Path
    files: int
    bytes: int
    verify: VerifyResult


# ----------------------------------------------------------------------- streaming

class _CountingReader(io.RawIOBase):
    """Reads the compressed file, hashing it for the .sha256 sidecar on the way."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.sha256, self.count = fh, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self.fh.readinto(b)
        if n:
            self.sha256.update(memoryview(b)[:n])
            self.count += n
        return n or 0


def _open_raw(path: Path) -> BinaryIO:
    if not path.exists():
        raise UsageError(f"{path} does not exist.")
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a .studypack bundle.")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror}.") from None


def _check_marker(fh: BinaryIO, path: Path) -> None:
    head = fh.read(8)
    if len(head) < 8:
        raise BundleError(f"{path.name} is empty or truncated: it is not a studypack bundle.")
    magic, length = struct.unpack("<II", head)
    if magic == fmt.SKIPPABLE_MAGIC and length <= 4096:
        payload = fh.read(length)
        version = _marker_version(payload)
        if version is not None and version not in fmt.SUPPORTED_VERSIONS:
            raise _newer(path, version)
        fh.seek(0)
        return
    if head[:4] == fmt.ZSTD_FRAME_MAGIC:
        fh.seek(0)
        return
    raise BundleError(f"{path.name} is not a studypack bundle (it is not zstd-compressed).")


def _marker_version(payload: bytes) -> int | None:
    for line in payload.decode("ascii", "replace").splitlines():
        if line.startswith("format-version:"):
            try:
                return int(line.split(":", 1)[1])
            except ValueError:
                return None
    return None


def _newer(path: Path, version) -> UnsupportedFormatError:
    return UnsupportedFormatError(
        f"{path.name} uses studypack format version {version}, which this studypack "
        f"(format {max(fmt.SUPPORTED_VERSIONS)}) does not know.",
        "Upgrade studypack: pip install --upgrade studypack")


class _Stream:
    """The tar stream of a bundle, member by member, with the safety checks."""

    def __init__(self, path: Path, ahead: bool = True):
        self.path = Path(path)
        self.raw = _open_raw(self.path)
        _check_marker(self.raw, self.path)
        if ahead:   # verify and unpack: no byte outside the zstd frames (info reads the head)
            try:
                check_frames(self.raw, self.path.name)
            except BaseException:
                self.raw.close()
                raise
        self.counting = _CountingReader(self.raw)
        self.zreader = zstandard.ZstdDecompressor().stream_reader(
            io.BufferedReader(self.counting, CHUNK), read_across_frames=True,
            read_size=CHUNK)
        # tarfile parses every header; the bytes come from a forward-only reader that
        # inflates ahead on a worker thread (see inflate.py) unless only the head is read.
        self.data = Inflated(self.zreader, ahead=ahead, chunk=CHUNK if ahead else HEAD_CHUNK)
        try:
            self.tar = tarfile.open(fileobj=self.data, mode="r:", tarinfo=BoundedTarInfo,
                                    encoding="utf-8", errors="strict")
        except TarBoundError as exc:
            self.close()
            raise UnsafeBundleError(f"{self.path.name} {exc}.") from None
        except Exception as exc:
            self.close()
            raise _damaged(self.path, None, exc) from None
        self.bag: str | None = None
        self.count = 0                   # members so far, bounded by MAX_MEMBERS
        self.seen: set[str] = set()
        self.payload_files = 0
        self.folders: set[str] = set()   # every folder a member is, or sits in
        self.declared_bytes: int | None = None
        self.declared_files: int | None = None
        self.payload_bytes = 0           # data/ members: bounded by Payload-Oxum exactly
        self.inflation_limit = MAX_INFLATION * self.path.stat().st_size + INFLATION_SLACK
        self.tag_bytes = 0               # everything else: bounded by TAG_ALLOWANCE

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if getattr(self, "data", None) is not None:
                self.data.close()
        with contextlib.suppress(Exception):
            self.raw.close()

    def members(self) -> Iterator[tuple[str, tarfile.TarInfo]]:
        """Yield (relative name inside the bag, member) after the safety checks."""
        while True:
            try:
                member = self.tar.next()
            except TarBoundError as exc:
                raise UnsafeBundleError(f"{self.path.name} {exc}.") from None
            except Exception as exc:
                raise _damaged(self.path, None, exc) from None
            if member is None:
                return
            self.tar.members.clear()     # tarfile keeps every header otherwise
            self.count += 1
            if self.count > fmt.MAX_MEMBERS:
                raise UnsafeBundleError(
                    f"{self.path.name} has more than {fmt.MAX_MEMBERS:,} members, over the "
                    "bound for one bundle.",
                    "Pack many small files into an archive (zip or tar) inside the study.")
            yield self._check(member), member

    def _check(self, member: tarfile.TarInfo) -> str:
        name = member.name
        shown = name.encode("utf-8", "backslashreplace").decode("utf-8")[:200]
        try:
            encoded = name.encode("utf-8")
        except UnicodeEncodeError:
            raise UnsafeBundleError(f"The bundle has a member whose name is not UTF-8: {shown!r}.")
        if len(encoded) > fmt.MAX_NAME_BYTES or any(
                len(p.encode()) > fmt.MAX_COMPONENT_BYTES for p in name.split("/")):
            raise UnsafeBundleError(f"The bundle has a member with an overlong name: {shown[:80]!r}….")
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise UnsafeBundleError(f"The bundle has a member with an absolute path: {shown!r}.")
        parts = name.rstrip("/").split("/")
        if ".." in parts:
            raise UnsafeBundleError(f"The bundle has a member whose path climbs out with '..': {shown!r}.")
        if any(p in ("", ".") for p in parts) or "\\" in name or "\0" in name:
            raise UnsafeBundleError(f"The bundle has a member with a malformed path: {shown!r}.")
        if member.issym() or member.islnk():
            raise UnsafeBundleError(
                f"The bundle has a link member {shown!r} -> {member.linkname!r}; "
                "studypack bundles never contain links.")
        if not (member.isreg() or member.isdir()):
            raise UnsafeBundleError(
                f"The bundle has a device, FIFO or special file: {shown!r}.")
        if self.bag is None:
            if not portable.is_plain_name(parts[0]):
                raise UnsafeBundleError(
                    f"The bundle's bag folder is named {printable(parts[0])!r}, which is not "
                    "a plain file name (letters, digits, '.', '_', '-').")
            self.bag = parts[0]
        if parts[0] != self.bag:
            raise UnsafeBundleError(
                f"The bundle has a member outside its bag folder {self.bag!r}: {shown!r}.")
        rel = "/".join(parts[1:])
        self._check_folder_file_conflict(rel, member, shown)
        if member.isreg():
            if not rel:
                raise UnsafeBundleError(f"The bundle's bag folder {shown!r} is a file.")
            if rel in self.seen:
                raise UnsafeBundleError(f"The bundle contains {shown!r} twice.")
            self.seen.add(rel)
            # Checked at the member's header, before any of its bytes are inflated.
            if rel.startswith(fmt.PAYLOAD + "/"):
                self.payload_files += 1
                self.payload_bytes += member.size
                if self.payload_bytes > (self.declared_bytes or 0):
                    raise UnsafeBundleError(
                        f"The bundle unpacks to more than its declared payload size "
                        f"(Payload-Oxum, at {shown!r}): it may be a decompression bomb.")
                if self.payload_bytes > self.inflation_limit:
                    raise UnsafeBundleError(
                        f"The bundle would inflate to more than {MAX_INFLATION} times its own "
                        f"size (at {shown!r}): it may be a decompression bomb.")
                if self.payload_files > (self.declared_files or 0):
                    raise UnsafeBundleError(
                        f"The bundle holds more payload files than the {self.declared_files} "
                        f"its Payload-Oxum declares (at {shown!r}).")
            else:
                self.tag_bytes += member.size
                if self.tag_bytes > TAG_ALLOWANCE:
                    raise UnsafeBundleError(
                        f"The bundle's tag files are implausibly large (at {shown!r}): "
                        "it may be a decompression bomb.")
            limit = fmt.TAG_FILE_LIMITS.get(rel)
            if limit is not None and member.size > limit:
                raise UnsafeBundleError(
                    f"The bundle's {rel} is {member.size:,} bytes, over the bound of "
                    f"{fmt.kib(limit)} for that tag file.")
        return rel

    def _check_folder_file_conflict(self, rel: str, member: tarfile.TarInfo, shown: str) -> None:
        """A path may not be a file for one member and a folder for another: unpacking
        would fail half-way, or (on other tools) replace one with the other."""
        parents = rel.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            folder = "/".join(parents[:depth])
            if folder in self.seen:
                raise UnsafeBundleError(
                    f"The bundle uses {folder!r} both as a file and as a folder (at {shown!r}).")
            self.folders.add(folder)
        if member.isdir():
            if rel in self.seen:
                raise UnsafeBundleError(
                    f"The bundle uses {rel!r} both as a file and as a folder (at {shown!r}).")
            self.folders.add(rel)
        elif rel in self.folders:
            raise UnsafeBundleError(
                f"The bundle uses {rel!r} both as a file and as a folder (at {shown!r}).")

    def read_small(self, member: tarfile.TarInfo) -> bytes:
        try:
            return self.tar.extractfile(member).read()
        except Exception as exc:
            raise _damaged(self.path, member.name, exc) from None

    def copy(self, member: tarfile.TarInfo, out: BinaryIO | None, cancel: CancelToken,
             on_chunk=None) -> str:
        """Hash a member's bytes (and write them to ``out``); return the sha256."""
        sha = hashlib.sha256()
        try:
            if member.sparse is not None:   # tarfile fills the holes
                src = self.tar.extractfile(member)
                read = src.read
            else:  # the bytes follow the header: hand out views of the inflated chunks
                self.data.seek(member.offset_data)
                read = self.data.view
            remaining = member.size
            while remaining:
                chunk = read(min(CHUNK, remaining))
                if not chunk:
                    raise EOFError("unexpected end of data")
                sha.update(chunk)
                if out is not None:
                    out.write(chunk)
                remaining -= len(chunk)
                if on_chunk:
                    on_chunk(len(chunk))
                cancel.check()
        except (tarfile.TarError, zstandard.ZstdError, EOFError, ValueError) as exc:
            raise _damaged(self.path, member.name, exc) from None
        return sha.digest()

    def finish(self) -> None:
        """After the last member: only zero padding may follow (bounded), then the
        file's end."""
        padding = 0
        try:
            while True:
                rest = self.data.read(CHUNK)
                if not rest:
                    break
                if rest.strip(b"\0"):
                    raise BundleError(
                        f"{self.path.name} has unexpected data after the end of the archive.")
                padding += len(rest)
                if padding > fmt.MAX_PADDING_BYTES:
                    raise UnsafeBundleError(
                        f"{self.path.name} has more than {fmt.kib(fmt.MAX_PADDING_BYTES)} of "
                        "zero padding after the end of the archive, over the bound.")
            if self.raw.read(1):
                raise BundleError(
                    f"{self.path.name} has unexpected data after the end of the archive.")
        except zstandard.ZstdError:
            raise BundleError(
                f"{self.path.name} has unexpected data after the end of the archive.") from None


def _damaged(path: Path, member: str | None, exc: Exception) -> BundleError:
    text = str(exc).lower()
    where = f" (at {member!r})" if member else ""
    if isinstance(exc, (EOFError,)) or "unexpected end" in text or "truncated" in text \
            or "incomplete" in text:
        return BundleError(f"{path.name} is truncated{where}: the download or copy was cut short.",
                           "Fetch the bundle again and compare it with its .sha256 file.")
    if isinstance(exc, UnicodeError):
        return UnsafeBundleError(f"{path.name} has a member whose name is not UTF-8{where}.")
    if "unknown frame descriptor" in text:  # zstd met bytes that start no frame
        return BundleError(
            f"{path.name} holds data that is not part of its compressed stream{where}: bytes "
            "were appended after its end, or it is damaged.",
            "Fetch the bundle again and compare it with its .sha256 file.")
    return BundleError(f"{path.name} is damaged{where}: {exc}.",
                       "Fetch the bundle again and compare it with its .sha256 file.")


def _read_head(stream: _Stream) -> tuple[dict, dict[str, str], dict[str, bytes]]:
    """Read bagit.txt, bag-info.txt and studypack.json from the start of the stream."""
    found: dict[str, bytes] = {}
    for count, (rel, member) in enumerate(stream.members()):
        if member.isreg() and rel in fmt.HEAD_TAG_FILES:
            found[rel] = stream.read_small(member)
            if rel == fmt.BAGIT_TXT:
                check_bagit_txt(found[rel], stream.path.name)
            if rel == fmt.BAG_INFO:
                declared = parse_tag_lines(found[rel], rel).get("Payload-Oxum", "")
                try:
                    octets, _, files = declared.partition(".")
                    stream.declared_bytes, stream.declared_files = int(octets), int(files)
                except ValueError:
                    raise BundleError(f"{stream.path.name}'s bag-info.txt has no valid "
                                      "Payload-Oxum.") from None
                if stream.declared_files > fmt.MAX_MEMBERS:
                    raise UnsafeBundleError(
                        f"{stream.path.name} declares {stream.declared_files:,} payload files "
                        f"(Payload-Oxum), over the bound of {fmt.MAX_MEMBERS:,} members for "
                        "one bundle.",
                        "Pack many small files into an archive (zip or tar) inside the study.")
            if rel == fmt.METADATA:
                break
        if count >= fmt.HEAD_MEMBERS_MAX:
            break
    if fmt.METADATA not in found or fmt.BAG_INFO not in found:
        raise BundleError(f"{stream.path.name} is not a studypack bundle: it has no "
                          f"{fmt.METADATA} and {fmt.BAG_INFO} at its start.")
    check_bagit_txt(found.get(fmt.BAGIT_TXT), stream.path.name)
    metadata = load_json(found[fmt.METADATA], f"{stream.path.name}'s {fmt.METADATA}")
    if not isinstance(metadata, dict) or metadata.get("format") != fmt.FORMAT_NAME:
        raise BundleError(f"{stream.path.name} is not a studypack bundle.")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise malformed(stream.path, "format_version is not a number")
    if version not in fmt.SUPPORTED_VERSIONS:
        raise _newer(stream.path, version)
    check_metadata(metadata, stream.path)
    return metadata, parse_tag_lines(found[fmt.BAG_INFO], fmt.BAG_INFO), found


# --------------------------------------------------------------------------- public

def read_info(path: str | os.PathLike) -> BundleInfo:
    """Name, title, authors, runs, counts, sizes — from the first members only."""
    stream = _Stream(Path(path), ahead=False)
    try:
        metadata, bag_info, _ = _read_head(stream)
        return BundleInfo(stream.path, stream.bag, metadata["format_version"], metadata,
                          bag_info, stream.path.stat().st_size)
    finally:
        stream.close()


def verify(path: str | os.PathLike, report: Reporter | None = None,
           cancel: CancelToken | None = None, *, extract_to: str | os.PathLike | None = None,
           extract: Callable[[str], bool] | None = None) -> VerifyResult:
    """Check every checksum. Damage is reported in the result; an unsafe or unreadable
    bundle raises BundleError. With ``extract_to``, the members ``extract`` accepts are
    also written there (as unpack does) when the bundle is intact, in the same pass."""
    if extract_to is None:
        return _walk(Path(path), None, reporter(report), token(cancel))[0]
    Path(extract_to).mkdir(parents=True, exist_ok=True)
    return _walk(Path(path), Path(extract_to), reporter(report), token(cancel),
                 skip=lambda rel: not extract(rel), refuse_damaged=False)[0]


def unpack(path: str | os.PathLike, dest: str | os.PathLike, report: Reporter | None = None,
           cancel: CancelToken | None = None, *, platform: str | None = None,
           skip: Callable[[str], bool] | None = None,
           on_written: Callable[[str, Path], None] | None = None) -> UnpackResult:
    """Extract into ``dest/<bag name>``, verifying while extracting. Nothing is left
    behind when the bundle is damaged, and an existing folder is never overwritten.
    ``platform`` (``sys.platform`` by default) decides which names can be written:
    on macOS and Windows a name they cannot hold is refused, naming it. Members
    ``skip`` accepts (names relative to the bag) are checked, not written.
    ``on_written(name, path)`` is told of each file once written (to its temporary
    place, renamed with the bag at the end) — before the bundle is verified: what it
    starts must wait for this function to return before it counts on that file."""
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(dest, exc) from None
    result, bag_dir, files = _walk(Path(path), dest, reporter(report), token(cancel),
                                   platform or sys.platform, skip=skip,
                                   on_written=on_written)
    return UnpackResult(bag_dir, files, result.payload_bytes, result)


def _walk(path: Path, dest: Path | None, report: Reporter, cancel: CancelToken,
          platform: str | None = None, skip: Callable[[str], bool] | None = None,
          refuse_damaged: bool = True, on_written: Callable[[str, Path], None] | None = None):
    stream = _Stream(path)
    staging: Path | None = None
    try:
        metadata, bag_info, head_bytes = _read_head(stream)
        total = stream.declared_bytes or 0
        target = None
        if dest is not None:
            target = dest / stream.bag
            if target.exists():
                raise UsageError(f"{target} already exists; it was left as it is.",
                                 "Unpack into another folder, or remove it first.")
            if refuse_damaged:   # verify sets aside only a few files, not the payload
                _check_room(dest, min(total, stream.inflation_limit))  # more is refused anyway
            remove_stale_partials(dest, stream.bag)  # left by an unpack that was killed
            staging = temp_path_for(target)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
        # sha256 of every member (32 bytes each: memory stays small at MAX_MEMBERS)
        digests: dict[str, bytes] = {}
        done = [0]
        phase = "unpack" if dest is not None and refuse_damaged else "verify"
        report(Progress(phase, 0, total, "checking"))
        small: dict[str, bytes] = {}      # the manifests and fetch.txt
        for rel, data in head_bytes.items():
            digests[rel] = hashlib.sha256(data).digest()
            if staging is not None:
                _write_file(staging / rel, data)
        files = len(head_bytes)

        def on_chunk(n: int) -> None:
            done[0] += n
            report(Progress(phase, done[0], total, ""))

        made: set[Path] = set()
        names = portable.PlatformNames(platform) if staging is not None and refuse_damaged \
            else None   # verify sets a few files aside, by safe names only
        for rel, member in stream.members():
            cancel.check()
            if names is not None:   # before a byte of it is written
                names.check(f"{stream.bag}/{rel}", member.isdir())
            if member.isdir():
                if staging is not None and not (skip and skip(rel)):
                    (staging / rel).mkdir(parents=True, exist_ok=True)
                continue
            payload = rel.startswith(fmt.PAYLOAD + "/")
            if rel in (fmt.MANIFEST, fmt.TAGMANIFEST, fmt.FETCH_TXT):
                small[rel] = data = stream.read_small(member)
                digests[rel] = hashlib.sha256(data).digest()
                if rel == fmt.FETCH_TXT:
                    parse_fetch(data)     # refused at once when unsafe
                if staging is not None:
                    _write_file(staging / rel, data)
                files += 1
                continue
            count = on_chunk if payload else None   # Payload-Oxum counts data/ only
            if staging is not None and not (skip and skip(rel)):
                out_path = staging / rel
                try:
                    if out_path.parent not in made:  # thousands of small files, few folders
                        out_path.parent.mkdir(parents=True, exist_ok=True)
                        made.add(out_path.parent)
                    with open(out_path, "wb") as out:
                        digests[rel] = stream.copy(member, out, cancel, count)
                        if hasattr(os, "fchmod"):   # not on Windows (before Python 3.13)
                            os.fchmod(out.fileno(), 0o755 if member.mode & 0o111 else 0o644)
                    # as tar does: Python's .pyc files are valid only for their source's
                    # recorded mtime, else every replay compiles every module again
                    os.utime(out_path, (member.mtime, member.mtime))
                except OSError as exc:
                    raise write_error(out_path, exc) from None
                if on_written is not None:
                    on_written(rel, out_path)
            else:
                digests[rel] = stream.copy(member, None, cancel, count)
            files += 1
        stream.finish()
        fetch = parse_fetch(small[fmt.FETCH_TXT]) if fmt.FETCH_TXT in small else {}
        problems, checked, sidecar = compare(path, digests, small, dict(fetch),
                                             stream.counting.sha256.hexdigest())
        result = VerifyResult(not problems, checked, problems, 0, sidecar,
                              small.get(fmt.TAGMANIFEST, b""))
        payload_bytes = done[0]
        oxum = (f"{payload_bytes + sum(size for _, size in fetch.values())}."
                f"{stream.payload_files + len(fetch)}")
        if bag_info.get("Payload-Oxum") != oxum:
            result.problems.append(f"the payload ({oxum}) differs from the Payload-Oxum "
                                   f"declared in bag-info.txt ({bag_info.get('Payload-Oxum')})")
            result.ok = False
        result.payload_bytes = payload_bytes
        if staging is not None:
            if not result.ok and refuse_damaged:
                raise BundleError(f"{path.name} is damaged: " + "; ".join(result.problems[:5])
                                  + ("…" if len(result.problems) > 5 else "") + ".",
                                  "Nothing was unpacked. Fetch the bundle again.")
            if result.ok:
                os.replace(staging, target)
                staging = None
        report(Progress(phase, total, total, "done"))
        return result, target, files
    finally:
        stream.close()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def open_stream(path: str | os.PathLike) -> Iterator[_Stream]:
    """The bundle's members after its head, with every check and bound (for readers of
    one member, such as signing's tag-manifest reader)."""
    stream = _Stream(Path(path))
    try:
        _read_head(stream)   # bag-info.txt's Payload-Oxum bounds the payload
        yield stream
    finally:
        stream.close()


def _write_file(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise write_error(path, exc) from None


def _check_room(dest: Path, needed: int) -> None:
    free = shutil.disk_usage(dest).free
    if needed > free:
        from ..fsutil import human_size
        raise WriteError(f"Unpacking needs {human_size(needed)} but {dest} has only "
                         f"{human_size(free)} free.", "Free some space or unpack elsewhere.")
