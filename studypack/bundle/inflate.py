"""The decompressed tar stream of a bundle, as a forward-only file for :mod:`tarfile`.

Why not ``tarfile.open(mode="r|")``: its stream reader pulls 10 KiB at a time and
joins and slices its buffer on every read, which costs more than zstd itself. Here a
worker thread decompresses 1 MiB chunks ahead (python-zstandard releases the GIL while
it inflates), so decompression runs on one core while the reading thread hashes and
writes on the other — the way `zstd -dc | tar -x` uses two processes. Member bytes
are handed out as memoryviews of those chunks, never copied.

``tarfile.TarFile`` in plain ``"r"`` mode reads headers through :meth:`read`,
:meth:`seek` (forward only, like tarfile's own stream) and :meth:`tell`, so every
header is parsed, and every safety check made, exactly as before.
"""

from __future__ import annotations

import queue
import tarfile
import threading

CHUNK = 1024 * 1024
AHEAD = 8          # chunks decompressed ahead: memory stays flat (~10 MiB)
# tarfile reads a pax or GNU long-name header whole, whatever size it claims; member
# bytes never come through read() (they are viewed). Past this, it is a bomb.
MAX_READ = 64 * 1024 * 1024 + CHUNK


class Inflated:
    """Read ``zreader`` (a zstandard stream reader) front to back.

    With ``ahead=False`` the chunks are read on demand in the calling thread (for
    ``info``, which stops after the first members)."""

    def __init__(self, zreader, ahead: bool = True, chunk: int = CHUNK):
        self.zreader, self.chunk_size = zreader, chunk
        self.pos = 0                     # bytes handed out so far (tell)
        self.buf = memoryview(b"")
        self.at = 0                      # read position in buf
        self.eof = False
        self.error: BaseException | None = None
        self.thread = None
        if ahead:
            self.queue: queue.Queue = queue.Queue(maxsize=AHEAD)
            self.stop = threading.Event()
            self.thread = threading.Thread(target=self._produce, daemon=True,
                                           name="studypack-inflate")
            self.thread.start()

    # ------------------------------------------------------------- worker thread
    def _produce(self) -> None:
        try:
            while not self.stop.is_set():
                data = self.zreader.read(self.chunk_size)
                self._put(data)
                if not data:
                    return
        except BaseException as exc:  # handed to the reader, raised where it reads
            self._put(exc)

    def _put(self, item) -> None:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    # ------------------------------------------------------------ reading thread
    def _refill(self) -> bool:
        if self.error is not None:
            raise self.error
        if self.eof:
            return False
        if self.thread is not None:
            item = self.queue.get()
            if isinstance(item, BaseException):
                self.error = item
                raise item
        else:
            item = self.zreader.read(self.chunk_size)
        if not item:
            self.eof = True
            return False
        self.buf, self.at = memoryview(item), 0
        return True

    def view(self, limit: int) -> memoryview:
        """Up to ``limit`` next bytes, without copying; empty at the end."""
        if self.at >= len(self.buf) and not self._refill():
            return memoryview(b"")
        n = min(limit, len(self.buf) - self.at)
        out = self.buf[self.at:self.at + n]
        self.at += n
        self.pos += n
        return out

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_READ:
            raise tarfile.ReadError(
                f"a header or tag file of {size} bytes is implausibly large: "
                "it may be a decompression bomb")
        parts = []
        while size > 0:
            part = self.view(size)
            if not part:
                break
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0 or pos < self.pos:
            raise tarfile.StreamError("seeking backwards is not allowed")
        while self.pos < pos and self.view(pos - self.pos):
            pass
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        """Stop the worker (it may be blocked on a full queue) and wait for it."""
        if self.thread is None:
            return
        self.stop.set()
        while self.thread.is_alive():
            try:
                while True:
                    self.queue.get_nowait()
            except queue.Empty:
                pass
            self.thread.join(timeout=0.05)
        self.thread = None
