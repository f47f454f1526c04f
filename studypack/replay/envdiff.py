"""What changed between the original run's machine and a replay's: ``environment_diff``.

The original side comes from the bundle (the run record's host facts and environment
variables, the environment capture, the lock file, the trace); the replay side from a
small probe (:data:`PROBE`) run by the study's own interpreter in the replay's
environment — inside the container, the sandbox or the traced files — so it sees the
Python, libc, packages and locale the study saw.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ..tracehints import opened_names

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")
# Instruction sets that change floating-point results (fused multiply-add, wider vectors).
FLOAT_FLAGS = ("avx2", "avx512f", "fma")
BLAS_RE = re.compile(r"(open)?blas|mkl_rt|libmkl|blis|accelerate|atlas", re.I)
PROBE_MARK = "STUDYPACK-PROBE "

# Only built-in modules and ``os``: in the trace-based modes the replay has just the
# standard-library files the original run used.
PROBE = r"""
import os, sys
def read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""
model, flags = "", []
for line in read("/proc/cpuinfo").splitlines():
    key, _, value = line.partition(":")
    if key.strip() == "model name" and not model:
        model = value.strip()
    if key.strip() == "flags" and not flags:
        flags = [f for f in ("avx2", "avx512f", "fma") if f in value.split()]
os_name = None
for line in read("/etc/os-release").splitlines():
    if line.startswith("PRETTY_NAME="):
        os_name = line.split("=", 1)[1].strip().strip('"')
try:
    import _locale
    try:
        here = _locale.setlocale(_locale.LC_ALL, "")
    except _locale.Error as exc:
        # The interpreter sets only LC_CTYPE at its start, so a traced run loads only that
        # category's file: report the locale the study runs with, not every category's.
        here = _locale.setlocale(_locale.LC_CTYPE)
        if here in ("C", "POSIX"):
            here = "C (" + str(exc) + ")"
except Exception as exc:
    here = "C (" + str(exc) + ")"
try:
    import time
    zone = time.strftime("%Z (UTC%z)")
except Exception:
    zone = None
packages, blas = {}, set()
for folder in sys.path:
    try:
        names = os.listdir(folder or ".")
    except OSError:
        continue
    for name in names:
        if name.endswith(".dist-info") and "-" in name:
            dist, version = name[:-len(".dist-info")].rsplit("-", 1)
            packages[dist.lower().replace("_", "-")] = version
        elif name.endswith(".libs") or name in ("numpy", "scipy"):
            sub = os.path.join(folder, name, ".libs") if not name.endswith(".libs") else \
                os.path.join(folder, name)
            try:
                blas.update(f for f in os.listdir(sub) if "blas" in f.lower() or "mkl" in f.lower())
            except OSError:
                pass
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION")
except (ValueError, OSError, AttributeError):
    libc = None
try:
    cores = len(os.sched_getaffinity(0))
except (AttributeError, OSError):
    cores = os.cpu_count()
v = sys.version_info
print("STUDYPACK-PROBE " + repr({
    "os": os_name, "kernel": os.uname().release, "cpu": model, "cpu_flags": flags,
    "cpu_count": cores, "libc": libc, "python": "%d.%d.%d" % (v[0], v[1], v[2]),
    "packages": packages, "blas": sorted(blas), "locale": here, "timezone": zone,
    "threads": dict((k, os.environ[k]) for k in THREADS if k in os.environ)}))
