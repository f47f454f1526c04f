"""The traced files of a sandbox or directory replay, kept for the next replay of the
same files.

Such a replay needs the traced files unpacked and those stored once rebuilt from
their packages: most of its time. The finished root is kept in the user's cache
(``$XDG_CACHE_HOME/studypack/rootfs/<digest>``, ``~/.cache`` by default), keyed by the
digest of the traced files (:func:`studypack.replay.cache.bag_traced_digest`: every
file's sha256 from the bundle's verified manifest and listing, and the links). A later
replay whose bundle has the same digest mounts that root and writes none of the traced
files; the whole bundle is still verified.

The digest covers the files, not where the stored-once ones were rebuilt from: the
marker also records the sha256 of the bundle's list of such files and of the packages
it names (:func:`bag_sources`), and a bundle whose list or packages differ (a changed
wheel, a reference pointed at another member) is unpacked and rebuilt in full, so that
the rebuild checks them.

An entry is used only when its marker, written last, names the same digest and the
files, links and folders on disk still match the listing the marker records (names,
types, sizes, modification times, link targets): an entry that was cut short, or whose
files were changed, replaced or removed since, is set aside and made anew. Only the
newest :data:`KEEP` entries are kept.

Replays may run at once (a reviewer opening several bundles). Entries are added, set
aside and pruned only under the cache folder's lock (``flock`` on ``.lock``), and a
replay holds a shared lock on the entry it uses (``<digest>.lock``) from
:func:`lookup` or :func:`keep` until :func:`release`: an entry in use is never set
aside, replaced or pruned by another replay (a replay that would replace it runs from
its own unpacked copy instead).

The sandbox mode mounts the kept root read-only. The directory mode runs the traced
programs on this machine, unconfined, so a run could write into the kept root (a Python
writing bytecode beside a module whose bytecode was not traced, say; the example study
does not): the listing then no longer matches, and the next replay sets that entry aside
and makes it anew from its bundle — a changed root is never reused. (Copy-on-write,
which would keep such writes out of the root, is not available without privileges.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..fsutil import cache_dir
from .workfolders import remove_tree

KEEP = 3                           # entries kept, newest used first
MARKER = "complete.json"           # written last
RECIPE = 1                         # bump when what an entry holds changes
CACHED_MODES = ("sandbox", "directory")
FOLDER_LOCK = ".lock"              # held while entries are added, set aside or pruned
_held: dict[str, int] = {}         # kept root -> its entry's lock, held shared (in use)


def cache_root() -> Path:
    return cache_dir("rootfs")


def _entry(digest: str) -> Path:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("not a sha256 digest")
    return cache_root() / digest


def tree_listing(root: Path) -> str:
    """The sha256 of what is under ``root``: each entry's name and type, a file's
    size and modification time, a link's target."""
    sha = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = base / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if path.is_symlink():
                line = f"l\t{rel}\t{os.readlink(path)}"
            elif path.is_dir():
                line = f"d\t{rel}"
            else:
                line = f"f\t{rel}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_mode & 0o7777:o}"
            sha.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return sha.hexdigest()


def bag_sources(bag_dir: Path) -> str:
    """The sha256 of the manifest lines of the store-once list and its packages."""
    from ..bundle import format as fmt
    from ..bundle.tagfiles import parse_manifest
    from ..storeonce import LISTING, read_listing

    manifest = parse_manifest((bag_dir / fmt.MANIFEST).read_bytes(), fmt.MANIFEST)
    names = [LISTING, *sorted({ref.package for ref in read_listing(bag_dir)})]
    return hashlib.sha256("".join(f"{manifest.get(n, '-')}  {n}\n" for n in names)
                          .encode("utf-8", "surrogateescape")).hexdigest()


def sources_of(root: Path) -> str | None:
    """What the kept ``root`` was rebuilt from (:func:`bag_sources`), as its marker says."""
    try:
        return json.loads((root.parent / MARKER).read_text("utf-8")).get("sources")
    except (OSError, ValueError, AttributeError):
        return None


# ------------------------------------------------------------------------ locks

def _flock(fd: int, how: str, wait: bool = True) -> bool:
    """flock ``fd`` shared or exclusive; False when ``wait`` is off and it is taken.
    (No fcntl, as on Windows, where these modes do not run: no locking.)"""
    try:
        import fcntl
    except ImportError:
        return True
    flags = fcntl.LOCK_SH if how == "shared" else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, flags if wait else flags | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextlib.contextmanager
def _changing():
    """The cache folder's lock: one replay at a time adds, sets aside or prunes."""
    folder = cache_root()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / FOLDER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _flock(fd, "exclusive")
        yield folder
    finally:
        os.close(fd)


def _lock_file(entry: Path) -> Path:
    return entry.with_name(entry.name + ".lock")


