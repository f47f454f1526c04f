"""Lock a pip environment and vendor its wheels.

The study's own interpreter is asked which distributions it has
(``importlib.metadata``); each is pinned to its exact version, its wheel for
Linux x86_64 and the run's Python version is downloaded with ``pip download``
into a wheelhouse, and ``requirements.lock`` records the sha256 of every file,
so ``pip install --no-index --require-hashes`` can rebuild the environment
offline, years later, and refuses any file that changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .. import __version__
from ..errors import Cancelled, EnvironmentCaptureError
from ..hashing import sha256_file
from ..progress import Progress, reporter, token
from . import wheels
from .detect import PythonEnvironment
from .lockscope import target_environment, used_by_run
from .wheels import WheelTarget

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
    sources: dict[str, str] = field(default_factory=dict)   # name key -> where its wheel came from
    unused: dict[str, str] = field(default_factory=dict)    # name -> why the lock left it out
    index_problem: str = ""            # why the package index could not be used, if so

    @property
    def rebuilt(self) -> list[str]:
        return sorted(d.name for d in self.locked if self.sources.get(d.key) == wheels.REBUILT)

    def source_summary(self) -> str:
        """"3 from your wheelhouse /w, 2 from pip's cache, 1 rebuilt from …"."""
        counts: dict[str, int] = {}
        for source in self.sources.values():
            counts[source] = counts.get(source, 0) + 1
        return ", ".join(f"{n} from {source}" if source != wheels.REBUILT else
                         f"{n} {source} ({', '.join(self.rebuilt)})"
                         for source, n in counts.items())

    def to_metadata(self) -> dict:
        return {"lock_file": self.lock_file.name, "packages": len(self.locked),
                "wheels": len(self.wheels),
                "skipped": dict(sorted(self.skipped.items())),
                "left_out": dict(sorted(self.unused.items())),
                "wheel_sources": {d.name: self.sources.get(d.key, "") for d in self.locked},
                "rebuilt": self.rebuilt}


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
    from .kinds import kind_named

    skips_system = kind_named(env.kind).pip_skips_system_installs
    locked, skipped = [], {}
    for dist in dists:
        source = dist.local_source()
        if source:
            skipped[dist.name] = f"{source}; the study's own code is packed with the study"
        elif skips_system and dist.installer.lower() in _SYSTEM_INSTALLERS:
            who = dist.installer or "the operating system"
            skipped[dist.name] = f"installed by {who}, not by pip"
        else:
            locked.append(dist)
    return locked, skipped


def lock_pip_environment(env: PythonEnvironment, out_dir: Path, *, report=None, cancel=None,
                         find_links: list[str] | None = None, opened: set[str] | None = None,
                         prefetched: dict[str, tuple[Path, str]] | None = None,
                         index_options: list[str] | None = None) -> PipLock:
    """Write ``out_dir/requirements.lock`` and fill ``out_dir/wheelhouse/``.

    ``opened``: the files the traced run opened; only the distributions it used (and
    what they require) are locked. None locks the whole environment."""
    report, cancel = reporter(report), token(cancel)
    if not env.python_version:
        raise EnvironmentCaptureError(f"{env.executable} is not a Python interpreter.")
    report(Progress("lock", 0, None, f"Listing the packages of {env.describe()}", unit="pkg"))
    locked, skipped = choose_distributions(env, list_distributions(env))
    unused: dict[str, str] = {}
    if opened is not None:
        locked, unused = used_by_run(locked, opened, target_environment(
            env.python_version, env.implementation))
    cancel.check()
    wheelhouse = out_dir / WHEELHOUSE
    wheelhouse.mkdir(parents=True, exist_ok=True)
    result = PipLock(lock_file=out_dir / LOCK_NAME, wheelhouse=wheelhouse, locked=locked,
                     skipped=skipped, unused=unused)
    if locked:
        result.sources, result.index_problem = vendor_wheels(locked, env, wheelhouse, find_links=find_links,
                                       report=report, cancel=cancel,
                                       index_options=index_options, prefetched=prefetched)
    by_name: dict[str, list[tuple[str, str]]] = {}
    for wheel in sorted(wheelhouse.glob("*.whl")):
        digest = sha256_file(wheel)
        result.wheels[wheel.name] = digest
        by_name.setdefault(canonical_name(wheel.name.split("-")[0]), []).append(
            (wheel.name, digest))
    result.lock_file.write_text(render_lock(env, locked, by_name, skipped, result.sources,
                                            unused), encoding="utf-8")
    report(Progress("lock", len(locked), len(locked),
                    f"Locked {len(locked)} packages with their hashes", unit="pkg"))
    return result


def render_lock(env: PythonEnvironment, locked: list[Distribution],
                wheels_by_key: dict[str, list[tuple[str, str]]], skipped: dict[str, str],
                sources: dict[str, str] | None = None,
                unused: dict[str, str] | None = None) -> str:
    """A requirements file that ``pip install --require-hashes`` accepts."""
    sources = sources or {}
    lines = [
        f"# Written by studypack {__version__} from {env.executable}",
        f"# ({env.describe()}).",
        f"# Wheels for linux x86_64, {_impl_label(env)} {env.python_version}, vendored in "
        f"{WHEELHOUSE}/. Install offline with:",
        f"#   pip install --no-index --find-links {WHEELHOUSE} --require-hashes "
        f"-r {LOCK_NAME}",
    ]
    for name, why in sorted(skipped.items()):
        lines.append(f"# not locked: {name} ({why})")
    for name, why in sorted((unused or {}).items()):
        lines.append(f"# left out: {name} ({why})")
    for dist in locked:
        hashes = sorted({digest for _, digest in wheels_by_key[dist.key]})
        if sources.get(dist.key) == wheels.REBUILT:
            lines.append(f"# {dist.name}: REBUILT from the installed files (its RECORD), "
                         "not a wheel from the index")
        lines.append(f"{dist.name}=={dist.version} \\")
        lines.extend(f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "")
                     for i, h in enumerate(hashes))
    return "\n".join(lines) + "\n"


def _impl_label(env: PythonEnvironment) -> str:
    return {"cpython": "CPython", "pypy": "PyPy"}.get(env.implementation, env.implementation)


def pip_command() -> list[str]:
    """studypack's own pip runs the download: ``--platform`` and ``--python-version``
    make it fetch for the study's target, whatever pip the study's env has (or lacks)."""
    return [sys.executable, "-m", "pip"]


class Prefetched(dict):
    """key -> (wheel file, source) of the wheels a prefetch gathered while the study ran,
    and what the package index answered then: the (key, version) it was asked about (a
    wheel, or a definite "no wheel" in ``index_why``) and, when it could not be asked at
    all, why (``index_problem``)."""

    def __init__(self, *args, asked: set[tuple[str, str]] | None = None, index_problem: str = "",
                 index_why: dict[str, str] | None = None):
        super().__init__(*args)
        self.asked = set(asked or ())
        self.index_problem = index_problem
        self.index_why = dict(index_why or {})

    @property
    def index_down(self) -> bool:
        return self.index_problem == NO_NETWORK


def vendor_wheels(dists: list[Distribution], env: PythonEnvironment, wheelhouse: Path, *,
                  find_links: list[str] | None = None, report=None, cancel=None,
                  index_options: list[str] | None = None,
                  prefetched: dict[str, tuple[Path, str]] | None = None,
                  use_index: bool = True, rebuild: bool = True) -> tuple[dict[str, str], str]:
    """Put a wheel of every pinned distribution into ``wheelhouse``; return where each
    came from (name key -> source label) and why the index could not be used ("" when it
    could, or was not needed), offline first (see :mod:`studypack.environment.wheels`).

    ``prefetched``: wheels a :class:`~studypack.environment.plan.Prefetch` found while
    the study ran. ``rebuild=False`` (the prefetch) leaves what is missing missing."""
    report, cancel = reporter(report), token(cancel)
    target = WheelTarget(env.python_version, env.implementation, LINUX_X86_64_PLATFORMS)
    tags = target.tags()
    sources: dict[str, str] = {}
    reasons: dict[str, list[str]] = {d.key: [] for d in dists}
    remaining = []
    for dist in dists:
        early = (prefetched or {}).get(dist.key)
        if early and wheels.target_fits(early[0], dist, target, tags):
            shutil.copyfile(early[0], wheelhouse / early[0].name)
            sources[dist.key] = early[1]
        else:
            remaining.append(dist)
    scratch = tempfile.TemporaryDirectory(prefix="studypack-pip-cache-")
    local = [lambda: wheels.index_dirs([Path(d) for d in find_links or []]),
             lambda: wheels.index_pip_cache(scratch=Path(scratch.name)),
             wheels.index_own_cache]
    for index in local:
        if not remaining:
            break
        found = index()
        still = []
        for dist in remaining:
            chosen, why = wheels.choose(found.get((dist.key, dist.version), []), target, tags)
            reasons[dist.key] += why
            if chosen is None:
                still.append(dist)
                continue
            wheels.copy_wheel(chosen, wheelhouse)
            sources[dist.key] = chosen.source
            report(Progress("wheels", len(sources), len(dists), chosen.filename, unit="pkg"))
        remaining = still
        cancel.check()
    scratch.cleanup()
    offline = ""
    if remaining and use_index:
        # What the index already answered while the run ran is not asked twice.
        asked = prefetched if isinstance(prefetched, Prefetched) else Prefetched()
        offline = asked.index_problem
        index_reasons = {d.key: asked.index_why[d.key] for d in remaining
                         if (d.key, d.version) in asked.asked and d.key in asked.index_why}
        ask = [] if asked.index_down else [d for d in remaining
                                           if (d.key, d.version) not in asked.asked]
        if ask:
            offline, more = download_from_index(ask, env, wheelhouse, report, cancel,
                                                len(sources), len(dists), index_options)
            index_reasons.update(more)
        present = _wheels_by_key(wheelhouse)
        for dist in remaining:
            if (dist.key, dist.version) in present:
                sources[dist.key] = wheels.FROM_INDEX
            elif dist.key in index_reasons:
                reasons[dist.key].append(index_reasons[dist.key])
        if ask:   # for the next create: no index to ask, no pip to start
            asked_for = {(d.key, d.version) for d in ask}
            wheels.keep_in_own_cache([path for key, path in present.items()
                                      if key in asked_for])
        remaining = [d for d in remaining if d.key not in sources]
    if not rebuild:
        return sources, offline
    failures = []
    for dist in remaining:   # last resort: the installed files themselves
        cancel.check()
        try:
            wheels.rebuild_wheel(dist.name, dist.version, Path(dist.location), env.prefix,
                                 target, wheelhouse)
            sources[dist.key] = wheels.REBUILT
        except (EnvironmentCaptureError, OSError) as exc:
            failures.append((dist, str(exc)))
    if failures:
        first = failures[0][0]
        # Every true cause, the most specific first: a wheel that was found but does
        # not fit says more than "no network".
        causes = reasons[first.key][-1:] + ([offline] if offline else [])
        cause = "; ".join(causes) or \
            f"no wheel for Linux x86_64 / Python {env.python_version}"
        names = ", ".join(f"{d.name}=={d.version}" for d, _ in failures)
        raise EnvironmentCaptureError(
            f"No wheel could be vendored for {names} ({cause}; "
            f"{failures[0][1].rstrip('.')}).",
            "Put its wheel in a folder and name it with --find-links DIR (or find_links "
            "under [environment]); on a machine with network: pip download --no-deps "
            f"--only-binary=:all: --python-version {env.python_version} --platform "
            f"{LINUX_X86_64_PLATFORMS[-3]} -d DIR {first.name}=={first.version}")
    return sources, offline


def _wheels_by_key(wheelhouse: Path) -> dict[tuple[str, str], Path]:
    found = {}
    for wheel in wheelhouse.glob("*.whl"):
        try:
            name, version, _b, _t = parse_wheel_filename(wheel.name)
        except InvalidWheelFilename:
            continue
        found[(canonical_name(name), str(version))] = wheel
    return found


NO_NETWORK = "no network: the package index cannot be reached"
# pip's words when the index cannot be reached at all.
_NETWORK_DOWN = re.compile(r"NewConnectionError|Failed to establish a new connection|"
                           r"Temporary failure in name resolution|Network is unreachable|"
                           r"Name or service not known|ConnectTimeout|ProxyError|"
                           r"No route to host|Connection refused")
_REQUIRES_PYTHON = re.compile(r"require a different python version: (.*)$")


def download_from_index(dists, env, wheelhouse, report, cancel, done_before, total,
                        index_options) -> tuple[str, dict[str, str]]:
    """``pip download`` what is still missing. Returns (the reason the index could not
    be used at all, or ""; name key -> why pip found no wheel for it)."""
    remaining = list(dists)
    why: dict[str, str] = {}
    while remaining:
        failed = _run_pip_download(remaining, env, wheelhouse, report, cancel,
                                   done_before + len(dists) - len(remaining), total,
                                   index_options)
        if failed is None:
            break
        name, tail = failed
        text = "\n".join(tail)
        if _NETWORK_DOWN.search(text):
            return NO_NETWORK, why
        culprit = next((d for d in remaining if d.key == canonical_name(name)), None)
        if culprit is None:
            return "pip download failed: " + (tail[-1] if tail else "no output"), why
        requires = next((m.group(1) for m in map(_REQUIRES_PYTHON.search, tail) if m), "")
        why[culprit.key] = (f"its releases on the index need Python {requires.strip()}, "
                            f"the run used {env.python_version}" if requires else
                            f"the index has no wheel of it for Linux x86_64 / Python "
                            f"{env.python_version}")
        remaining = [d for d in remaining if d is not culprit]
    return "", why


_NOT_FOUND = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)")


def _run_pip_download(dists, env, wheelhouse, report, cancel, done_before, total,
                      index_options) -> tuple[str, list[str]] | None:
    requirements = wheelhouse.parent / ".studypack-download.txt"
    requirements.write_text("".join(f"{d.name}=={d.version}\n" for d in dists))
    impl = {"cpython": "cp", "pypy": "pp"}.get(env.implementation, "cp")
    command = pip_command() + [
        "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--progress-bar", "off", "--python-version", env.python_version,
        "--retries", "1", "--timeout", "15",
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
