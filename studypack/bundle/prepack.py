"""Compress a study's files while its run runs; the writer copies the frames in after.

A traced run takes seconds to hours, and the process that started it only waits. The
study's code and data are known before the run (the plan's walk), so a background
thread compresses them meanwhile into a spill file in the create session's work folder
— at low priority and on one core while the study runs, then (:meth:`Prepack.hurry`,
called when the run ends or the writer starts) at normal priority on every core, so
the writer never waits for a starved thread: runs of members ("chunks", about :data:`CHUNK_INPUT` bytes of
input each) as whole zstd frames, every member exactly as
:func:`studypack.bundle.writer.pack` writes it (pax header, content, padding, same
compressor), with the sha256 of its content and the file's key
(:func:`studypack.hashing.file_key`) as it was read.

After the run, the writer (``pack(..., prepacked=)``) copies a chunk's frames into the
bundle only where its plan has the same members in a row (names, sizes, modes, mtimes:
the same headers) and every file still has the key it had when it was read. Anything
else — a file the run rewrote (even to the same size and mtime: its ctime moved; and
any file the trace says the run opened for writing, :meth:`Prepack.forget`, since a
rewrite within one tick of a coarse clock keeps even the ctime), a new
file between two members of a chunk, a chunk not compressed yet — is packed as it would
have been without this module. A bundle is a sequence of zstd frames already, so the
stream stays one valid zstd stream either way.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import zstandard

from ..hashing import file_key
from ..progress import CancelToken
from .writer import BLOCK, CHUNK, Member, PackPlan, compressor, tar_header

CHUNK_INPUT = 32 * 1024 * 1024   # a change costs at most this much packed again
NICE = 15                        # the study's run comes first
SPACE_FACTOR = 1.2               # free space needed in the work folder, × the input
NO_ROOM = "not enough free space in the work folder"


@dataclass
class Entry:
    """One member of a chunk, as it was read."""

    arcname: str
    source: Path
    size: int = 0
    mode: int = 0o644
    mtime: int = 0
    key: tuple[int, ...] | None = None
    sha256: str = ""


@dataclass
class Chunk:
    entries: list[Entry]
    kind: str                        # the writer's frame kind: "main" or "fast"
    position: int = 0                # its place among the chunks
    state: str = "pending"           # → running → done | failed; or claimed by the writer
    offset: int = 0                  # its frames in the spill file
    length: int = 0
    spill: Path | None = None
    reader: object = None            # the spill, open, once the writer took the chunk

    def open(self):
        """The spill file, at this chunk's first byte."""
        fh = open(self.spill, "rb", buffering=0)
        fh.seek(self.offset)
        return fh

    def copy_to(self, zw, buffer: bytearray) -> None:
        """Copy this chunk's frames into the writer's stream (the spill was opened when
        the chunk was taken, so a cancel that removes it cannot cut the copy short)."""
        with self.reader:
            zw.splice(self.reader, self.length, buffer)
        _release(self.spill, self.offset, self.length)


def plan_chunks(members: list[Member], chunk_input: int = CHUNK_INPUT) -> list[Chunk]:
    """Consecutive members read from files, of one frame kind, ~``chunk_input`` bytes
    each. A member made in memory (a scrubbed file) is left to the writer and ends a
    chunk."""
    chunks: list[Chunk] = []
    current: Chunk | None = None
    size = 0
    for member in members:
        if member.data is not None or member.source is None:
            current = None
            continue
        kind = member.frame_kind
        if current is None or current.kind != kind or size >= chunk_input:
            current, size = Chunk([], kind, position=len(chunks)), 0
            chunks.append(current)
        current.entries.append(Entry(member.arcname, member.source))
        size += member.size
    return chunks


