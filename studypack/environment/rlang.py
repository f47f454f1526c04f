"""R studies: the R packages the traced run loaded, locked and vendored.

An installed R package is a folder holding ``DESCRIPTION`` and ``Meta/package.rds``;
every traced file inside such a folder means the run loaded that package. Each is
locked in ``env/r-packages.lock`` with its version and where it came from:

- a distribution package (its files belong to a dpkg package such as ``r-cran-jsonlite``
  or ``r-base-core``): vendored as a ``.deb`` by :mod:`.debian`;
- a local library (installed by ``install.packages`` or ``R CMD INSTALL`` into a user or
  site library, from CRAN or elsewhere): vendored as its installed folder under
  ``env/r-library/`` and copied into the image's site library.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

LOCK_NAME = "r-packages.lock"
LIBRARY_DIR = "r-library"
# Debian's R searches this site library first (/etc/R/Renviron); the user-library
# packages go there in the image.
IMAGE_SITE_LIBRARY = "/usr/local/lib/R/site-library"
R_PROGRAMS = ("Rscript", "R")


@dataclass
class RPackage:
    name: str
    version: str
    origin: str                 # "distribution package" | "CRAN" | "local library"
    library: str                # the folder it was installed in
    deb: str = ""               # "r-cran-jsonlite=1.8.4+dfsg-1" for a distribution package
    repository: str = ""        # DESCRIPTION's Repository (CRAN, …)
    built: str = ""             # DESCRIPTION's Built: R version, platform, date
    vendored: str = ""          # "r-library/NAME" when the folder is in the bundle

    @property
    def from_distribution(self) -> bool:
        return bool(self.deb)


@dataclass
class RLock:
    r_version: str = ""
    executable: str = ""
    packages: list[RPackage] = field(default_factory=list)

    def to_metadata(self) -> dict:
        return {"r_version": self.r_version, "executable": self.executable,
                "lock": LOCK_NAME,
                "packages": [{k: v for k, v in asdict(p).items() if v}
                             for p in self.packages]}

    def summary(self) -> list[str]:
        local = [p for p in self.packages if not p.from_distribution]
        lines = [f"R {self.r_version or '(version unknown)'}: {len(self.packages)} R "
                 f"package(s) loaded, locked in {LOCK_NAME}: "
                 + ", ".join(f"{p.name} {p.version}" for p in self.packages)]
        if local:
            lines.append("R packages from a local library, vendored as installed folders: "
                         + ", ".join(p.name for p in local))
        return lines


def read_description(path: Path) -> dict[str, str]:
    """An R DESCRIPTION file (Debian control syntax: ``Key: value`` + indented lines)."""
    fields: dict[str, str] = {}
    key = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip()
            fields[key] = value.strip()
    return fields


def package_folder(path: Path) -> Path | None:
    """The installed R package a traced file belongs to, if any."""
    for folder in [path.parent, *path.parent.parents][:6]:
        if (folder / "DESCRIPTION").is_file() and (folder / "Meta" / "package.rds").is_file():
            return folder
    return None


def uses_r(executables: list[str], files: list[Path]) -> bool:
    """Did the run start R (Rscript, R, or R inside a pipeline)?"""
    if any(Path(e or "").name in R_PROGRAMS for e in executables):
        return True
    if any(p.as_posix().endswith("/bin/exec/R") for p in files):
        return True
    # libR.so alone (a library that links it, opened by a Python run) is not a use of R:
    # only when the run also loaded an R package.
    return any(p.name == "libR.so" for p in files) and bool(loaded_packages(files))


def loaded_packages(files: list[Path]) -> list[Path]:
    seen: dict[Path, Path | None] = {}
    for path in files:
        if path.parent not in seen:
            seen[path.parent] = package_folder(path)
    return sorted({f for f in seen.values() if f is not None})


def dpkg_owners(paths: list[Path]) -> dict[str, str]:
    """path → "package" for the paths a dpkg package owns (``dpkg-query -S``)."""
    if not paths or shutil.which("dpkg-query") is None:
        return {}
    run = subprocess.run(["dpkg-query", "-S", *map(str, paths)], capture_output=True,
                         text=True, errors="replace")
    owners = {}
    for line in run.stdout.splitlines():
        package, sep, path = line.partition(": ")
        if sep and "," not in package:
            owners[path.strip()] = package.split(":")[0].strip()
    return owners


def lock_r_packages(files: list[Path], *, installed_versions: dict[str, str] | None = None,
                    executable: str = "") -> RLock:
    """The R packages the traced ``files`` show loaded, with version and origin."""
    folders = loaded_packages(files)
    descriptions = [folder / "DESCRIPTION" for folder in folders]
    owners = dpkg_owners(descriptions)
    lock = RLock(executable=executable, r_version=r_version())
    for folder, description in zip(folders, descriptions):
        fields = read_description(description)
        deb_name = owners.get(str(description), "")
        repository = fields.get("Repository", "")
        if deb_name:
            origin = "distribution package"
            version = (installed_versions or {}).get(deb_name, "")
            deb = f"{deb_name}={version}" if version else deb_name
        else:
            origin, deb = ("CRAN" if repository == "CRAN" else "local library"), ""
        lock.packages.append(RPackage(
            name=fields.get("Package", folder.name), version=fields.get("Version", ""),
            origin=origin, library=str(folder.parent), deb=deb, repository=repository,
            built=fields.get("Built", "")))
    return lock


def r_version() -> str:
    r = shutil.which("Rscript")
    if r is None:
        return ""
    try:
        run = subprocess.run([r, "-e", "cat(as.character(getRversion()))"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return run.stdout.strip() if run.returncode == 0 else ""


def vendor_r_packages(lock: RLock, files_dir: Path) -> RLock:
    """Copy the local-library packages' installed folders into ``files_dir/r-library``
    and write ``files_dir/r-packages.lock``."""
    for package in lock.packages:
        if package.from_distribution:
            continue
        source = Path(package.library) / package.name
        target = Path(files_dir) / LIBRARY_DIR / package.name
        shutil.copytree(source, target, symlinks=False, dirs_exist_ok=True)
        package.vendored = f"{LIBRARY_DIR}/{package.name}"
    write_lock(lock, Path(files_dir) / LOCK_NAME)
    return lock


def write_lock(lock: RLock, path: Path) -> None:
    lines = [f"# R {lock.r_version}: the R packages the traced run loaded (studypack).",
             "# name\tversion\torigin\tdistribution package\tlibrary\tvendored"]
    for p in lock.packages:
        lines.append("\t".join([p.name, p.version, p.origin, p.deb or "-", p.library,
                                p.vendored or "-"]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def install_steps(lock: RLock, env_dir: str = "/env") -> list[str]:
    if not any(p.vendored for p in lock.packages):
        return []
    return ["# R packages from a local library, vendored as their installed folders.",
            f"COPY env/{LIBRARY_DIR}/ {IMAGE_SITE_LIBRARY}/"]
