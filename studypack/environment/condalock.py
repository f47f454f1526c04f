"""Lock a conda environment and vendor its packages as a local channel.

An existing environment's ``conda-meta/*.json`` already names every package's exact
URL, md5 and sha256, so ``conda-lock.yml`` (conda-lock's unified format, version 1)
is written from it without any solver. When conda-lock and a conda, mamba or
micromamba executable are at hand, conda-lock writes the lock instead; if it fails
(no channel reachable, say) the conda-meta lock is used and the output says so.

The package archives are copied from the package cache (``pkgs/``) or from their
``file://`` URL into ``channel/<subdir>/``, checked against the recorded hashes, and
indexed (``repodata.json``), so the bundle installs offline with ``conda create
--offline --file conda-explicit.txt`` (or micromamba).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from .. import __version__
from .detect import PythonEnvironment
from ..errors import EnvironmentCaptureError
from ..progress import Progress, reporter, token

LOCK_NAME = "conda-lock.yml"
EXPLICIT_NAME = "conda-explicit.txt"
CHANNEL = "channel"
CONDA_EXECUTABLES = ("micromamba", "mamba", "conda")
METHOD_CONDA_META = "conda-meta (no solver)"


@dataclass
class CondaLock:
    lock_file: Path
    explicit_file: Path
    channel: Path
    platform: str
    method: str                               # METHOD_CONDA_META or "conda-lock (<exe>)"
    records: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_metadata(self) -> dict:
        return {"lock_file": self.lock_file.name, "lock_method": self.method,
                "platform": self.platform, "packages": len(self.records),
                "channel": CHANNEL + "/"}


def read_conda_meta(prefix: Path) -> list[dict]:
    meta = prefix / "conda-meta"
    records = []
    for path in sorted(meta.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EnvironmentCaptureError(f"{path} is not readable conda metadata: {exc}.") from None
        if not record.get("name") or not record.get("url"):
            raise EnvironmentCaptureError(
                f"{path} does not name its package URL; this environment cannot be locked.",
                "Recreate the environment with a current conda, mamba or micromamba.")
        records.append(record)
    if not records:
        raise EnvironmentCaptureError(f"The conda environment {prefix} has no packages.")
    return sorted(records, key=lambda r: r["name"])


def conda_platform(env: PythonEnvironment, records: list[dict]) -> str:
    for record in records:
        if record.get("subdir") and record["subdir"] != "noarch":
            return record["subdir"]
    arch = {"x86_64": "64", "aarch64": "aarch64", "arm64": "arm64"}.get(env.machine, env.machine)
    return f"{env.system}-{arch}"


def lock_conda_environment(env: PythonEnvironment, out_dir: Path, *, report=None,
                           cancel=None) -> CondaLock:
    report, cancel = reporter(report), token(cancel)
    report(Progress("lock", 0, None, f"Reading conda-meta of {env.prefix}", unit="pkg"))
    records = read_conda_meta(env.prefix)
    platform = conda_platform(env, records)
    result = CondaLock(lock_file=out_dir / LOCK_NAME, explicit_file=out_dir / EXPLICIT_NAME,
                       channel=out_dir / CHANNEL, platform=platform, method=METHOD_CONDA_META,
                       records=records)
    vendor_channel(records, env.prefix, result.channel, report=report, cancel=cancel)
    result.explicit_file.write_text(render_explicit(records, platform), encoding="utf-8")
    solver = find_conda_lock()
    if solver:
        try:
            _lock_with_conda_lock(records, platform, result.lock_file, *solver)
            result.method = f"conda-lock ({Path(solver[1]).name})"
        except EnvironmentCaptureError as exc:
            result.notes.append(f"conda-lock failed ({exc}); the lock was written from "
                                "conda-meta instead, without a solver.")
    if result.method == METHOD_CONDA_META:
        result.lock_file.write_text(render_conda_lock(records, platform), encoding="utf-8")
    report(Progress("lock", len(records), len(records),
                    f"Locked {len(records)} conda packages ({result.method})", unit="pkg"))
    return result


# ------------------------------------------------------------------ the lock files

def _dependencies(record: dict) -> dict[str, str]:
    deps = {}
    for spec in record.get("depends", []):
        name, _, constraint = spec.strip().partition(" ")
        deps[name] = constraint.strip() or "*"
    return deps


def render_conda_lock(records: list[dict], platform: str) -> str:
    """conda-lock's unified lockfile (version 1), from installed-package records."""
    channels = sorted({_channel_of(r) for r in records})
    content = hashlib.sha256(json.dumps(
        [[r["name"], r["version"], r.get("build", ""), r.get("sha256") or r.get("md5")]
         for r in records]).encode()).hexdigest()
    packages = []
    for r in records:
        hashes = {k: r[k] for k in ("md5", "sha256") if r.get(k)}
        packages.append({
            "name": r["name"], "version": r["version"], "manager": "conda",
            "platform": platform, "dependencies": _dependencies(r), "url": r["url"],
            "hash": hashes, "category": "main", "optional": False})
    doc = {
        "version": 1,
        "metadata": {
            "content_hash": {platform: content},
            "channels": [{"url": c, "used_env_vars": []} for c in channels],
            "platforms": [platform],
            "sources": ["conda-meta"],
            "custom_metadata": {"generated_by": f"studypack {__version__}",
                                "lock_method": METHOD_CONDA_META},
        },
        "package": packages,
    }
    header = (f"# Written by studypack {__version__} from the environment's conda-meta/*.json "
              "(exact URLs and hashes, no solver).\n"
              f"# The packages are vendored in {CHANNEL}/; see {EXPLICIT_NAME} for an offline "
              "install.\n")
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def render_explicit(records: list[dict], platform: str) -> str:
    """conda's @EXPLICIT list, pointing at the vendored channel inside the image."""
    lines = [f"# Written by studypack {__version__}: install offline with",
             f"#   conda create --offline -p PREFIX --file {EXPLICIT_NAME}",
             f"# platform: {platform}", "@EXPLICIT"]
    for r in records:
        subdir = r.get("subdir") or platform
        url = f"file:///env/{CHANNEL}/{subdir}/{_file_name(r)}"
        # md5 is what every conda and micromamba version checks in an @EXPLICIT list.
        lines.append(f"{url}#{r['md5']}" if r.get("md5") else f"{url}#sha256:{r['sha256']}")
    return "\n".join(lines) + "\n"


