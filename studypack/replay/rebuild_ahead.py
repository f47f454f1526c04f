"""The traced files stored once, rebuilt from their packages while the bundle is still
being unpacked.

A first replay in a mode that runs the traced files (directory, sandbox, a trace image
made anew) needs every file of the store-once listing (:mod:`studypack.storeonce`)
rebuilt from its package: inflating the wheel's members, hashing and writing them. Done
after the unpack, that is a few tenths of a second on one core. So as soon as the unpack
has written the listing and a package, worker threads rebuild that package's files
(zlib, hashlib and file writes let go of the GIL) into a folder beside the bag, while
the unpack goes on with the rest of the bundle.

Nothing counts on those files before the whole bundle is verified. :meth:`finish` is
called once the unpack has returned (every checksum matched): it waits for the
workers, rebuilds whatever they did not (the listing after its packages, a package
that could not be linked), and only then puts each file in place — through the same
checks as a rebuild after the unpack (:class:`studypack.storeonce.Placer`: inside the
traced files even through the links, which the replay makes after the unpack). A file
is kept only once its sha256 matched the recorded one, and a package that gives other
bytes is refused with the same sentence as before. When the unpack fails or is
cancelled, :meth:`close` stops the workers and removes what they wrote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..bundle import format as fmt
from ..errors import BundleError
from ..progress import CancelToken, Progress, Reporter, reporter, token
from ..storeonce import (LISTING, Output, Placer, Reference, by_package, is_package_member,
                         parse_listing, rebuild_package, rebuild_files)

SPLIT_MIN = 8 * 1024 * 1024   # a wheel with more referenced bytes is shared by the workers


class _Stop(CancelToken):
    """Cancelled by the caller's token, or by :meth:`RebuildAhead.close`."""

    def __init__(self, parent: CancelToken):
        super().__init__()
        self.parent = parent

    @property
    def cancelled(self) -> bool:
        return super().cancelled or self.parent.cancelled

    def check(self) -> None:
        self.parent.check()
        super().check()


class RebuildAhead:
    """Give :meth:`written` to :func:`studypack.bundle.reader.unpack` as ``on_written``;
    after it returned, :meth:`finish`; in every case :meth:`close`."""

    def __init__(self, side: Path, cancel: CancelToken | None = None,
                 workers: int | None = None):
        self.side = Path(side)
        self.side.mkdir(parents=True)
        self.stop = _Stop(token(cancel))
        self.workers = workers or max(1, min(2, os.cpu_count() or 1))
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="studypack-rebuild")
        self.groups: dict[str, dict[str, list[Reference]]] | None = None
        self.packages: dict[str, Path] = {}      # package written -> a hard link to it
        self.jobs: dict[str, list[Future]] = {}
        self.made: list[tuple[Reference, str]] = []  # rebuilt and checked, in self.side

    # ------------------------------------------------------------ during the unpack

    def written(self, rel: str, path: Path) -> None:
        """Told by the unpack of each file written. Never raises: a listing or package
        that cannot be used here is rebuilt by :meth:`finish`, after verification,
        which then says what is wrong with it."""
        try:
            if rel == LISTING:
                self.groups = by_package(parse_listing(path.read_bytes()))
                for package in list(self.packages):
                    self._start(package)
            elif rel.startswith(fmt.ENV_DIR + "/") and is_package_member(rel):
                # a link: the bag's folder is renamed when the unpack ends
                link = self.side / f"{len(self.packages)}-{path.name}"
                os.link(path, link)
                self.packages[rel] = link
                if self.groups is not None:
                    self._start(rel)
        except (OSError, BundleError):
            pass

    def _start(self, package: str) -> None:
        members = (self.groups or {}).get(package)
        if not members or package in self.jobs:
            return
        link = self.packages[package]
        self.jobs[package] = [self.pool.submit(self._rebuild, link, package, part)
                              for part in _shares(link, members, self.workers)]

    def _rebuild(self, link: Path, package: str, members: dict[str, list[Reference]]) -> None:
        def open_output(ref: Reference) -> Output:
            fd, tmp = tempfile.mkstemp(prefix="file-", dir=self.side)
            kept = tmp + ".ok"

            def final() -> None:     # its sha256 matched: kept for finish()
                os.rename(tmp, kept)
                self.made.append((ref, kept))
            return os.fdopen(fd, "wb"), tmp, final

        rebuild_package(link, package, members, open_output, self.stop)

    # ------------------------------------------------------------ after the unpack

    def finish(self, bag_dir: Path, references: list[Reference], rootfs: Path,
               report: Reporter | None = None, cancel: CancelToken | None = None) -> int:
        """Once the bundle is verified: wait for the workers, rebuild what they did not,
        and put the ``references`` (the listed files the mode needs) in ``rootfs``.
        Returns the bytes rebuilt; refuses a package that gives other bytes."""
        report, cancel = reporter(report), token(cancel)
        self.pool.shutdown(wait=True)
        for package in sorted(self.jobs):
            for job in self.jobs[package]:
                job.result()           # the worker's BundleError (or Cancelled), if any
        cancel.check()
        made: dict[Reference, list[str]] = {}
        for ref, path in self.made:
            made.setdefault(ref, []).append(path)
        Path(rootfs).mkdir(parents=True, exist_ok=True)
        placer, rest, done = Placer(rootfs), [], 0
        for ref in references:
            if made.get(ref):
                os.replace(made[ref].pop(), placer.target(ref))
                done += ref.size
            else:
                rest.append(ref)
        done += rebuild_files(bag_dir, rest, rootfs, report, cancel)
        report(Progress("rebuild", done, done, "rebuilt the traced files stored once, in "
                        "their packages"))
        return done

    def close(self) -> None:
        """Stop the workers (when still running) and remove what they wrote."""
        self.stop.cancel()
        self.pool.shutdown(wait=True)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.side)


def _shares(link: Path, members: dict[str, list[Reference]], workers: int
            ) -> list[dict[str, list[Reference]]]:
    """The members of one package, in ``workers`` shares of about the same size when it
    is a large wheel (a zip is read at any member; a .deb only in one pass)."""
    sizes = {name: refs[0].size for name, refs in members.items()}
    if workers < 2 or not link.name.endswith(".whl") or sum(sizes.values()) < SPLIT_MIN:
        return [members]
    shares: list[dict[str, list[Reference]]] = [{} for _ in range(workers)]
    loads = [0] * workers
    for name in sorted(members, key=lambda n: -sizes[n]):
        i = loads.index(min(loads))
        shares[i][name] = members[name]
        loads[i] += sizes[name]
    return [s for s in shares if s]
