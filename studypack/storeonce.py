"""Store once: a traced file that a vendored package reproduces is stored as a reference.

The traced run used files (``data/rootfs/…``) that the environment step also vendors as
packages (wheels under ``data/env/wheelhouse/``, Debian packages). A traced file whose
bytes equal, byte for byte, a file inside one of those packages is not packed a second
time: it is listed in ``data/trace/package-files.txt`` (tab-separated: sha256, size,
mode, mtime, the file, the package, the member inside it; see docs/format.md), and a
replay rebuilds it from the package and checks it against the recorded sha256.

- :func:`plan_store_once` (create): which rootfs members become references; the digest
  of all traced files (stored or referenced), which keys the reusable trace image;
- :func:`rebuild_files` (replay, verify): rebuild the listed files — or only hash them —
  and refuse with one sentence when a package does not give the recorded bytes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable

from .bundle import format as fmt
from .bundle.writer import Member
from .errors import BundleError, write_error
from .hashing import crc32_file, file_key, sha256_file_keyed
from .packages import open_package
from .progress import CancelToken, Progress, Reporter, reporter, token

LISTING = f"{fmt.TRACE_DIR}/package-files.txt"
MIN_SIZE = 256      # below this a reference line costs as much as the file compressed
_HEADER = (
    "# studypack package files, version 1\n"
    "# Files of the traced run (data/rootfs/...) that a vendored package reproduces byte\n"
    "# for byte: they are stored once, inside the package. Rebuild one with the package's\n"
    "# own tools (unzip -p PACKAGE MEMBER > FILE; for a .deb: dpkg-deb --fsys-tarfile\n"
    "# PACKAGE | tar -xO ./MEMBER > FILE), then check it: sha256sum must give SHA256;\n"
    "# touch -d @MTIME FILE gives it its recorded time (which a .pyc relies on).\n"
    "# Fields, tab-separated (in paths %, tab, CR and LF are written %25 %09 %0D %0A):\n"
    "# SHA256\tSIZE\tMODE\tMTIME\tFILE\tPACKAGE\tMEMBER\n")


@dataclass(frozen=True)
class Reference:
    sha256: str
    size: int
    mode: int           # 0o644 or 0o755
    mtime: int          # seconds since the epoch (a .pyc records its source's)
    file: str           # data/rootfs/...
    package: str        # data/env/... (the vendored package inside the bag)
    member: str         # the file's path inside the package

    def line(self) -> str:
        return "\t".join([self.sha256, str(self.size), f"{self.mode:o}", str(self.mtime),
                          _enc(self.file),
                          _enc(self.package), _enc(self.member)]) + "\n"


@dataclass
class StoreOnce:
    stored: list[Member]                         # rootfs members still packed
    references: list[Reference] = field(default_factory=list)
    digest: str = ""                             # of every traced file and the links

    @property
    def listing(self) -> Member | None:
        if not self.references:
            return None
        return Member.from_bytes(LISTING, listing_text(self.references))

    def metadata(self) -> dict:
        return {"digest": self.digest,
                "from_packages": {"list": LISTING, "files": len(self.references),
                                  "bytes": sum(r.size for r in self.references)}}


def _enc(path: str) -> str:
    return (path.replace("%", "%25").replace("\t", "%09").replace("\r", "%0D")
            .replace("\n", "%0A"))


def _dec(text: str) -> str:
    return (text.replace("%09", "\t").replace("%0D", "\r").replace("%0A", "\n")
            .replace("%25", "%"))


def listing_text(references: list[Reference]) -> bytes:
    return (_HEADER + "".join(r.line() for r in sorted(references, key=lambda r: r.file))
            ).encode("utf-8")


def parse_listing(data: bytes) -> list[Reference]:
    refs = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        try:
            sha, size, mode, mtime, file, package, member = parts
            ref = Reference(sha.lower(), int(size), int(mode, 8), int(mtime), _dec(file),
                            _dec(package), _dec(member))
        except ValueError:
            raise BundleError(f"{LISTING} line {number} is malformed.") from None
        if len(ref.sha256) != 64 or not _safe(ref.file, fmt.ROOTFS_DIR) \
                or not _safe(ref.package, fmt.ENV_DIR):
            raise BundleError(f"{LISTING} line {number} names an unsafe or unknown path.")
        refs.append(ref)
    return refs


def _safe(path: str, under: str) -> bool:
    parts = PurePosixPath(path).parts
    return (path.startswith(under + "/") and ".." not in parts and "." not in parts
            and not path.startswith("/") and "\0" not in path)


def traced_files_digest(file_digests: dict[str, str], symlinks_sha256: str) -> str:
    """One digest for the traced files as a replay sees them: every data/rootfs file
    (stored or referenced) by path and sha256, and the list of links."""
    sha = hashlib.sha256()
    for name in sorted(file_digests):
        sha.update(f"{file_digests[name]}  {name}\n".encode("utf-8", "surrogateescape"))
    sha.update(f"{symlinks_sha256}  {fmt.SYMLINKS}\n".encode())
    return sha.hexdigest()


# --------------------------------------------------------------------------- create

class TracedHashes:
    """The sha256 of the traced files, computed in a thread while the environment step
    runs (issue #17). :func:`plan_store_once` takes a digest from here only for a file
    that still has the key it had when hashed (looked up by device and inode)."""

    def __init__(self, paths: list[Path], cancel: CancelToken | None = None):
        self.paths = list(paths)
        self.found: dict[tuple[int, int], tuple[str, tuple[int, ...]]] = {}
        self._cancel = cancel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studypack-prehash",
                                        daemon=True)

    def start(self) -> "TracedHashes":
        self._thread.start()
        return self

    def _run(self) -> None:
        for path in self.paths:
            if self._stop.is_set() or (self._cancel is not None and self._cancel.cancelled):
                return
            try:
                st = os.stat(path)
                if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in self.found:
                    digest, key = sha256_file_keyed(path)
                    if key is not None:
                        self.found[(key[0], key[1])] = (digest, key)
            except OSError:
                continue    # the layout says what cannot be read

    def result(self) -> dict[tuple[int, int], tuple[str, tuple[int, ...]]]:
        self._thread.join()
        return self.found

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _hashed_before(path: Path, hashed) -> tuple[str, tuple[int, ...]] | None:
    if not hashed:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    known = hashed.get((st.st_dev, st.st_ino))
    return known if known is not None and known[1] == file_key(st) else None


def plan_store_once(rootfs: list[Member], symlinks: bytes, packages: list[Member],
                    report: Reporter | None = None,
                    cancel: CancelToken | None = None, hashed=None) -> StoreOnce:
    """Split the traced files into those still stored and those a package reproduces.

    ``packages`` are the bag members of the vendored environment (those that are not
    packages are ignored). A file is referenced only when a member of the same size
    whose path ends like the file's (``numpy/_core/x.so`` for
    ``…/site-packages/numpy/_core/x.so``) has exactly its sha256. ``hashed``
    (:meth:`TracedHashes.result`) holds digests computed earlier.
    """
    report, cancel = reporter(report), token(cancel)
    report(Progress("store-once", 0, None, "finding traced files the packages reproduce"))
    index: dict[tuple[str, int], list[tuple[Member, str]]] = defaultdict(list)
    archives = {}
    for package in packages:
        archive = open_package(package.source) if package.source else None
        if archive is None:
            continue
        archives[package.arcname] = archive
        for name, size in archive.members():
            if size >= MIN_SIZE:
                index[(PurePosixPath(name).name, size)].append((package, name))

    digests: dict[str, str] = {}
    wanted: dict[str, dict[str, list[Member]]] = defaultdict(lambda: defaultdict(list))
    for member in rootfs:
        cancel.check()
        digests[member.arcname], key = _hashed_before(member.source, hashed) or \
            sha256_file_keyed(member.source, cancel)
        if key is not None:   # the writer need not hash it again, if unchanged by then
            member.known_sha256 = (digests[member.arcname], key)
        path = member.arcname.removeprefix(fmt.ROOTFS_DIR + "/")
        best = None
        for package, name in index.get((PurePosixPath(path).name, member.size), ()):
            if (path == name or path.endswith("/" + name)) and \
                    (best is None or len(name) > len(best[1])):
                best = (package, name)
        if best is not None:
            wanted[best[0].arcname][best[1]].append(member)

    references: list[Reference] = []

    def refer(member: Member, package_name: str, name: str) -> None:
        references.append(Reference(digests[member.arcname], member.size, member.mode,
                                    member.mtime, member.arcname, package_name, name))

    for package_name, names in wanted.items():
        cancel.check()
        # What the package says a file is (a wheel's RECORD sha256), confirmed by the
        # CRC-32 of its bytes in the archive, spares decompressing it; anything else is
        # read and hashed. A replay checks every rebuilt file's sha256 either way.
        recorded = archives[package_name].recorded()
        to_read: dict[str, list[Member]] = {}
        for name, members in names.items():
            claim = recorded.get(name)
            for member in members:
                if claim is not None and claim[0] == digests[member.arcname] and \
                        crc32_file(member.source, cancel) == claim[1]:
                    refer(member, package_name, name)
                else:
                    to_read.setdefault(name, []).append(member)
        for name, chunks in archives[package_name].read(to_read) if to_read else ():
            sha = hashlib.sha256()
            for chunk in chunks:
                sha.update(chunk)
            for member in to_read[name]:
                if sha.hexdigest() == digests[member.arcname]:
                    refer(member, package_name, name)
    referenced = {r.file for r in references}
    stored = [m for m in rootfs if m.arcname not in referenced]
    digest = traced_files_digest(digests, hashlib.sha256(symlinks).hexdigest())
    return StoreOnce(stored, references, digest)


# --------------------------------------------------------------------------- replay

def read_listing(bag_dir: Path) -> list[Reference]:
    path = Path(bag_dir) / LISTING
    if not path.is_file():
        return []
    return parse_listing(path.read_bytes())


def rebuild_files(bag_dir: Path, references: list[Reference], rootfs: Path | None,
                  report: Reporter | None = None, cancel: CancelToken | None = None) -> int:
    """Rebuild each referenced file from its package into ``rootfs`` (None: only check
    it) and check its sha256; return the bytes rebuilt. A package that does not give
    the recorded bytes, or is missing, is refused with one sentence."""
    if not references:
        return 0
    report, cancel = reporter(report), token(cancel)
    bag_dir = Path(bag_dir)
    total = sum(r.size for r in references)
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        report(Progress("rebuild", done[0], total, "rebuilding the traced files stored once, "
                        "in their packages" if rootfs is not None else
                        "checking the traced files stored once, in their packages"))

    if rootfs is not None:
        Path(rootfs).mkdir(parents=True, exist_ok=True)
    placer = Placer(rootfs) if rootfs is not None else None
    for package, members in sorted(by_package(references).items()):
        rebuild_package(bag_dir / package, package, members,
                        placer.open if placer else None, cancel, progress)
    return done[0]


def by_package(references: list[Reference]) -> dict[str, dict[str, list[Reference]]]:
    """The references grouped by package, then by member inside it."""
    groups: dict[str, dict[str, list[Reference]]] = defaultdict(lambda: defaultdict(list))
    for ref in references:
        groups[ref.package][ref.member].append(ref)
    return groups


# (file object, temporary path): where one rebuilt file is written, then what makes it
# final once its sha256 matched (renamed into place, or kept for later)
Output = tuple[BinaryIO, str, Callable[[], None]]


def rebuild_package(path: Path, package: str, members: dict[str, list[Reference]],
                    open_output: Callable[[Reference], Output] | None, cancel: CancelToken,
                    progress: Callable[[int], None] = lambda n: None) -> None:
    """Rebuild (``open_output`` None: only hash) the listed members of one package
    (``path``, the bag's ``package``) and check each against its recorded sha256."""
    archive = open_package(path)
    if archive is None or not path.is_file():
        raise BundleError(f"{LISTING} names {package}, which the bundle does not carry.",
                          "The bundle is incomplete; fetch it again.")
    found: set[str] = set()
    for name, chunks in archive.read(members):
        cancel.check()
        found.add(name)
        refs = members[name]
        outs = [open_output(r) for r in refs] if open_output else []
        sha, size = hashlib.sha256(), 0
        try:
            for chunk in chunks:
                sha.update(chunk)
                size += len(chunk)
                if size > refs[0].size:     # a bomb, or simply not the recorded file
                    raise BundleError(
                        f"{refs[0].file} is not what the run used: {package} gives a "
                        f"file larger than the {refs[0].size} bytes recorded in {LISTING}.",
                        "The bundle was changed after it was made; fetch it again.")
                for fh, _tmp, _final in outs:
                    fh.write(chunk)
            for fh, _tmp, _final in outs:
                fh.close()
            for ref in refs:
                if sha.hexdigest() != ref.sha256 or size != ref.size:
                    raise BundleError(
                        f"{ref.file} is not what the run used: {package} gives a file "
                        f"whose sha256 differs from the one recorded in {LISTING}.",
                        "The bundle was changed after it was made; fetch it again.")
            for (fh, tmp, final), ref in zip(outs, refs):
                os.chmod(tmp, ref.mode)
                os.utime(tmp, (ref.mtime, ref.mtime))
                final()
        finally:
            for fh, tmp, _final in outs:
                fh.close()
                if os.path.exists(tmp):
                    os.unlink(tmp)
        progress(size * len(refs))
    missing = sorted(set(members) - found)
    if missing:
        raise BundleError(f"{package} has no file {missing[0]}, which {LISTING} says "
                          f"rebuilds {members[missing[0]][0].file}.",
                          "The bundle was changed after it was made; fetch it again.")


class Placer:
    """Where rebuilt files go inside ``rootfs``: each must stay inside it even through
    the links the bundle recreated (checked folder by folder, before any folder is
    made; each folder's real path is resolved once)."""

    def __init__(self, rootfs: Path):
        self.real_root = os.path.realpath(rootfs)
        self._real: dict[str, str] = {"": self.real_root}

    def target(self, ref: Reference) -> str:
        parts = PurePosixPath(ref.file.removeprefix(fmt.ROOTFS_DIR + "/")).parts
        parent, rel = self.real_root, ""
        for part in parts[:-1]:
            rel = f"{rel}/{part}"
            known = self._real.get(rel)
            if known is not None:
                parent = known
                continue
            parent = os.path.realpath(os.path.join(parent, part))
            if parent != self.real_root and not parent.startswith(self.real_root + os.sep):
                raise BundleError(f"{LISTING} names {ref.file}, which leads outside the "
                                  "traced files.")
            if not os.path.isdir(parent):
                try:
                    os.mkdir(parent)
                except OSError as exc:
                    raise write_error(Path(parent), exc) from None
            self._real[rel] = parent
        target = os.path.join(parent, parts[-1])
        if os.path.islink(target):
            raise BundleError(f"{LISTING} names {ref.file}, which is a link in the bundle.")
        return target

    def open(self, ref: Reference) -> Output:
        """A temporary file beside the target, renamed onto it when final."""
        target = self.target(ref)
        fd, tmp = tempfile.mkstemp(prefix=".rebuild-", dir=os.path.dirname(target))
        return os.fdopen(fd, "wb"), tmp, lambda: os.replace(tmp, target)


def is_package_member(rel: str) -> bool:
    return rel.startswith(fmt.ENV_DIR + "/") and open_package(Path(rel)) is not None


def verify_bundle(path, report: Reporter | None = None, cancel: CancelToken | None = None):
    """``verify`` plus the store-once references: in the same pass the listing and the
    vendored packages are set aside, then every listed file is rebuilt in memory from
    its package and its sha256 compared with the recorded one."""
    from .bundle.reader import verify

    with tempfile.TemporaryDirectory(prefix="studypack-verify-") as tmp:
        result = verify(path, report, cancel, extract_to=tmp,
                        extract=lambda rel: rel == LISTING or is_package_member(rel))
        bags = [p for p in Path(tmp).iterdir() if p.is_dir()]
        if not result.ok or len(bags) != 1:
            return result
        try:
            references = read_listing(bags[0])
            rebuild_files(bags[0], references, None, report, cancel)
        except BundleError as exc:
            result.ok = False
            result.problems.append(exc.message)
        else:
            result.checked += len(references)
    return result