def _channel_of(record: dict) -> str:
    channel = record.get("channel") or record["url"].rsplit("/", 2)[0]
    return channel.rstrip("/")


def _file_name(record: dict) -> str:
    return record.get("fn") or record["url"].rsplit("/", 1)[-1]


# ---------------------------------------------------------------- vendoring

def _package_sources(record: dict, prefix: Path) -> list[Path]:
    """Where the archive may still lie: conda's full path, the package caches, file:// URL."""
    fn = _file_name(record)
    candidates = []
    if record.get("package_tarball_full_path"):
        candidates.append(Path(record["package_tarball_full_path"]))
    if record.get("extracted_package_dir"):
        candidates.append(Path(record["extracted_package_dir"]).parent / fn)
    caches = [Path(p) for p in os.environ.get("CONDA_PKGS_DIRS", "").split(",") if p]
    caches += [prefix / "pkgs", prefix.parent.parent / "pkgs", Path.home() / ".conda" / "pkgs",
               Path.home() / ".cache" / "rattler" / "cache" / "pkgs"]
    candidates += [cache / fn for cache in caches]
    parsed = urlparse(record["url"])
    if parsed.scheme == "file":
        candidates.append(Path(unquote(parsed.path)))
    return candidates


def vendor_channel(records: list[dict], prefix: Path, channel: Path, *, report=None,
                   cancel=None) -> None:
    report, cancel = reporter(report), token(cancel)
    total = len(records)
    by_subdir: dict[str, list[dict]] = {"noarch": []}
    for done, record in enumerate(records, 1):
        cancel.check()
        fn = _file_name(record)
        source = next((p for p in _package_sources(record, prefix) if p.is_file()), None)
        if source is None:
            raise EnvironmentCaptureError(
                f"The conda package {fn} is no longer in the package cache, so it cannot be "
                "vendored.",
                f"Download it again (`conda install --force-reinstall --download-only "
                f"{record['name']}={record['version']}={record.get('build', '')}`) and retry.")
        subdir = record.get("subdir") or "noarch"
        target = channel / subdir / fn
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        _check_hashes(record, target)
        by_subdir.setdefault(subdir, []).append(record)
        report(Progress("vendor", done, total, fn, unit="pkg"))
    for subdir, subdir_records in by_subdir.items():
        write_repodata(channel / subdir, subdir, subdir_records)


