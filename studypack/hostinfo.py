"""Facts about the machine and the code's git state, recorded with every run."""

from __future__ import annotations

import getpass
import os
import platform
import re
import subprocess
import time
from pathlib import Path

from .secrets import Scrubber


def host_facts() -> dict:
    """OS, kernel, CPU, memory, user: enough to explain a difference years later."""
    facts = {
        "os": _os_release(),
        "kernel": platform.release(),
        "system": platform.system(),
        "architecture": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_flags": _float_flags(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "python": platform.python_version(),
        "hostname": platform.node(),
        "timezone": time.strftime("%Z (UTC%z)"),
    }
    try:
        facts["user"] = getpass.getuser()
    except (KeyError, OSError):
        facts["user"] = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return facts


def _os_release() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.platform()
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
    return match.group(1) if match else platform.platform()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _float_flags() -> list[str]:
    """The instruction sets that change floating-point results (as studypack.replay.envdiff)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [f for f in ("avx2", "avx512f", "fma") if f in present]
    except OSError:
        pass
    return []


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def run_git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.decode("utf-8", errors="replace")


def git_state(root: Path, scrubber: Scrubber, read: set[str] | None = None
              ) -> tuple[dict | None, str]:
    """(facts, diff): commit, branch, dirty flag, remote without credentials, and the
    uncommitted diff of the code — or (None, "") when the folder is not in git.

    ``read``: the files the traced run read. The code is dirty when a tracked file has
    changes, or when a file the run read is modified or not tracked at all (a script
    never committed); ``changed_files_read`` lists those, relative to the study."""
    top = run_git(root, "rev-parse", "--show-toplevel")
    if top is None:
        return None, ""
    commit = (run_git(root, "rev-parse", "--verify", "-q", "HEAD") or "").strip()
    changed = _changed_files(root, Path(top.strip()))
    root_real = Path(os.path.realpath(root))
    changed_read = {}
    for path in sorted(read or ()):
        real = os.path.realpath(path)
        if real in changed and Path(real).is_relative_to(root_real):
            changed_read[Path(real).relative_to(root_real).as_posix()] = changed[real]
    remote = (run_git(root, "remote", "get-url", "origin") or "").strip()
    facts = {
        "commit": commit,
        "branch": (run_git(root, "rev-parse", "--abbrev-ref", "HEAD") or "").strip(),
        "dirty": not commit or any(state == "modified" for state in changed.values())
        or bool(changed_read),
        "changed_files_read": changed_read,
        "remote": strip_url_credentials(remote) if remote else "",
    }
    diff = (run_git(root, "diff", "HEAD", "--", ".", ":(exclude).env") or "") if commit else ""
    return facts, scrubber.scrub_text(diff)


def _changed_files(root: Path, top: Path) -> dict[str, str]:
    """Real path -> "modified" | "untracked" for the study's files git sees changed."""
    out = run_git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
    changed: dict[str, str] = {}
    entries = (out or "").split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        code, name = entry[:2], entry[3:]
        if code[0] in "RC":   # a rename is followed by its old name
            i += 1
        state = "untracked" if code == "??" else "modified"
        changed[os.path.realpath(top / name)] = state
    return changed


def strip_url_credentials(url: str) -> str:
    """https://user:token@host/x -> https://host/x (also for ssh-less user@ forms)."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url, flags=re.I)
