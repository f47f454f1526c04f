"""The trace image imported while the bundle unpacks.

A first trace-mode replay makes an image of the traced files (``docker import`` of one
layer, :mod:`.trace`). Made after the unpack, the daemon's work — reading the layer,
writing its files, hashing it — came on top of it. Here the import starts with the
unpack: each traced file the unpack writes is sent at once, on a thread of its own; once
the bundle is verified, the rest of the layer follows (the files stored once, rebuilt;
the folders and links; /tmp and busybox: :func:`.trace.layer_entries`, the same members
as the layer written to a file) and the image is complete.

The image is made without a name and named (so that later replays of the same traced
files reuse it, :func:`.cache.trace_image_tag`) only after the bundle was verified and
the traced files' digest, which labels it, was checked against the verified manifest.
A damaged, refused or cancelled replay aborts the upload before its end, so the daemon
makes no image of it; when the import fails for any other reason the replay imports the
traced files from disk, as before.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import tarfile
import threading
from pathlib import Path

from ..bundle import format as fmt
from ..errors import StudypackError
from ..progress import CancelToken
from .trace import layer_entries, layer_info

CHUNK = 1024 * 1024
_END, _ABORT = object(), object()


class _Aborted(Exception):
    """Raised inside the upload: the request ends without its last chunk."""


class LayerStream:
    """Start with :meth:`start`; give :meth:`written` to the unpack; then :meth:`finish`
    once the bundle is verified, and :meth:`close` in every case."""

    def __init__(self, engine, digest: str, final_rootfs: Path):
        from .cache import DIGEST_LABEL

        self.engine, self.digest = engine, digest
        self.final_rootfs = Path(final_rootfs)   # where the unpack's files end up
        self.sent: set[str] = set()
        self.queue: queue.Queue = queue.Queue()
        self.result: str | None = None
        self.error: BaseException | None = None
        self.done = False
        self.thread = threading.Thread(target=self._send, args=(f"LABEL {DIGEST_LABEL}={digest}",),
                                       daemon=True, name="studypack-import")
        self.thread.start()

    @classmethod
    def start(cls, digest: str, final_rootfs: Path) -> "LayerStream | None":
        from .runners import connect_engine

        try:
            return cls(connect_engine(), digest, final_rootfs)
        except StudypackError:
            return None

    # ------------------------------------------------------------ during the unpack

    def written(self, rel: str, path: Path) -> None:
        """Told by the unpack of each file written (to its temporary place)."""
        prefix = fmt.ROOTFS_DIR + "/"
        if rel.startswith(prefix):
            arcname = rel[len(prefix):]
            self.sent.add(arcname)
            self.queue.put((None, arcname, (str(path), str(self.final_rootfs / arcname))))

    def _send(self, label: str) -> None:
        try:
            self.result = self.engine.client.api.import_image_from_stream(
                self._chunks(), changes=[label])
        except BaseException as exc:     # (an abort is one) said by finish()
            self.error = exc

    def _chunks(self):
        while True:
            item = self.queue.get()
            if item is _ABORT:
                raise _Aborted()
            if item is _END:
                yield b"\0" * (2 * tarfile.BLOCKSIZE)
                return
            info, arcname, paths = item
            if paths is None:
                yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
                continue
            with _open_first(paths) as fh:
                if info is None:     # a file of the unpack: as it is on disk
                    info = layer_info(os.fstat(fh.fileno()), arcname, "")
                yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
                remaining = info.size
                while remaining:
                    chunk = fh.read(min(CHUNK, remaining))
                    if not chunk:
                        raise _Aborted()     # shorter than its header says
                    yield chunk
                    remaining -= len(chunk)
                yield b"\0" * (-info.size % tarfile.BLOCKSIZE)

    # ------------------------------------------------------------ after the unpack

    def finish(self, rootfs: Path, busybox: str | None, tag: str, rebuilt: set[str],
               cancel: CancelToken) -> str | None:
        """Send the rest of the layer (``rebuilt``: names of files the rebuild may have
        put where the unpack wrote, sent again) and name the image ``tag``. None when
        the import failed (the caller imports from disk)."""
        sent = self.sent - rebuilt
        for info, path in layer_entries(Path(rootfs), busybox, sent):
            self.queue.put((info, info.name, (path,) if path is not None else None))
        self.queue.put(_END)
        while self.thread.is_alive():
            self.thread.join(timeout=0.1)
            if cancel.cancelled:
                self.close()
                cancel.check()
        self.done = True
        found = re.findall(r"sha256:[0-9a-f]{64}", self.result or "")
        if self.error is not None or not found or '"error' in (self.result or ""):
            return None
        repository, name = tag.split(":")
        try:
            self.engine.client.api.tag(found[-1], repository, name)
        except Exception:      # the daemon's error: import again from disk
            with contextlib.suppress(Exception):
                self.engine.client.api.remove_image(found[-1], force=True)
            return None
        return tag

    def close(self) -> None:
        """End the upload before its end when not finished (no image is made), and the
        connection."""
        if not self.done:
            self.queue.put(_ABORT)
            self.thread.join(timeout=30)
            self.done = True
        self.engine.close()


def _open_first(paths: tuple[str, ...]):
    """The first of ``paths`` that opens: a file of the unpack is in the bag's
    temporary folder until the unpack ends, then at its place."""
    for path in paths[:-1]:
        with contextlib.suppress(FileNotFoundError):
            return open(path, "rb")
    return open(paths[-1], "rb")