def _check_hashes(record: dict, path: Path) -> None:
    data_hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            for h in data_hashes.values():
                h.update(block)
    for name, h in data_hashes.items():
        if record.get(name) and record[name] != h.hexdigest():
            raise EnvironmentCaptureError(
                f"The cached conda package {path.name} does not match the {name} recorded in "
                "conda-meta; the cache is damaged.",
                "Remove it from the package cache, reinstall the package and retry.")


_REPODATA_KEYS = ("name", "version", "build", "build_number", "depends", "constrains",
                  "license", "license_family", "md5", "sha256", "size", "subdir",
                  "timestamp", "noarch", "track_features", "features")


def write_repodata(folder: Path, subdir: str, records: list[dict]) -> None:
    """A channel index (``repodata.json``) from the records: conda, mamba and rattler
    read it; ``noarch/`` always exists because conda requires it."""
    folder.mkdir(parents=True, exist_ok=True)
    packages, packages_conda = {}, {}
    for r in records:
        entry = {k: r[k] for k in _REPODATA_KEYS if k in r and r[k] not in (None, "")}
        entry.setdefault("depends", [])
        entry["subdir"] = subdir
        fn = _file_name(r)
        (packages_conda if fn.endswith(".conda") else packages)[fn] = entry
    doc = {"info": {"subdir": subdir}, "packages": packages, "packages.conda": packages_conda,
           "removed": [], "repodata_version": 1}
    (folder / "repodata.json").write_text(json.dumps(doc, indent=1, sort_keys=True),
                                          encoding="utf-8")


# ------------------------------------------------------------- with a solver

def find_conda_lock() -> tuple[str, str] | None:
    """(conda-lock, conda executable) when both exist on this machine."""
    conda_lock = shutil.which("conda-lock")
    exe = os.environ.get("CONDA_EXE") or os.environ.get("MAMBA_EXE")
    if not exe or not os.path.exists(exe):
        exe = next((found for name in CONDA_EXECUTABLES if (found := shutil.which(name))), None)
    if conda_lock and exe:
        return conda_lock, exe
    return None


def _lock_with_conda_lock(records: list[dict], platform: str, lock_file: Path,
                          conda_lock: str, conda_exe: str) -> None:
    channels = sorted({_channel_of(r) for r in records})
    env_doc = {"channels": channels,
               "dependencies": [f"{r['name']}=={r['version']}={r.get('build', '*')}"
                                for r in records],
               "platforms": [platform]}
    with tempfile.TemporaryDirectory(prefix="studypack-conda-lock-") as tmp:
        env_file = Path(tmp) / "environment.yml"
        env_file.write_text(yaml.safe_dump(env_doc), encoding="utf-8")
        out = Path(tmp) / LOCK_NAME
        command = [conda_lock, "lock", "--conda", conda_exe, "--file", str(env_file),
                   "--platform", platform, "--lockfile", str(out)]
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EnvironmentCaptureError(str(exc)) from None
        if run.returncode != 0 or not out.exists():
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise EnvironmentCaptureError(last)
        shutil.copyfile(out, lock_file)
