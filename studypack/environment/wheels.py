"""Where each locked distribution's wheel comes from, offline first.

In order: a wheelhouse the user names (``--find-links``, ``[environment] find_links``),
pip's own cache, the package index when it answers (``pip download``), and last a wheel
rebuilt from the installed distribution's own files (its RECORD), marked as rebuilt.
A wheel is taken only if it fits the target: its tags for Linux x86_64 and the exact
interpreter (3.11.7, not 3.11), and its ``Requires-Python``.
"""

from __future__ import annotations

import base64
import email.parser
import hashlib
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import (InvalidWheelFilename, canonicalize_name,
                             parse_wheel_filename)

from ..errors import EnvironmentCaptureError
from ..fsutil import cache_dir

# Source labels, as the lock and the report say them.
FROM_WHEELHOUSE = "your wheelhouse"
FROM_PIP_CACHE = "pip's cache"
FROM_INDEX = "the package index"
FROM_OWN_CACHE = "studypack's cache of wheels from the index"
OWN_CACHE_MAX = 2 * 1024 ** 3     # the newest wheels up to this many bytes are kept
REBUILT = "rebuilt from the installed files"


@dataclass(frozen=True)
class Candidate:
    path: Path
    filename: str          # the wheel's proper name (a cache body has none of its own)
    source: str


@dataclass
class WheelTarget:
    python_version: str                 # "3.11.7"
    implementation: str = "cpython"
    platforms: list[str] = field(default_factory=list)

    def tags(self) -> set[Tag]:
        major, minor = (int(x) for x in self.python_version.split(".")[:2])
        platforms = list(self.platforms) + ["linux_x86_64"]
        found = set(compatible_tags((major, minor), platforms=platforms))
        if self.implementation == "cpython":
            found |= set(cpython_tags((major, minor), platforms=platforms))
        return found

    def why_not(self, candidate: Candidate, tags: set[Tag]) -> str | None:
        """None when the wheel fits; otherwise the reason, in words."""
        _name, _version, _build, wheel_tags = parse_wheel_filename(candidate.filename)
        if not wheel_tags & tags:
            return (f"{candidate.filename} is not for Linux x86_64 / Python "
                    f"{self.python_version}")
        requires = _metadata(candidate.path).get("Requires-Python")
        if requires:
            try:
                ok = SpecifierSet(requires).contains(self.python_version, prereleases=True)
            except InvalidSpecifier:
                ok = True
            if not ok:
                return (f"{candidate.filename} requires Python {requires}, the run used "
                        f"{self.python_version}")
        return None


