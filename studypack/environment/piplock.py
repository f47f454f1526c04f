"""Lock a pip environment and vendor its wheels.

The study's own interpreter is asked which distributions it has
(``importlib.metadata``); each is pinned to its exact version, its wheel for
Linux x86_64 and the run's Python version is downloaded with ``pip download``
into a wheelhouse, and ``requirements.lock`` records the sha256 of every file,
so ``pip install --no-index --require-hashes`` can rebuild the environment
offline, years later, and refuses any file that changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from .detect import PythonEnvironment
from ..errors import Cancelled, EnvironmentCaptureError
from ..progress import Progress, reporter, token

LOCK_NAME = "requirements.lock"
WHEELHOUSE = "wheelhouse"

# Newest first: pip prefers the first platform that a release has a wheel for. The
# oldest glibc here (2.17) runs everywhere; 2.36 is Debian 12, the oldest base of the
# current official python:X.Y-slim images.
LINUX_X86_64_PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]

# Installers whose distributions belong to the operating system (a Debian
# python3-foo package), not to pip: ReproZip's package list covers those.
_SYSTEM_INSTALLERS = {"", "debian", "dpkg", "rpm", "apt", "conda"}

_LIST_SCRIPT = r"""
import json, sys
try:
    from importlib import metadata
except ImportError:
    import importlib_metadata as metadata
out = []
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    if not name:
        continue
    direct = dist.read_text("direct_url.json")
    path = getattr(dist, "_path", None)
    out.append({"name": name, "version": dist.version,
                "installer": (dist.read_text("INSTALLER") or "").strip(),
                "direct_url": json.loads(direct) if direct else None,
                "location": str(path) if path is not None else ""})
print(json.dumps(out))
"""


@dataclass
class Distribution:
    name: str
    version: str
    installer: str = ""
    direct_url: dict | None = None
    location: str = ""                 # the .dist-info / .egg-info folder

    @property
    def key(self) -> str:
        return canonical_name(self.name)

    def local_source(self) -> str | None:
        """Where it came from when it was not a registry release (editable, local path)."""
        url = (self.direct_url or {}).get("url", "")
        if (self.direct_url or {}).get("dir_info", {}).get("editable"):
            return f"editable install from {url}"
        if url.startswith("file://"):
            return f"installed from {url}"
        if "vcs_info" in (self.direct_url or {}):
            return f"installed from {url} (version control)"
        folder = Path(self.location).parent.name if self.location else ""
        if self.location and folder not in ("site-packages", "dist-packages"):
            # e.g. a `setup.py develop` install: its metadata lies in the project itself
            return f"installed in place from {Path(self.location).parent}"
        return None


@dataclass
class PipLock:
    lock_file: Path
    wheelhouse: Path
    locked: list[Distribution] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)   # name -> why it is not locked
    wheels: dict[str, str] = field(default_factory=dict)    # wheel file name -> sha256

    def to_metadata(self) -> dict:
        return {"lock_file": self.lock_file.name, "packages": len(self.locked),
                "wheels": len(self.wheels),
                "skipped": dict(sorted(self.skipped.items()))}


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def list_distributions(env: PythonEnvironment, *, timeout: float = 120) -> list[Distribution]:
    """Every distribution the study's interpreter can import, first on sys.path wins."""
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        out = subprocess.run([env.executable, "-E", "-c", _LIST_SCRIPT], capture_output=True,
                             text=True, timeout=timeout, env=clean_env,
                             cwd=os.path.dirname(env.executable))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentCaptureError(
            f"Could not ask {env.executable} for its installed packages: {exc}.") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentCaptureError(
            f"{env.executable} could not list its installed packages: {last}",
            "importlib.metadata needs Python 3.8 or later "
            "(or the importlib_metadata package).")
    seen: dict[str, Distribution] = {}
    for item in json.loads(out.stdout.strip().splitlines()[-1]):
        dist = Distribution(**item)
        seen.setdefault(dist.key, dist)
    return sorted(seen.values(), key=lambda d: d.key)


def choose_distributions(env: PythonEnvironment, dists: list[Distribution]
                         ) -> tuple[list[Distribution], dict[str, str]]:
    """Split into what is locked and what is left out, with the reason."""
    locked, skipped = [], {}
    for dist in dists:
        source = dist.local_source()
        if source:
            skipped[dist.name] = f"{source}; the study's own code is packed with the study"
        elif env.kind in ("system", "conda") and dist.installer.lower() in _SYSTEM_INSTALLERS:
            who = dist.installer or "the operating system"
            skipped[dist.name] = f"installed by {who}, not by pip"
        else:
            locked.append(dist)
    return locked, skipped


def lock_pip_environment(env: PythonEnvironment, out_dir: Path, *, report=None, cancel=None,
                         index_options: list[str] | None = None) -> PipLock:
    """Write ``out_dir/requirements.lock`` and fill ``out_dir/wheelhouse/``."""
    report, cancel = reporter(report), token(cancel)
    if not env.python_version:
        raise EnvironmentCaptureError(f"{env.executable} is not a Python interpreter.")
    report(Progress("lock", 0, None, f"Listing the packages of {env.describe()}", unit="pkg"))
    locked, skipped = choose_distributions(env, list_distributions(env))
    cancel.check()
    wheelhouse = out_dir / WHEELHOUSE
    wheelhouse.mkdir(parents=True, exist_ok=True)
    result = PipLock(lock_file=out_dir / LOCK_NAME, wheelhouse=wheelhouse, locked=locked,
                     skipped=skipped)
    if locked:
        download_wheels(locked, env, wheelhouse, report=report, cancel=cancel,
                        index_options=index_options)
    by_name: dict[str, list[tuple[str, str]]] = {}
    for wheel in sorted(wheelhouse.glob("*.whl")):
        digest = sha256_file(wheel)
        result.wheels[wheel.name] = digest
        by_name.setdefault(canonical_name(wheel.name.split("-")[0]), []).append(
            (wheel.name, digest))
    missing = [d.name for d in locked if d.key not in by_name]
    if missing:
        raise EnvironmentCaptureError(
            f"pip download brought no wheel for {', '.join(missing)}.",
            "Check the package index, or build the wheel yourself into the wheelhouse.")
    result.lock_file.write_text(render_lock(env, locked, by_name, skipped), encoding="utf-8")
    report(Progress("lock", len(locked), len(locked),
                    f"Locked {len(locked)} packages with their hashes", unit="pkg"))
    return result