class Prepack:
    """Compress ``members`` (in the order the bundle will hold them) in a thread.

    ``start()`` begins (or skips, when the work folder's disk lacks room); the writer
    calls :meth:`take`; :meth:`stop` ends the thread and removes the spill file. The
    ``cancel`` token (the session's) stops the thread too, and the spill with it."""

    def __init__(self, members: list[Member], bag: str, folder: Path, level: int, *,
                 threads: int = -1, chunk_input: int = CHUNK_INPUT,
                 cancel: CancelToken | None = None, nice: int = NICE):
        self.bag, self.folder, self.level, self.threads = bag, folder, level, threads
        self.nice = nice
        self.chunks = plan_chunks(members, chunk_input)
        self.input_bytes = sum(m.size for m in members
                               if m.data is None and m.source is not None)
        self.spill = folder / "frames.zst"
        self.spliced: list[Chunk] = []     # what the writer took, in order
        self.skipped = ""                  # why nothing was prepacked, if so
        self._starts = {c.entries[0].arcname: c for c in self.chunks}
        self._written: set[str] = set()    # files the run opened for writing
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._buffer = bytearray(CHUNK)
        self._out = None                   # the spill, open for writing
        self._job = None                   # (chunk, its steps) under way
        self._helper: threading.Thread | None = None   # the thread after hurry()
        self._cancel = cancel
        self._thread = threading.Thread(target=self._run, name="studypack-prepack",
                                        daemon=True)

    # --------------------------------------------------------------- the thread
    def start(self) -> "Prepack":
        if not self.chunks:
            self.skipped = "no file to prepack"
            return self._give_up()
        self.folder.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(self.folder).free < SPACE_FACTOR * self.input_bytes:
            self.skipped = NO_ROOM
            return self._give_up()
        self._thread.start()
        return self

    def _give_up(self) -> "Prepack":
        with self._cond:
            for chunk in self.chunks:
                chunk.state = "failed"
        return self

    def _stopping(self) -> bool:
        return self._stop.is_set() or (self._cancel is not None and self._cancel.cancelled)

    def _run(self) -> None:
        _lower_priority(self.nice)
        self._work(low=True)

    def hurry(self) -> None:
        """The run is over: what is left is compressed at normal priority and on every
        core (the low-priority thread hands its work over within one block)."""
        self._hurry.set()

    def _work(self, low: bool) -> None:
        handed_over = False
        try:
            if self._out is None:
                self._out = open(self.spill, "wb", buffering=0)
            while True:
                if self._job is None:
                    chunk = self._next_chunk()
                    if chunk is None:
                        break
                    self._job = (chunk, self._compress(chunk, self._out))
                chunk, steps = self._job
                try:
                    next(steps)
                except StopIteration as end:
                    self._job = None
                    self._finish(chunk, end.value)
                    continue
                except OSError:
                    self._job = None
                    self._finish(chunk, False)
                    raise
                if low and self._hurry.is_set():   # a thread that can use the CPU goes on
                    self._helper = threading.Thread(target=self._work, args=(False,),
                                                    name="studypack-prepack", daemon=True)
                    handed_over = True
                    self._helper.start()
                    return
        except OSError:
            pass     # no room, no permission: the writer packs what is left, as usual
        finally:
            if not handed_over:
                self._wrap_up()

    def _next_chunk(self) -> Chunk | None:
        with self._cond:
            if self._stopping():
                return None
            chunk = next((c for c in self.chunks if c.state == "pending"), None)
            if chunk is not None:
                chunk.state = "running"
            return chunk

    def _finish(self, chunk: Chunk, ok: bool) -> None:
        if not ok:   # nothing of it is kept
            self._out.seek(chunk.offset)
            self._out.truncate()
        with self._cond:
            chunk.state = "done" if ok else "failed"
            self._cond.notify_all()

    def _wrap_up(self) -> None:
        if self._out is not None:
            self._out.close()
        with self._cond:
            stopped = self._stopping()
            for chunk in self.chunks:
                if chunk.state in ("pending", "running") or stopped:
                    chunk.state = "failed"
            if stopped:
                self.spill.unlink(missing_ok=True)
            self._cond.notify_all()

    def _compress(self, chunk: Chunk, out):
        """Compress ``chunk`` to the end of ``out``, one block per step (a generator:
        another thread may take the next steps). Returns False if a file changed while
        it was read or cannot be read (the writer will say why)."""
        chunk.offset, chunk.spill = out.tell(), self.spill
        view = memoryview(self._buffer)
        frames = _Frames(out, chunk.kind, self.level, self.threads, self._thread.ident)
        for entry in chunk.entries:
            try:
                fh = open(entry.source, "rb", buffering=0)
            except OSError:
                return False
            with fh:
                st = os.fstat(fh.fileno())
                probe = Member.from_stat(entry.arcname, entry.source, st)
                entry.size, entry.mode, entry.mtime = probe.size, probe.mode, probe.mtime
                frames.write(tar_header(f"{self.bag}/{entry.arcname}", entry.size,
                                        entry.mode, entry.mtime))
                sha = hashlib.sha256()
                remaining = entry.size
                while remaining:
                    if self._stopping():
                        return False
                    n = fh.readinto(view[:min(CHUNK, remaining)])
                    if not n:
                        return False          # shrank while read
                    sha.update(view[:n])
                    frames.write(view[:n])
                    remaining -= n
                    if remaining:
                        yield
                if fh.read(1) or file_key(os.fstat(fh.fileno())) != file_key(st):
                    return False              # grew, or written to while read
            frames.write(b"\0" * (-entry.size % BLOCK))
            entry.key, entry.sha256 = file_key(st), sha.hexdigest()
            yield
        frames.close()
        chunk.length = out.tell() - chunk.offset
        return True

    def forget(self, written: set[str]) -> None:
        """The files the run opened for writing (the trace's names): a chunk holding
        one is never copied in. Its key would catch nearly every rewrite, but not one to
        the same size and mtime within the filesystem's timestamp granularity."""
        self._written |= {os.path.realpath(name) for name in written} | set(written)

    # --------------------------------------------------------------- the writer
    def take(self, plan: PackPlan, index: int, level: int) -> Chunk | None:
        """The chunk to copy in at ``plan.payload[index]``, or None: pack as usual.

        Waits for a chunk being compressed; a chunk not begun yet is left to the
        writer (and to the thread, every chunk before it)."""
        self.hurry()      # the writer waits for nothing at low priority
        chunk = self._starts.get(plan.payload[index].arcname)
        if chunk is None or level != self.level or plan.bag_name != self.bag:
            return None
        with self._cond:
            for earlier in self.chunks[:chunk.position + 1]:
                if earlier.state == "pending":
                    earlier.state = "claimed"
            while chunk.state == "running":
                self._cond.wait()
            if chunk.state != "done":
                return None
            try:   # now, while the thread cannot remove the spill
                chunk.reader = chunk.open()
            except OSError:
                return None
        members = plan.payload[index:index + len(chunk.entries)]
        if not self._matches(members, chunk, self._written):
            chunk.reader.close()
            return None
        self.spliced.append(chunk)
        return chunk

    @staticmethod
    def _matches(members: list[Member], chunk: Chunk, written: set[str]) -> bool:
        if len(members) != len(chunk.entries):
            return False
        for member, entry in zip(members, chunk.entries):
            if member.data is not None or member.source is None or \
                    str(member.source) in written or \
                    member.arcname != entry.arcname or member.frame_kind != chunk.kind or \
                    (member.size, member.mode, member.mtime) != \
                    (entry.size, entry.mode, entry.mtime):
                return False
            try:
                if file_key(os.stat(member.source)) != entry.key:
                    return False     # changed since it was read: never these bytes
            except OSError:
                return False
        return True

    def wait(self) -> None:
        """Until the thread has compressed every chunk (or stopped)."""
        if self._thread.is_alive():
            self._thread.join()
        if self._helper is not None:   # made before the first thread ends
            self._helper.join()

    def stop(self) -> None:
        """End the thread and remove the spill file (and its folder)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class _Frames:
    """A chunk's compressor. In the low-priority thread it is single-threaded (it runs
    in that thread, so it yields to the study's run); when another thread goes on
    with the chunk, the frame ends and a new one begins with every core."""

    def __init__(self, out, kind: str, level: int, threads: int, low_thread: int | None):
        self.out, self.kind, self.level, self.threads = out, kind, level, threads
        self.low_thread = low_thread
        self.writer = self.owner = None

    def write(self, data) -> None:
        me = threading.get_ident()
        if me != self.owner:
            if self.writer is not None:
                self.writer.flush(zstandard.FLUSH_FRAME)
            threads = 0 if me == self.low_thread else self.threads
            self.writer = compressor(self.kind, self.level, threads).stream_writer(
                self.out, closefd=False)
            self.owner = me
        self.writer.write(data)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush(zstandard.FLUSH_FRAME)


def _release(path: Path, offset: int, length: int) -> None:
    """Free a copied chunk's part of the spill at once (Linux: punch a hole), so that
    the bundle's pages, written next, are the ones just freed rather than more memory."""
    if not sys.platform.startswith("linux") or length <= 0:
        return
    try:
        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
        fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        fd = os.open(path, os.O_WRONLY)
    except (OSError, AttributeError):
        return
    try:
        fallocate(fd, _PUNCH_HOLE | _KEEP_SIZE, offset, length)   # a failure: kept as is
    finally:
        os.close(fd)


_KEEP_SIZE, _PUNCH_HOLE = 0x01, 0x02    # linux/falloc.h


def _lower_priority(nice: int) -> None:
    """This thread yields to the study's run. Linux only: elsewhere the call would
    address a process."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
    except OSError:
        pass
