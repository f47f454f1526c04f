"""Debian packages the traced run used, vendored as ``.deb`` files at their exact versions.

ReproZip names the dpkg packages that own the files the run opened. Those packages and
the packages they depend on (as installed here) are locked in
``env/debian-packages.lock``; each one the base image does not already have at the same
version is vendored into ``env/debs/`` with its sha256, taken from, in this order:

1. the apt cache (``/var/cache/apt/archives``),
2. the machine's configured mirror (``apt-get download NAME=VERSION``), when it answers,
3. the installed files themselves (``dpkg-repack``), marked as rebuilt.

The Dockerfile then installs them offline on top of the pinned base image. Only
Debian and its derivatives (dpkg) are covered: on another distribution nothing is
vendored and the review says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import fsutil
from ..progress import Progress, reporter, token
from ..hashing import sha256_file

LOCK_NAME = "debian-packages.lock"
DEBS_DIR = "debs"
SUMS_NAME = "SHA256SUMS"
APT_CACHE = Path("/var/cache/apt/archives")
SOURCES = ("apt-cache", "mirror", "rebuilt")
_QUERY_FORMAT = ("${Package}\\t${Version}\\t${Architecture}\\t${Status}\\t${Pre-Depends}"
                 "\\t${Depends}\\t${Provides}\\n")


@dataclass
class Installed:
    name: str
    version: str
    architecture: str
    depends: list[list[str]] = field(default_factory=list)   # alternatives per entry
    provides: list[str] = field(default_factory=list)


@dataclass
class DebPackage:
    name: str
    version: str
    architecture: str
    why: str                    # "used by the run" | "needed by NAME"
    status: str = ""            # "vendored" | "in base image" | "base has another
    #                             version" | "not vendored"
    source: str = ""            # "apt-cache" | "mirror" | "rebuilt" (dpkg-repack)
    file: str = ""              # "debs/jq_1.6-2.1_amd64.deb"
    sha256: str = ""
    size: int = 0
    reason: str = ""            # why not vendored

    @property
    def label(self) -> str:
        return f"{self.name}={self.version}"


@dataclass
class DebianLock:
    packages: list[DebPackage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    covered: bool = True        # False: not a dpkg system, or the base is not Debian

    def with_status(self, status: str) -> list[DebPackage]:
        return [p for p in self.packages if p.status == status]

    @property
    def vendored(self) -> list[DebPackage]:
        return self.with_status("vendored")

    def to_metadata(self) -> dict:
        return {"covered": self.covered, "lock": f"{LOCK_NAME}" if self.packages else None,
                "packages": [{k: v for k, v in asdict(p).items() if v not in ("", 0)}
                             for p in self.packages],
                "notes": list(self.notes)}

    def summary(self) -> list[str]:
        """A few lines for a log: one per category with its count, the packages not
        vendored grouped by reason. Each package is listed by :meth:`details`
        (``create -v``) and in studypack.json."""
        if not self.covered:
            return list(self.notes)
        lines = []
        vendored = self.vendored
        if vendored:
            rebuilt = sum(p.source == "rebuilt" for p in vendored)
            lines.append(f"Debian packages vendored: {len(vendored)} (.deb with sha256"
                         + (f"; {rebuilt} rebuilt from the installed files by dpkg-repack"
                            if rebuilt else "") + ")")
        base = self.with_status("in base image")
        if base:
            lines.append(f"Debian packages that came with the base image at the same "
                         f"version: {len(base)}")
        other = self.with_status("base has another version")
        if other:
            lines.append(f"Debian packages the base image has at another version, kept as "
                         f"the base has them: {len(other)}")
        groups: dict[str, int] = {}
        for p in self.with_status("not vendored"):
            groups[reason_group(p.reason)] = groups.get(reason_group(p.reason), 0) + 1
        for reason, count in sorted(groups.items(), key=lambda item: -item[1]):
            lines.append(f"Debian packages not vendored: {count} ({reason})")
        if lines:
            lines.append(f"{len(self.packages)} Debian package(s) in all, each listed in "
                         f"studypack.json and {LOCK_NAME} (create -v prints them)")
        return lines + list(self.notes)

    def details(self) -> list[str]:
        """One line per package: its status, and why when it was not vendored."""
        return [f"Debian package {p.status or 'planned'}: {p.label}"
                + (f" ({p.source})" if p.source else "")
                + (f" ({p.reason})" if p.reason else "") for p in self.packages]


def reason_group(reason: str) -> str:
    """The reason a package was not vendored, without what is particular to it (the
    configuration files it read), so that packages group by reason."""
    if reason.startswith("the run only read its configuration"):
        return "the run only read their configuration, which is in the traced files"
    return reason or "no reason was recorded"


# ------------------------------------------------------------------ what is installed

def dpkg_available() -> bool:
    return shutil.which("dpkg-query") is not None and Path("/var/lib/dpkg/status").is_file()


def parse_dpkg_query(text: str) -> dict[str, Installed]:
    """``dpkg-query -W -f=_QUERY_FORMAT`` output → installed packages by name."""
    found: dict[str, Installed] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 7 or "installed" not in parts[3].split()[-1:]:
            continue
        name, version, arch = parts[0], parts[1], parts[2]
        depends = [_alternatives(item) for item in _items(parts[4]) + _items(parts[5])]
        provides = [_bare(item) for item in _items(parts[6])]
        found[name] = Installed(name, version, arch, depends, provides)
    return found


def installed_packages() -> dict[str, Installed]:
    out = subprocess.run(["dpkg-query", "-W", "-f", _QUERY_FORMAT], capture_output=True,
                         text=True, errors="replace")
    return parse_dpkg_query(out.stdout)


def _items(field_text: str) -> list[str]:
    return [item.strip() for item in field_text.split(",") if item.strip()]


def _bare(item: str) -> str:
    """``libc6:any (>= 2.34)`` → ``libc6``."""
    return re.split(r"[\s(:]", item.strip(), maxsplit=1)[0]


def _alternatives(item: str) -> list[str]:
    return [_bare(alt) for alt in item.split("|") if alt.strip()]


def dependency_closure(used: dict[str, str], installed: dict[str, Installed]) -> dict[str, str]:
    """The packages ``used`` (name → why) plus every installed package they depend on
    (Depends, Pre-Depends; the first installed alternative), name → why."""
    providers: dict[str, str] = {}
    for package in installed.values():
        for virtual in package.provides:
            providers.setdefault(virtual, package.name)
    chosen = {name: why for name, why in used.items() if name in installed}
    queue = list(chosen)
    while queue:
        name = queue.pop()
        for alternatives in installed[name].depends:
            target = next((a if a in installed else providers[a] for a in alternatives
                           if a in installed or a in providers), None)
            if target and target not in chosen:
                chosen[target] = f"needed by {name}"
                queue.append(target)
    return chosen


# ------------------------------------------------------------------ the base image

def os_release(text: str) -> dict[str, str]:
    facts = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key.strip()] = value.strip().strip('"')
    return facts


def host_release() -> dict[str, str]:
    try:
        return os_release(Path("/etc/os-release").read_text())
    except OSError:
        return {}


def base_image_packages(engine, image: str,
                        cancel=None) -> tuple[dict[str, Installed] | None, str]:
    """(the packages installed in ``image`` by name, its "ID VERSION_ID"); None when the
    image has no dpkg."""
    from ..errors import EngineError, StudypackError

    cached = _base_listing_path(image)
    try:
        output = cached.read_text(encoding="utf-8") if cached else None
    except (OSError, UnicodeDecodeError):
        output = None
    if not output:
        script = (f"cat /etc/os-release 2>/dev/null; echo ===; "
                  f"dpkg-query -W -f '{_QUERY_FORMAT}'")
        try:
            result = engine.run(image, ["sh", "-c", script], cancel=cancel, timeout=120)
        except EngineError:
            return None, ""
        output = result.stdout if result.exit_code == 0 else ""
        if not output:
            release_text = result.stdout.partition("===\n")[0]
            return None, _release_name(os_release(release_text))
        if cached and output.partition("===\n")[2].strip():
            # a cache that cannot be written is only slower next time
            with contextlib.suppress(OSError, StudypackError):
                cached.parent.mkdir(parents=True, exist_ok=True)
                fsutil.atomic_write_text(cached, output)
    release_text, _, packages_text = output.partition("===\n")
    release = os_release(release_text)
    if not packages_text.strip():
        return None, _release_name(release)
    return parse_dpkg_query(packages_text), _release_name(release)


def _base_listing_path(image: str) -> Path | None:
    """Where the package listing of an image pinned by digest is kept: the same digest
    is the same files, so a later ``create`` need not start a container to list them
    (issue #17). None for a name that can move (no digest)."""
    if "sha256:" not in image:
        return None
    key = hashlib.sha256(f"{image}\n{_QUERY_FORMAT}".encode()).hexdigest()[:40]
    return fsutil.cache_dir("base-images") / f"{key}.txt"


def _release_name(release: dict[str, str]) -> str:
    return " ".join(v for v in (release.get("ID", ""), release.get("VERSION_ID", "")) if v)


# ------------------------------------------------------------------ vendoring

def deb_file_name(name: str, version: str, arch: str) -> str:
    """Debian's own file naming: an epoch's colon is written %3a."""
    return f"{name}_{version.replace(':', '%3a')}_{arch}.deb"


def cache_dir() -> Path:
    return fsutil.cache_dir("debs")


def _is_configuration(path: str) -> bool:
    """A file under /etc, or a link into /etc (/usr/share/locale/locale.alias)."""
    return path.startswith("/etc/") or os.path.realpath(path).startswith("/etc/")


def plan_debian_packages(used: list[dict], *, installed: dict[str, Installed] | None = None,
                         base: dict[str, Installed] | None = None) -> DebianLock:
    """Which packages to lock and which to vendor (no file is touched).

    ``used``: ReproZip's packages (name, version, the files the run used). ``base``: the
    base image's packages (None: not known, everything is vendored). A package the base
    has is not vendored: at the same version it is the same package; at another version
    the base's consistent set is kept (downgrading one library under the base's other
    packages breaks them) and the difference is reported."""
    installed = installed_packages() if installed is None else installed
    lock = DebianLock()
    wanted: dict[str, str] = {}
    for package in used:
        name = str(package.get("name") or "").split(":")[0]
        files = [str(f) for f in package.get("files") or []]
        if not name:
            continue
        if files and all(_is_configuration(f) for f in files):
            lock.packages.append(DebPackage(
                name, str(package.get("version") or ""), "", "used by the run",
                status="not vendored",
                reason=f"the run only read its configuration ({', '.join(files[:3])}), "
                       "which is in the traced files"))
            continue
        wanted[name] = "used by the run"
    chosen = dependency_closure(wanted, installed)
    for name, why in sorted(chosen.items()):
        package = installed[name]
        deb = DebPackage(name, package.version, package.architecture, why)
        if base is not None and name in base:
            if base[name].version == package.version:
                deb.status = "in base image"
            else:
                deb.status = "base has another version"
                deb.reason = (f"the base image has {base[name].version}; the run used "
                              f"{package.version}")
        lock.packages.append(deb)
    for name in sorted(set(wanted) - set(chosen)):
        version = next((str(p.get("version") or "") for p in used
                        if str(p.get("name")).split(":")[0] == name), "")
        lock.packages.append(DebPackage(name, version, "", "used by the run",
                                        status="not vendored",
                                        reason="no longer installed on this machine"))
    lock.packages.sort(key=lambda p: p.name)
    return lock


def vendor_debian_packages(lock: DebianLock, files_dir: Path, *,
                           sources: tuple[str, ...] = SOURCES, report=None,
                           cancel=None) -> DebianLock:
    """Fetch every package of ``lock`` still to vendor into ``files_dir/debs`` and write
    ``files_dir/debian-packages.lock`` and ``debs/SHA256SUMS``."""
    report, cancel = reporter(report), token(cancel)
    todo = [p for p in lock.packages if not p.status]
    debs = Path(files_dir) / DEBS_DIR
    problems: dict[str, list[str]] = {p.name: [] for p in todo}
    for source in sources:
        left = [p for p in todo if not p.status]
        if not left:
            break
        cancel.check()
        report(Progress("debs", len(todo) - len(left), len(todo),
                        f"Vendoring {len(left)} Debian package(s) from {source}", unit="pkg"))
        failed = _FETCHERS[source](left, debs, cancel)
        for package in left:
            if package.name in failed:
                problems[package.name].append(f"{source}: {failed[package.name]}")
                continue
            target = debs / deb_file_name(package.name, package.version, package.architecture)
            package.status, package.source = "vendored", source
            package.file = f"{DEBS_DIR}/{target.name}"
            package.sha256 = sha256_file(target)
            package.size = target.stat().st_size
    for package in todo:
        if not package.status:
            package.status, package.reason = "not vendored", "; ".join(problems[package.name])
    report(Progress("debs", len(todo), len(todo),
                    f"{len(lock.vendored)} Debian package(s) vendored", unit="pkg"))
    vendored = lock.vendored
    if vendored:
        (debs / SUMS_NAME).write_text("".join(f"{p.sha256}  {Path(p.file).name}\n"
                                              for p in vendored))
    if lock.packages:
        write_lock(lock, Path(files_dir) / LOCK_NAME)
    return lock


def write_lock(lock: DebianLock, path: Path) -> None:
    lines = ["# Debian packages the traced run used, and what they depend on, at the exact",
             "# versions installed when the bundle was made (studypack).",
             "# name\tversion\tarchitecture\tstatus\tsource\tsha256\tfile\twhy"]
    for p in lock.packages:
        lines.append("\t".join([p.name, p.version, p.architecture or "-",
                                p.status.replace(" ", "-"), p.source or "-",
                                p.sha256 or "-", p.file or "-", p.reason or p.why]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _matches(deb: Path, package: DebPackage) -> bool:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"],
                         capture_output=True, text=True)
    fields = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    return out.returncode == 0 and (fields.get("Package"), fields.get("Version"),
                                    fields.get("Architecture")) == (
        package.name, package.version, package.architecture)


def _take(found: Path, package: DebPackage, debs: Path, cache: Path | None = None) -> bool:
    """Copy ``found`` into the study's debs/ (and a cache shared by later bundles) when
    it is exactly ``package``."""
    if not found.is_file() or not _matches(found, package):
        return False
    target = debs / deb_file_name(package.name, package.version, package.architecture)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found, target)
    if cache is not None and found.parent != cache:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found, cache / target.name)
        except OSError:
            pass   # a cache is a convenience
    return True


