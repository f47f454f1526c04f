"""The one sha256-of-a-file helper: streamed in 1 MiB chunks, cancellable between them."""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

from .progress import CancelToken, Progress, Reporter

CHUNK = 1 << 20


def sha256_file(path: Path | str, cancel: CancelToken | None = None,
                report: Reporter | None = None) -> str:
    """The hex sha256 of the file at ``path`` (OSError as ``open`` raises it); with
    ``report``, a "checksum" progress in bytes after each chunk."""
    return sha256_file_keyed(path, cancel, report)[0]


def file_key(st: os.stat_result) -> tuple[int, ...]:
    """What identifies one state of a file's content: a write changes the size, the
    mtime or (even when the mtime is set back) the ctime; a replace, the inode."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_file_keyed(path: Path | str, cancel: CancelToken | None = None,
                      report: Reporter | None = None) -> tuple[str, tuple[int, ...] | None]:
    """(hex sha256, :func:`file_key` of the file hashed), the key None when the file
    changed while it was read: a digest is reused later only for the same key."""
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        before = file_key(os.fstat(fh.fileno()))
        while chunk := fh.read(CHUNK):
            if cancel is not None:
                cancel.check()
            digest.update(chunk)
            if report is not None:
                done += len(chunk)
                report(Progress("checksum", done, before[2], Path(path).name))
        after = file_key(os.fstat(fh.fileno()))
    return digest.hexdigest(), (before if before == after else None)


def crc32_file(path: Path | str, cancel: CancelToken | None = None) -> int | None:
    """The CRC-32 of the file at ``path`` (as a zip directory records it), None when it
    cannot be read."""
    crc = 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                if cancel is not None:
                    cancel.check()
                crc = zlib.crc32(chunk, crc)
    except OSError:
        return None
    return crc