""".replace("THREADS", repr(THREAD_VARIABLES))


def host_side() -> dict:
    """The replay's side when its environment could not be probed: what is the same
    inside any container or sandbox on this machine (kernel, CPU)."""
    from ..hostinfo import host_facts

    host = host_facts()
    return {k: host.get(k) for k in ("kernel", "cpu", "cpu_flags", "cpu_count")}


def parse_probe(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(PROBE_MARK):
            try:
                facts = ast.literal_eval(line[len(PROBE_MARK):])
            except (ValueError, SyntaxError):
                return None
            return facts if isinstance(facts, dict) else None
    return None


# --------------------------------------------------------------------- original

def original_facts(layout) -> dict:
    """The original run's side, from what the bundle recorded."""
    run = layout.runs[0] if layout.runs else {}
    host = run.get("host") or {}
    env = run.get("environment") or {}
    capture = (layout.metadata.get("environment") or {})
    facts = {
        "os": host.get("os"), "kernel": host.get("kernel"), "cpu": host.get("cpu"),
        "cpu_flags": host.get("cpu_flags"), "cpu_count": host.get("cpu_count"),
        "libc": capture.get("libc"), "python": capture.get("python_version"),
        "packages": locked_packages(layout.data / "env", capture.get("lock_file")),
        "blas": traced_blas(layout.bag_dir / "data" / "trace" / "trace.sqlite3"),
        "locale": env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or "C",
        "timezone": host.get("timezone"),
        "threads": {k: env[k] for k in THREAD_VARIABLES if k in env},
    }
    return facts


def locked_packages(env_dir: Path, lock_file: str | None) -> dict[str, str]:
    """name -> version from the bundle's lock (pip ``name==version`` lines, or a
    conda-lock YAML ``package`` list)."""
    candidates = [env_dir / lock_file] if lock_file else []
    candidates += [env_dir / "requirements.lock", env_dir / "conda-lock.yml"]
    for path in candidates:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix in (".yml", ".yaml"):
            import yaml
            try:
                doc = yaml.safe_load(text) or {}
            except yaml.YAMLError:
                return {}
            return {str(p.get("name")).lower(): str(p.get("version"))
                    for p in doc.get("package") or [] if isinstance(p, dict)}
        packages = {}
        for line in text.splitlines():
            m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;\\]+)", line)
            if m:
                packages[m.group(1).lower().replace("_", "-")] = m.group(2)
        return packages
    return {}


def traced_blas(trace_db: Path) -> list[str]:
    """The BLAS libraries the original run loaded, by file name."""
    return sorted({Path(name).name for name in opened_names(trace_db)
                   if BLAS_RE.search(Path(name).name) and ".so" in Path(name).name})


# ------------------------------------------------------------------------- diff

LABELS = [("os", "operating system"), ("kernel", "kernel"), ("cpu", "CPU model"),
          ("cpu_flags", "CPU instruction sets (AVX2/AVX-512/FMA)"), ("cpu_count", "cores"),
          ("libc", "C library"), ("python", "Python interpreter"), ("blas", "BLAS library"),
          ("locale", "locale"), ("timezone", "time zone")]


def _shown(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def environment_diff(original: dict, replay: dict, packages: bool = True) -> list[dict]:
    """``[{"what", "original", "replay"}]`` for every fact known on both sides that
    differs. ``packages``: compare the installed packages (not in the modes that run the
    traced files, which hold only the package files the run opened)."""
    diff = []
    for key, label in LABELS:
        before, after = original.get(key), replay.get(key)
        if before in (None, "") or after in (None, ""):
            continue
        if key == "locale" and _same_locale(before, after):
            continue
        if _shown(before) != _shown(after):
            diff.append({"what": label, "original": _shown(before), "replay": _shown(after)})
    installed = replay.get("packages") or {}
    if installed and packages:
        for name, version in sorted((original.get("packages") or {}).items()):
            now = installed.get(name)
            if now != version:
                diff.append({"what": f"package {name}", "original": version,
                             "replay": now or "not installed"})
    before_threads, after_threads = original.get("threads") or {}, replay.get("threads")
    if after_threads is not None:
        for name in sorted(set(before_threads) | set(after_threads)):
            if before_threads.get(name) != after_threads.get(name):
                diff.append({"what": name, "original": before_threads.get(name, "unset"),
                             "replay": after_threads.get(name, "unset")})
    return diff


def _same_locale(before: str, after: str) -> bool:
    def norm(name: str) -> str:
        return name.lower().replace("utf-8", "utf8").split(" ")[0]
    return norm(before) == norm(after) or (norm(before) in ("c", "posix") and
                                           norm(after) in ("c", "posix"))
