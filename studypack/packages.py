"""Vendored package files read as archives: which files a package holds, and their bytes.

A wheel is a zip; a Debian package is an ``ar`` archive whose ``data.tar.*`` holds the
files it installs. Both answer the same two questions, so the store-once step
(:mod:`studypack.storeonce`) treats every vendored package alike:

- :meth:`PackageArchive.members` — each regular file inside: its path (POSIX, relative,
  no leading ``./``) and size;
- :meth:`PackageArchive.read` — the bytes of some of them, streamed in chunks, in the
  archive's own order (one pass over a ``.deb``);
- :meth:`PackageArchive.recorded` — what the package itself says each file's sha256 and
  CRC-32 are, without reading the files (a wheel's ``RECORD`` and zip directory; nothing
  for a ``.deb``, whose md5sums are too weak to go by).
"""

from __future__ import annotations

import base64
import csv
import io
import lzma
import tarfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from .errors import BundleError

CHUNK = 1024 * 1024
_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


class PackageArchive:
    kind = "?"
    suffixes: tuple[str, ...] = ()

    def __init__(self, path: Path):
        self.path = Path(path)

    def members(self) -> Iterator[tuple[str, int]]:
        raise NotImplementedError

    def read(self, names: Iterable[str]) -> Iterator[tuple[str, Iterator[bytes]]]:
        """(name, chunks) for each wanted member found; consume the chunks in order."""
        raise NotImplementedError

    def recorded(self) -> dict[str, tuple[str, int]]:
        """name -> (sha256 hex, CRC-32) as the package records them; {} when unknown."""
        return {}

    def _bad(self, why: str) -> BundleError:
        return BundleError(f"The vendored package {self.path.name} cannot be read: {why}.",
                           "Fetch the bundle again; a package it carries is damaged.")


class WheelArchive(PackageArchive):
    kind = "wheel"
    suffixes = (".whl",)

    def _zip(self) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise self._bad(str(exc)) from None

    def members(self) -> Iterator[tuple[str, int]]:
        with self._zip() as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, info.file_size

    def recorded(self) -> dict[str, tuple[str, int]]:
        """The sha256 the wheel's ``*.dist-info/RECORD`` gives each file, with the CRC-32
        its zip directory gives it (checked against the bytes when a file is read)."""
        with self._zip() as zf:
            infos = {info.filename: info for info in zf.infolist() if not info.is_dir()}
            records = [n for n in infos if n.count("/") == 1 and
                       n.split("/")[0].endswith(".dist-info") and n.endswith("/RECORD")]
            if len(records) != 1:
                return {}
            try:
                text = zf.read(records[0]).decode("utf-8")
            except (OSError, zipfile.BadZipFile, EOFError, UnicodeDecodeError):
                return {}
        found: dict[str, tuple[str, int]] = {}
        for row in csv.reader(text.splitlines()):
            if len(row) < 2 or not row[1].startswith("sha256=") or row[0] not in infos:
                continue
            encoded = row[1][len("sha256="):]
            try:
                digest = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except ValueError:
                continue
            if len(digest) == 32:
                found[row[0]] = (digest.hex(), infos[row[0]].CRC)
        return found

    def read(self, names: Iterable[str]) -> Iterator[tuple[str, Iterator[bytes]]]:
        wanted = set(names)
        with self._zip() as zf:
            for info in zf.infolist():
                if info.filename in wanted:
                    yield info.filename, self._chunks(zf, info)

    def _chunks(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
        try:
            with zf.open(info) as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk
        except (OSError, zipfile.BadZipFile, EOFError, lzma.LZMAError) as exc:
            raise self._bad(f"{info.filename}: {exc}") from None


class DebArchive(PackageArchive):
    """A ``.deb``: ``ar`` members debian-binary, control.tar.*, data.tar.{gz,xz,zst,bz2,}."""

    kind = "deb"
    suffixes = (".deb",)

    def _data_tar(self, fh: BinaryIO) -> tarfile.TarFile:
        if fh.read(len(_AR_MAGIC)) != _AR_MAGIC:
            raise self._bad("it is not an ar archive")
        while True:
            header = fh.read(_AR_HEADER)
            if len(header) < _AR_HEADER:
                raise self._bad("it has no data.tar member")
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            try:
                size = int(header[48:58].decode("ascii").strip())
            except ValueError:
                raise self._bad("an ar header is malformed") from None
            if name.startswith("data.tar"):
                return self._open_tar(name, _Limited(fh, size))
            fh.seek(size + (size & 1), io.SEEK_CUR)

    def _open_tar(self, name: str, raw: BinaryIO) -> tarfile.TarFile:
        if name.endswith(".zst"):
            import zstandard
            raw = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            return tarfile.open(fileobj=raw, mode="r|")
        modes = {"data.tar": "r|", "data.tar.gz": "r|gz", "data.tar.xz": "r|xz",
                 "data.tar.bz2": "r|bz2"}
        if name not in modes:
            raise self._bad(f"its {name} is compressed in a way this studypack cannot read")
        return tarfile.open(fileobj=raw, mode=modes[name])

    def _entries(self) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo, str]]:
        try:
            with open(self.path, "rb") as fh, self._data_tar(fh) as tar:
                for info in tar:
                    if info.isreg():
                        yield tar, info, info.name.removeprefix("./").lstrip("/")
        except (OSError, tarfile.TarError, EOFError, lzma.LZMAError) as exc:
            raise self._bad(str(exc)) from None

    def members(self) -> Iterator[tuple[str, int]]:
        for _tar, info, name in self._entries():
            yield name, info.size

    def read(self, names: Iterable[str]) -> Iterator[tuple[str, Iterator[bytes]]]:
        wanted = set(names)
        for tar, info, name in self._entries():
            if name in wanted:
                yield name, self._chunks(tar, info)

    @staticmethod
    def _chunks(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Iterator[bytes]:
        fh = tar.extractfile(info)
        while chunk := fh.read(CHUNK):
            yield chunk


class _Limited(io.RawIOBase):
    """The next ``size`` bytes of a file: one ar member."""

    def __init__(self, fh: BinaryIO, size: int):
        self.fh, self.left = fh, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.fh.readinto(memoryview(buffer)[:min(len(buffer), self.left)])
        self.left -= n or 0
        return n or 0


KINDS: tuple[type[PackageArchive], ...] = (WheelArchive, DebArchive)


def open_package(path: Path) -> PackageArchive | None:
    """The archive reader for a vendored package file, or None for other files."""
    name = Path(path).name.lower()
    for kind in KINDS:
        if name.endswith(kind.suffixes):
            return kind(Path(path))
    return None
