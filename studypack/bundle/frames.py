"""The zstd frames of a bundle, walked without decompressing (RFC 8878, section 3.1).

zstd decoders skip *skippable* frames in silence and go on across frames, so bytes
hidden in a skippable frame after the archive's end would pass unseen. A bundle is the
format marker (one skippable frame, first) and zstd frames; this walk reads only the
frame and block headers and refuses anything else: a second skippable frame anywhere,
bytes that start no frame, a frame cut short.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from ..errors import BundleError

ZSTD_MAGIC = 0xFD2FB528
SKIPPABLE_LOW, SKIPPABLE_HIGH = 0x184D2A50, 0x184D2A5F
_DICT_ID_BYTES = (0, 1, 2, 4)
_CONTENT_SIZE_BYTES = (0, 2, 4, 8)   # for flag 0: 1 byte when single-segment


def check_frames(fh: BinaryIO, name: str) -> None:
    """Walk every frame of the open file ``fh`` (then rewind it)."""
    size = os.fstat(fh.fileno()).st_size
    offset = 0
    while offset < size:
        fh.seek(offset)
        head = fh.read(8)
        magic = int.from_bytes(head[:4], "little") if len(head) >= 4 else None
        if magic is not None and SKIPPABLE_LOW <= magic <= SKIPPABLE_HIGH and len(head) == 8:
            length = int.from_bytes(head[4:8], "little")
            if offset != 0:
                raise BundleError(
                    f"{name} hides {length:,} bytes in a skippable zstd frame at byte "
                    f"{offset:,}: a bundle holds no data outside its archive.",
                    "Fetch the bundle again and compare it with its .sha256 file.")
            offset += 8 + length
        elif magic == ZSTD_MAGIC:
            offset = _frame_end(fh, offset, name)
        else:
            raise BundleError(
                f"{name} holds data that is not part of its compressed stream (at byte "
                f"{offset:,}): bytes were appended after its end, or it is damaged.",
                "Fetch the bundle again and compare it with its .sha256 file.")
        if offset > size:
            raise BundleError(f"{name} is truncated: the download or copy was cut short.",
                              "Fetch the bundle again and compare it with its .sha256 file.")
    fh.seek(0)


def _frame_end(fh: BinaryIO, offset: int, name: str) -> int:
    """The offset just past the zstd frame that starts at ``offset``."""
    fh.seek(offset + 4)
    descriptor = fh.read(1)
    if not descriptor:
        return offset + 5 + 1          # cut short: past the end
    d = descriptor[0]
    single_segment = (d >> 5) & 1
    content_size = _CONTENT_SIZE_BYTES[d >> 6] or single_segment
    pos = offset + 5 + (0 if single_segment else 1) + _DICT_ID_BYTES[d & 3] + content_size
    while True:
        fh.seek(pos)
        header = fh.read(3)
        if len(header) < 3:
            return pos + 3
        value = int.from_bytes(header, "little")
        last, kind, block_size = value & 1, (value >> 1) & 3, value >> 3
        pos += 3 + (1 if kind == 1 else block_size)
        if kind == 3:
            raise BundleError(f"{name} is damaged: a zstd block at byte {pos:,} has a reserved type.",
                              "Fetch the bundle again and compare it with its .sha256 file.")
        if last:
            return pos + (4 if (d >> 2) & 1 else 0)