def _metadata(wheel: Path) -> dict[str, str]:
    try:
        with zipfile.ZipFile(wheel) as zf:
            name = next((n for n in zf.namelist()
                         if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
            if name is None:
                return {}
            return dict(email.parser.Parser().parsestr(
                zf.read(name).decode("utf-8", "replace"), headersonly=True).items())
    except (OSError, zipfile.BadZipFile):
        return {}


def index_dirs(folders: list[Path], source: str = FROM_WHEELHOUSE
               ) -> dict[tuple[str, str], list[Candidate]]:
    """(name, version) -> wheels found in ``folders`` (not recursive)."""
    found: dict[tuple[str, str], list[Candidate]] = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise EnvironmentCaptureError(
                f"The wheelhouse {folder} does not exist.",
                "Check --find-links or `find_links` under [environment] in studypack.toml.")
        for wheel in sorted(folder.glob("*.whl")):
            _add(found, wheel, wheel.name, f"{source} {folder}")
    return found


def own_cache_dir() -> Path:
    """Where studypack keeps the wheels the package index gave an earlier ``create``
    (``$XDG_CACHE_HOME/studypack/wheels``, ``~/.cache`` by default)."""
    return cache_dir("wheels")


def index_own_cache() -> dict[tuple[str, str], list[Candidate]]:
    """The wheels in studypack's cache: at hand like pip's cache, with no pip process
    to start and no index to ask (pip does not cache what a ``file://`` index or a
    ``--find-links`` URL gives, nor anything with ``--no-cache-dir``)."""
    folder = own_cache_dir()
    return index_dirs([folder], FROM_OWN_CACHE) if folder.is_dir() else {}


def keep_in_own_cache(paths: list[Path], limit: int = OWN_CACHE_MAX) -> None:
    """Keep wheels the index gave in studypack's cache, then drop the least recently
    kept beyond ``limit`` bytes. A cache that cannot be written is only slower."""
    folder = own_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            target = folder / path.name
            if target.exists():
                os.utime(target)
                continue
            tmp = folder / f".{path.name}.{os.getpid()}"
            try:
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        kept = sorted(folder.glob("*.whl"), key=lambda p: p.stat().st_mtime, reverse=True)
        total = 0
        for wheel in kept:
            total += wheel.stat().st_size
            if total > limit:
                wheel.unlink()
    except OSError:
        pass


def pip_cache_dir() -> Path:
    if os.environ.get("PIP_CACHE_DIR"):
        return Path(os.environ["PIP_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "pip"


def index_pip_cache(cache: Path | None = None, scratch: Path | None = None
                    ) -> dict[tuple[str, str], list[Candidate]]:
    """Wheels in pip's cache: the wheels pip built, and the downloaded files its HTTP
    cache keeps — whole in ``http-v2/…/*.body`` (pip ≥ 23.3), or inside the serialized
    response in ``http/`` (older pip, e.g. the 23.2 that Python 3.11 ships), which are
    copied out into ``scratch`` (without one, that older cache is not read)."""
    cache = cache or pip_cache_dir()
    found: dict[tuple[str, str], list[Candidate]] = {}
    for wheel in sorted((cache / "wheels").rglob("*.whl")) if (cache / "wheels").is_dir() else []:
        _add(found, wheel, wheel.name, FROM_PIP_CACHE)
    http = cache / "http-v2"
    for body in sorted(http.rglob("*.body")) if http.is_dir() else []:
        name = _wheel_name_of(body)
        if name:
            _add(found, body, name, FROM_PIP_CACHE)
    old = cache / "http"
    if scratch is not None and old.is_dir():
        for entry in sorted(p for p in old.rglob("*") if p.is_file()):
            body = _serialized_body(entry)
            if body is None:
                continue
            scratch.mkdir(parents=True, exist_ok=True)
            copy = scratch / entry.name
            copy.write_bytes(body)
            name = _wheel_name_of(copy)
            if name:
                _add(found, copy, name, FROM_PIP_CACHE)
            else:
                copy.unlink()
    return found


# msgpack's "bin" headers: marker byte, then the length in 1, 2 or 4 big-endian bytes.
_BIN_HEADERS = ((b"\xc6", 4), (b"\xc5", 2), (b"\xc4", 1))


def _serialized_body(entry: Path) -> bytes | None:
    """The body of a response cached by pip < 23.3 ("cc=4," + msgpack), if it is a zip."""
    try:
        with open(entry, "rb") as fh:
            if fh.read(5) != b"cc=4,":
                return None
            data = fh.read()
    except OSError:
        return None
    start = data.find(b"PK\x03\x04")
    for marker, size in _BIN_HEADERS:
        if start > size and data[start - size - 1:start - size] == marker:
            length = int.from_bytes(data[start - size:start], "big")
            return data[start:start + length]
    return None


def _add(found, path: Path, filename: str, source: str) -> None:
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return
    found.setdefault((canonicalize_name(name), str(version)), []).append(
        Candidate(path, filename, source))


def _wheel_name_of(body: Path) -> str | None:
    """The proper file name of a wheel stored under a hash name, from its WHEEL file."""
    try:
        with open(body, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                return None
        with zipfile.ZipFile(body) as zf:
            wheel_file = next((n for n in zf.namelist()
                               if n.count("/") == 1 and n.endswith(".dist-info/WHEEL")), None)
            if wheel_file is None:
                return None
            stem = wheel_file.split("/")[0][:-len(".dist-info")]
            tags = [v.strip() for k, v in email.parser.Parser().parsestr(
                zf.read(wheel_file).decode("utf-8", "replace")).items() if k == "Tag"]
    except (OSError, zipfile.BadZipFile):
        return None
    return f"{stem}-{compress_tags(tags)}.whl" if tags else None


def compress_tags(tags: list[str]) -> str:
    """["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"] ->
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64" (the wheel name's form)."""
    parts = [t.split("-") for t in tags]
    return "-".join(".".join(dict.fromkeys(p[i] for p in parts)) for i in range(3))


def choose(candidates: list[Candidate], target: WheelTarget, tags: set[Tag]
           ) -> tuple[Candidate | None, list[str]]:
    """The first candidate that fits, and why the others did not."""
    reasons = []
    for candidate in candidates:
        why = target.why_not(candidate, tags)
        if why is None:
            return candidate, reasons
        reasons.append(why)
    return None, reasons


def target_fits(path: Path, dist, target: WheelTarget, tags: set[Tag]) -> bool:
    """Whether the wheel file at ``path`` is ``dist``'s release and fits the target."""
    try:
        name, version, _b, _t = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return False
    return (canonicalize_name(name), str(version)) == (dist.key, dist.version) and \
        target.why_not(Candidate(path, path.name, ""), tags) is None


def copy_wheel(candidate: Candidate, wheelhouse: Path) -> Path:
    dest = wheelhouse / candidate.filename
    if not dest.exists():
        shutil.copyfile(candidate.path, dest)
    return dest


# ----------------------------------------------------------------- rebuild from RECORD

def rebuild_wheel(name: str, version: str, dist_info: Path, prefix: Path,
                  target: WheelTarget, wheelhouse: Path) -> Path:
    """A wheel made of the files pip installed for this distribution (its RECORD).

    The files are those the run used, byte for byte; only the compiled ``.pyc`` caches
    and the installer's own notes are left out, and console scripts are rewritten by
    pip at install from ``entry_points.txt``."""
    record = dist_info / "RECORD"
    if not record.is_file():
        raise EnvironmentCaptureError(
            f"{name}=={version} cannot be rebuilt: it was installed without a RECORD "
            f"({dist_info.name}).")
    site = dist_info.parent
    stem = dist_info.name[:-len(".dist-info")]
    scripts = _console_scripts(dist_info)
    members: list[tuple[str, Path]] = []
    for line in record.read_text(encoding="utf-8", errors="replace").splitlines():
        rel = line.rsplit(",", 2)[0] if line.count(",") >= 2 else line
        if not rel or rel.endswith(".pyc") or "/__pycache__/" in f"/{rel}":
            continue
        path = Path(os.path.normpath(site / rel))
        if path.parent == dist_info and path.name in _INSTALLER_NOTES:
            continue
        if not path.is_file():
            continue
        if path.is_relative_to(site):
            members.append((path.relative_to(site).as_posix(), path))
        elif path.parent == prefix / "bin":
            if path.name not in scripts:
                members.append((f"{stem}.data/scripts/{path.name}", path))
        elif path.is_relative_to(prefix):
            members.append((f"{stem}.data/data/{path.relative_to(prefix).as_posix()}", path))
    wheel_text, tags = _wheel_file(dist_info, members, target)
    filename = f"{stem}-{compress_tags(tags)}.whl"
    dest = wheelhouse / filename
    record_lines = []
    tmp = dest.with_suffix(".partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, path in members:
            data = path.read_bytes()
            zf.writestr(_zipinfo(arcname, path), data)
            record_lines.append(f"{arcname},sha256={_b64digest(data)},{len(data)}")
        wheel_bytes = wheel_text.encode()
        zf.writestr(f"{stem}.dist-info/WHEEL", wheel_bytes)
        record_lines.append(f"{stem}.dist-info/WHEEL,sha256={_b64digest(wheel_bytes)},"
                            f"{len(wheel_bytes)}")
        record_lines.append(f"{stem}.dist-info/RECORD,,")
        zf.writestr(f"{stem}.dist-info/RECORD", "\n".join(record_lines) + "\n")
    os.replace(tmp, dest)
    return dest


# Written anew (WHEEL, RECORD) or by the installer that will install the wheel.
_INSTALLER_NOTES = {"RECORD", "WHEEL", "INSTALLER", "REQUESTED", "direct_url.json"}


def _zipinfo(arcname: str, path: Path) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _b64digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _console_scripts(dist_info: Path) -> set[str]:
    entry_points = dist_info / "entry_points.txt"
    if not entry_points.is_file():
        return set()
    names, section = set(), ""
    for line in entry_points.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and section in ("console_scripts", "gui_scripts"):
            names.add(line.split("=", 1)[0].strip())
    return names


def _wheel_file(dist_info: Path, members, target: WheelTarget) -> tuple[str, list[str]]:
    """The WHEEL file (the installed one with a note, or a new one) and its tags."""
    path = dist_info / "WHEEL"
    if path.is_file():
        text = path.read_text(errors="replace")
        tags = [v.strip() for k, v in email.parser.Parser().parsestr(text).items() if k == "Tag"]
        if tags:
            return text.rstrip("\n") + "\nGenerator-Note: rebuilt by studypack from the " \
                                       "installed files\n", tags
    binary = any(arc.endswith((".so", ".pyd")) for arc, _ in members)
    minor = "".join(target.python_version.split(".")[:2])
    tag = f"cp{minor}-cp{minor}-linux_x86_64" if binary else "py3-none-any"
    text = (f"Wheel-Version: 1.0\nGenerator: studypack (rebuilt from the installed files)\n"
            f"Root-Is-Purelib: {'false' if binary else 'true'}\nTag: {tag}\n")
    return text, [tag]