def _hold(entry: Path) -> bool:
    """Mark ``entry`` in use by this replay (under the folder lock)."""
    fd = os.open(_lock_file(entry), os.O_RDWR | os.O_CREAT, 0o644)
    if not _flock(fd, "shared", wait=False):
        os.close(fd)
        return False
    release(entry / "rootfs")
    _held[str(entry / "rootfs")] = fd
    return True


def _in_use(entry: Path) -> bool:
    """Whether a replay (this one or another) holds ``entry`` (under the folder lock,
    so that none can start to use it before the caller is done with it)."""
    if not _lock_file(entry).exists():
        return False
    fd = os.open(_lock_file(entry), os.O_RDWR)
    try:
        return not _flock(fd, "exclusive", wait=False)
    finally:
        os.close(fd)


def release(root: Path | None) -> None:
    """The replay is done with the kept ``root`` (from :func:`lookup` or :func:`keep`)."""
    fd = _held.pop(str(root), None) if root is not None else None
    if fd is not None:
        os.close(fd)


# ---------------------------------------------------------------------- entries

def lookup(digest: str) -> Path | None:
    """The kept root of traced files of this digest, when complete and unchanged;
    held for this replay until :func:`release`."""
    try:
        entry = _entry(digest)
        marker = entry / MARKER
        root = entry / "rootfs"
        if entry.is_symlink() or not marker.is_file() or root.is_symlink() or not root.is_dir():
            return None
        with _changing():
            record = json.loads(marker.read_text("utf-8"))
            if not isinstance(record, dict) or record.get("digest") != digest \
                    or record.get("recipe") != RECIPE \
                    or record.get("listing") != tree_listing(root):
                if not _in_use(entry):     # (another replay's directory run may be
                    _discard(entry)        # writing into it: left to that replay)
                return None
            if not _hold(entry):
                return None
            os.utime(marker)               # newest used: kept longest
        return root
    except (OSError, ValueError):
        return None


def keep(rootfs: Path, digest: str, original_root: str, *, move: bool,
         sources: str = "") -> Path | None:
    """Put the finished ``rootfs`` in the cache (moved when ``move`` and on the same
    file system, else copied) and return where it now is; None when the cache cannot
    be written (the replay then uses ``rootfs`` where it is)."""
    try:
        entry = _entry(digest)
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".new-", dir=entry.parent))
    except (OSError, ValueError):
        return None
    target, moved = staging / "rootfs", False
    try:
        try:
            if not move:
                raise OSError("copy asked for")
            os.rename(rootfs, target)
        except OSError:
            shutil.copytree(rootfs, target, symlinks=True)
        moved = not rootfs.exists()
        _mount_points(target, original_root)
        record = {"digest": digest, "recipe": RECIPE, "listing": tree_listing(target),
                  "sources": sources,
                  "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (staging / MARKER).write_text(json.dumps(record), "utf-8")   # last
        with _changing():
            if _in_use(entry):
                raise OSError("another replay uses the entry of these traced files")
            _discard(entry)
            os.rename(staging, entry)
            _hold(entry)
            _prune(entry.parent)
        return entry / "rootfs"
    except OSError:
        if moved and target.is_dir() and not rootfs.exists():
            with contextlib.suppress(OSError):
                os.rename(target, rootfs)      # the replay goes on with its own copy
        remove_tree(staging)
        return None


def _mount_points(root: Path, original_root: str) -> None:
    """The folders the sandbox mounts onto, made now: studypack never writes into the
    kept root after its marker."""
    from .sandbox import SANDBOX_TMP, _mount_point

    for name in ("proc", "dev", "tmp", original_root.lstrip("/")):
        _mount_point(root / name)
    tmp = root / "tmp"
    if tmp.is_dir() and not tmp.is_symlink() and any(tmp.iterdir()):
        _mount_point(root / SANDBOX_TMP.lstrip("/"))


def _discard(entry: Path) -> None:
    if entry.is_symlink():
        entry.unlink()
    elif entry.exists():
        aside = entry.with_name(f".old-{entry.name}-{os.getpid()}")
        os.rename(entry, aside)        # out of the way at once, then removed
        remove_tree(aside)


def _prune(folder: Path) -> None:
    """Keep the newest KEEP entries (by last use), but never one in use; remove
    leftovers of killed replays and the lock files of entries gone (under the
    folder lock)."""
    entries = []
    for path in folder.iterdir():
        if path.name.startswith((".new-", ".old-")):
            if time.time() - path.lstat().st_mtime > 3600:
                remove_tree(path)
            continue
        if path.name.startswith(".") or path.is_symlink() or not path.is_dir():
            continue                   # the locks
        marker = path / MARKER
        entries.append((marker.stat().st_mtime if marker.is_file() else 0, path))
    for _, path in sorted(entries, reverse=True)[KEEP:]:
        with contextlib.suppress(OSError):
            if not _in_use(path):
                _discard(path)
    for lock in folder.glob("[!.]*.lock"):
        entry = lock.with_name(lock.name.removesuffix(".lock"))
        with contextlib.suppress(OSError):
            if not entry.exists() and not _in_use(entry):
                lock.unlink()