def _from_apt_cache(packages: list[DebPackage], debs: Path, cancel) -> dict[str, str]:
    failed = {}
    for package in packages:
        name = deb_file_name(package.name, package.version, package.architecture)
        if not _take(APT_CACHE / name, package, debs):
            failed[package.name] = "not in the apt cache"
    return failed


def _cached(packages: list[DebPackage], debs: Path, cache: Path) -> list[DebPackage]:
    """The packages not found in studypack's own ``cache`` (kept from earlier bundles)."""
    return [p for p in packages
            if not _take(cache / deb_file_name(p.name, p.version, p.architecture), p, debs)]


def _apt_get(args: list[str], cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", "-q", "-o", "Acquire::Retries=0",
                           "-o", "Acquire::http::Timeout=20",
                           "-o", "Acquire::https::Timeout=20", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def _from_mirror(packages: list[DebPackage], debs: Path, cancel) -> dict[str, str]:
    """``apt-get download`` from the machine's configured sources (checks their sha256)."""
    if shutil.which("apt-get") is None:
        return {p.name: "apt-get is not installed" for p in packages}
    specs = {f"{p.name}:{p.architecture}={p.version}": p
             for p in _cached(packages, debs, cache_dir() / "mirror")}
    if not specs:
        return {}
    with tempfile.TemporaryDirectory(prefix="studypack-apt-") as tmp:
        try:
            uris = _apt_get(["download", "--print-uris", *specs], tmp)
            offered = {line.split()[1] for line in uris.stdout.splitlines()
                       if line.startswith("'")}
            wanted = [spec for spec, p in specs.items()
                      if deb_file_name(p.name, p.version, p.architecture) in offered]
            got = _apt_get(["download", *wanted], tmp) if wanted else None
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {p.name: f"apt-get did not finish ({exc.__class__.__name__})"
                    for p in packages}
        failed = {}
        for spec, package in specs.items():
            name = deb_file_name(package.name, package.version, package.architecture)
            if _take(Path(tmp) / name, package, debs, cache_dir() / "mirror"):
                continue
            failed[package.name] = ("the configured mirror does not offer this version"
                                    if spec not in wanted else
                                    _last_line(got, "the download failed"))
        return failed


def _from_installed_files(packages: list[DebPackage], debs: Path, cancel) -> dict[str, str]:
    """``dpkg-repack``: a .deb rebuilt from the files installed on this machine."""
    if shutil.which("dpkg-repack") is None:
        return {p.name: "dpkg-repack is not installed" for p in packages}
    prefix = []
    if os.geteuid() != 0:
        if shutil.which("fakeroot") is None:
            return {p.name: "dpkg-repack needs root or fakeroot" for p in packages}
        prefix = ["fakeroot", "-u"]
    failed = {}
    with tempfile.TemporaryDirectory(prefix="studypack-repack-") as tmp:
        for package in _cached(packages, debs, cache_dir() / "rebuilt"):
            cancel.check()
            run = subprocess.run([*prefix, "dpkg-repack",
                                  f"{package.name}:{package.architecture}"],
                                 cwd=tmp, capture_output=True, text=True)
            made = next(Path(tmp).glob(f"{package.name}_*.deb"), Path(tmp) / "none")
            if not _take(made, package, debs, cache_dir() / "rebuilt"):
                failed[package.name] = _last_line(run, "dpkg-repack failed")
            made.unlink(missing_ok=True)
    return failed


def _last_line(run: subprocess.CompletedProcess | None, default: str) -> str:
    lines = ((run.stderr or run.stdout).strip().splitlines()) if run is not None else []
    return lines[-1].removeprefix("E: ") if lines else default


_FETCHERS = {"apt-cache": _from_apt_cache, "mirror": _from_mirror,
             "rebuilt": _from_installed_files}


def install_steps(lock: DebianLock, env_dir: str = "/env") -> list[str]:
    """Dockerfile lines installing the vendored packages offline (apt orders them)."""
    if not lock.vendored:
        return []
    return [
        "# Debian packages the run used, vendored as .deb files at their exact versions;",
        "# their sha256 are checked, then apt installs them with no network.",
        f"COPY env/{DEBS_DIR}/ {env_dir}/{DEBS_DIR}/",
        f"RUN cd {env_dir}/{DEBS_DIR} && sha256sum -c --quiet {SUMS_NAME} \\",
        " && mkdir -p /var/lib/apt/lists/partial /var/cache/apt/archives/partial \\",
        # (the build has no network; apt's --no-download mishandles local files)
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-remove "
        "--no-install-recommends --allow-downgrades \\",
        f"      -o Dpkg::Options::=--force-confold {env_dir}/{DEBS_DIR}/*.deb \\",
        f" && rm -f {env_dir}/{DEBS_DIR}/*.deb",
    ]


__all__ = ["DebianLock", "DebPackage", "plan_debian_packages", "vendor_debian_packages",
           "install_steps", "base_image_packages", "dpkg_available", "host_release"]