def render_lock(env: PythonEnvironment, locked: list[Distribution],
                wheels: dict[str, list[tuple[str, str]]], skipped: dict[str, str]) -> str:
    """A requirements file that ``pip install --require-hashes`` accepts."""
    lines = [
        f"# Written by studypack {__version__} from {env.executable}",
        f"# ({env.describe()}).",
        f"# Wheels for linux x86_64, {_impl_label(env)} {env.python_minor}, vendored in "
        f"{WHEELHOUSE}/. Install offline with:",
        f"#   pip install --no-index --find-links {WHEELHOUSE} --require-hashes "
        f"-r {LOCK_NAME}",
    ]
    for name, why in sorted(skipped.items()):
        lines.append(f"# not locked: {name} ({why})")
    for dist in locked:
        hashes = sorted({digest for _, digest in wheels[dist.key]})
        lines.append(f"{dist.name}=={dist.version} \\")
        lines.extend(f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "")
                     for i, h in enumerate(hashes))
    return "\n".join(lines) + "\n"


def _impl_label(env: PythonEnvironment) -> str:
    return {"cpython": "CPython", "pypy": "PyPy"}.get(env.implementation, env.implementation)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_command() -> list[str]:
    """studypack's own pip runs the download: ``--platform`` and ``--python-version``
    make it fetch for the study's target, whatever pip the study's env has (or lacks)."""
    return [sys.executable, "-m", "pip"]


def download_wheels(dists: list[Distribution], env: PythonEnvironment, wheelhouse: Path, *,
                    report=None, cancel=None, index_options: list[str] | None = None) -> None:
    """``pip download`` every pinned distribution as a Linux x86_64 wheel.

    pip stops at the first release without a wheel; that one is set aside and the rest
    are tried again, so the error names every package that lacks a wheel at once.
    """
    report, cancel = reporter(report), token(cancel)
    remaining = list(dists)
    no_wheel: list[Distribution] = []
    while remaining:
        failed = _run_pip_download(remaining, env, wheelhouse, report, cancel,
                                   len(dists) - len(remaining), len(dists), index_options)
        if failed is None:
            break
        name, last_lines = failed
        culprit = next((d for d in remaining if d.key == canonical_name(name)), None)
        if culprit is None:
            raise EnvironmentCaptureError(
                "pip download failed: " + (last_lines[-1] if last_lines else "no output"),
                "\n".join(last_lines[-8:]))
        no_wheel.append(culprit)
        remaining = [d for d in remaining if d is not culprit]
    if no_wheel:
        names = ", ".join(f"{d.name}=={d.version}" for d in no_wheel)
        raise EnvironmentCaptureError(
            f"No wheel for Linux x86_64 / Python {env.python_minor} exists for {names}.",
            "Build one from its source distribution (`pip wheel --no-deps --no-binary :all: "
            f"-w wheelhouse {no_wheel[0].name}=={no_wheel[0].version}` on a Linux x86_64 "
            "machine with that Python) and put it in the wheelhouse, or pin a version that "
            "publishes wheels.")


_NOT_FOUND = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)")


def _run_pip_download(dists, env, wheelhouse, report, cancel, done_before, total,
                      index_options) -> tuple[str, list[str]] | None:
    requirements = wheelhouse.parent / ".studypack-download.txt"
    requirements.write_text("".join(f"{d.name}=={d.version}\n" for d in dists))
    impl = {"cpython": "cp", "pypy": "pp"}.get(env.implementation, "cp")
    command = pip_command() + [
        "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--progress-bar", "off", "--python-version", env.python_minor,
        "--implementation", impl, "--dest", str(wheelhouse), "-r", str(requirements)]
    for platform in LINUX_X86_64_PLATFORMS:
        command += ["--platform", platform]
    command += list(index_options or [])
    tail: deque[str] = deque(maxlen=40)
    done = done_before
    report(Progress("wheels", done, total, "Downloading wheels (pip download)", unit="pkg"))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace")
    watcher = threading.Thread(target=_kill_on_cancel, args=(proc, cancel), daemon=True)
    watcher.start()
    try:
        for line in proc.stdout:
            line = line.rstrip()
            if not line or line.startswith("WARNING: Location"):
                continue
            tail.append(line)
            if line.startswith(("Saved ", "File was already downloaded")):
                done += 1
                report(Progress("wheels", done, total, line.split("/")[-1], unit="pkg"))
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        requirements.unlink(missing_ok=True)
    if cancel.cancelled:
        raise Cancelled()
    if proc.returncode == 0:
        return None
    for line in reversed(tail):
        match = _NOT_FOUND.search(line)
        if match:
            return match.group(1).split("==")[0], list(tail)
    return "", list(tail)


def _kill_on_cancel(proc: subprocess.Popen, cancel) -> None:
    while proc.poll() is None:
        if cancel.cancelled:
            proc.kill()
            return
        threading.Event().wait(0.2)
