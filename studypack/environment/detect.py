"""Which software environment did the study's run use?

The answer comes from the traced run's own interpreter, never from studypack's:
a virtualenv (``pyvenv.cfg`` beside ``bin/``), a conda environment (``conda-meta/``
in its prefix), or a system Python. The interpreter itself is asked for its version,
prefix and platform, so a venv made from pyenv, Debian or conda is told apart
correctly even when ``bin/python`` is a symlink to another installation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EnvironmentCaptureError

# Run by the study's interpreter: plain standard library, works on Python 3.6+.
_FACTS_SCRIPT = r"""
import json, os, platform, sys, sysconfig
paths = sysconfig.get_paths()
print(json.dumps({
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "real_prefix": getattr(sys, "real_prefix", None),
    "version": "%d.%d.%d" % sys.version_info[:3],
    "implementation": sys.implementation.name,
    "system": platform.system().lower(),
    "machine": platform.machine(),
    "libc": list(platform.libc_ver()),
    "purelib": paths.get("purelib"),
    "platlib": paths.get("platlib"),
}))
"""

KINDS = ("venv", "conda", "system")


class NotPythonError(EnvironmentCaptureError):
    """The program is not a Python interpreter (e.g. ``make`` or ``bash``)."""


@dataclass
class PythonEnvironment:
    kind: str                      # "venv" | "conda" | "system"
    executable: str                # the interpreter as the run called it
    prefix: Path                   # sys.prefix (the venv / conda env folder)
    python_version: str = ""       # "3.11.7"; empty when the executable is not Python
    implementation: str = "cpython"
    system: str = "linux"
    machine: str = "x86_64"
    libc: str = ""                 # "glibc 2.36"
    base_prefix: Path | None = None
    site_packages: list[str] = field(default_factory=list)

    @property
    def python_minor(self) -> str:
        """``"3.11"``: what a wheel's tags and a base image's tag are chosen by."""
        return ".".join(self.python_version.split(".")[:2])

    @property
    def platform(self) -> str:
        return f"{self.system}-{self.machine}"

    def describe(self) -> str:
        what = {"venv": "a virtualenv", "conda": "a conda environment",
                "system": "the system Python"}[self.kind]
        python = (f"{_impl_label(self.implementation)} {self.python_version}, "
                  if self.python_version else "")
        return f"{what} at {self.prefix} ({python}{self.system} {self.machine})"

    def to_metadata(self) -> dict:
        return {"kind": self.kind, "executable": self.executable, "prefix": str(self.prefix),
                "python_version": self.python_version, "implementation": self.implementation,
                "platform": self.platform, "libc": self.libc}


def _impl_label(name: str) -> str:
    return {"cpython": "CPython", "pypy": "PyPy"}.get(name, name)


def find_interpreter(executable: str | None, spec=None) -> str:
    """The interpreter to inspect: the one given, the spec's ``[environment] python``,
    the active ``VIRTUAL_ENV``/``CONDA_PREFIX``, else ``python3`` on PATH."""
    candidates = [executable]
    env_spec = getattr(spec, "environment", None)
    spec_python = getattr(env_spec, "python", "") or None
    if spec_python and os.sep in spec_python and not os.path.isabs(spec_python) \
            and getattr(spec, "path", None) is not None:
        spec_python = str(spec.root / spec_python)   # relative to the study folder
    candidates.append(spec_python)
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        if os.environ.get(var):
            candidates.append(str(Path(os.environ[var]) / "bin" / "python"))
    for candidate in candidates:
        if not candidate:
            continue
        if os.sep not in candidate:
            found = shutil.which(candidate)
            if found:
                return found
            continue
        return candidate
    found = shutil.which("python3") or shutil.which("python")
    if not found:
        raise EnvironmentCaptureError(
            "No Python interpreter was found for this study.",
            "Set `python = \"/path/to/bin/python\"` under [environment] in studypack.toml.")
    return found


def detect_environment(executable: str, *, timeout: float = 60) -> PythonEnvironment:
    """Inspect ``executable`` (e.g. ``/home/me/study/.venv/bin/python``).

    The path is kept as given (not resolved): a venv's ``bin/python`` is a symlink into
    the base installation, and resolving it would lose the venv.
    """
    path = Path(os.path.abspath(os.path.expanduser(executable)))
    if not path.exists():
        raise EnvironmentCaptureError(
            f"The study's interpreter {path} does not exist.",
            "Check `python` under [environment] in studypack.toml, or recreate the environment.")
    if not os.access(path, os.X_OK) or path.is_dir():
        raise EnvironmentCaptureError(f"{path} is not an executable program.",
                                      "Point studypack at the environment's bin/python.")
    guess_prefix = path.parent.parent
    facts = _ask_interpreter(path, timeout)
    if facts is None:
        # Not a Python (e.g. Rscript in a conda env): only a conda env can be locked then.
        if (guess_prefix / "conda-meta").is_dir():
            return PythonEnvironment(kind="conda", executable=str(path), prefix=guess_prefix)
        raise NotPythonError(
            f"{path} did not answer as a Python interpreter.",
            "studypack locks Python virtualenvs, conda environments and the system Python; "
            "point it at the environment's bin/python.")
    prefix = Path(facts["prefix"])
    base_prefix = Path(facts["base_prefix"]) if facts.get("base_prefix") else None
    if (prefix / "conda-meta").is_dir():
        kind = "conda"
    elif facts.get("real_prefix") or (base_prefix and base_prefix != prefix) or (
            prefix / "pyvenv.cfg").is_file():
        kind = "venv"
    else:
        kind = "system"
    libc_name, libc_version = (facts.get("libc") or ["", ""])[:2]
    return PythonEnvironment(
        kind=kind, executable=str(path), prefix=prefix, base_prefix=base_prefix,
        python_version=facts["version"], implementation=facts["implementation"],
        system=facts["system"], machine=facts["machine"],
        libc=f"{libc_name} {libc_version}".strip(),
        site_packages=sorted({p for p in (facts.get("purelib"), facts.get("platlib")) if p}))


def _ask_interpreter(path: Path, timeout: float) -> dict | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        out = subprocess.run([str(path), "-E", "-c", _FACTS_SCRIPT], capture_output=True,
                             text=True, timeout=timeout, env=env, cwd=os.path.dirname(path))
    except subprocess.TimeoutExpired:
        raise EnvironmentCaptureError(f"{path} did not answer within {timeout:.0f} s.") from None
    except OSError:
        return None
    if out.returncode != 0:
        return None
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
