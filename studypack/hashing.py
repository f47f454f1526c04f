"""The one sha256-of-a-file helper: streamed in 1 MiB chunks, cancellable between them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .progress import CancelToken

CHUNK = 1 << 20


def sha256_file(path: Path | str, cancel: CancelToken | None = None) -> str:
    """The hex sha256 of the file at ``path`` (OSError as ``open`` raises it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            if cancel is not None:
                cancel.check()
            digest.update(chunk)
    return digest.hexdigest()
