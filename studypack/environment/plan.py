"""The environment, planned before the traced run so that a problem costs seconds.

:func:`plan_environment` finds the interpreter the run will start, lists and sorts its
distributions and says which ones can be vendored without network (a wheelhouse the
user names, pip's cache, a rebuild from the installed files). :class:`Prefetch` then
vendors them in a background thread while the study runs; the environment step after
the run takes the wheels from there (issue #17: the waits overlap).
"""

from __future__ import annotations

import csv
import importlib
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from ..errors import Cancelled, EnvironmentCaptureError
from ..progress import CancelToken, reporter
from . import wheels
from .kinds import kind_named
from .detect import NotPythonError, PythonEnvironment, detect_environment, find_interpreter
from .piplock import (LINUX_X86_64_PLATFORMS, Distribution, Prefetched,
                      choose_distributions, download_from_index, list_distributions,
                      vendor_wheels)


@dataclass
class EnvironmentPlan:
    env: PythonEnvironment | None
    locked: list[Distribution] = field(default_factory=list)   # before the run's choice
    skipped: dict[str, str] = field(default_factory=dict)
    offline: dict[str, str] = field(default_factory=dict)      # key -> where its wheel is
    rebuildable: list[str] = field(default_factory=list)       # keys with a RECORD
    unavailable: list[str] = field(default_factory=list)       # names: index or nothing
    messages: list[str] = field(default_factory=list)


def plan_environment(executable: str | None, spec, find_links: list[str]) -> EnvironmentPlan:
    """What the environment step will lock and where its wheels will come from.

    ``executable`` is the program the run starts (resolved on the run's PATH). Raises
    the same errors the environment step would (a missing wheelhouse, an interpreter
    that does not answer) — before the run instead of after it."""
    if find_links:
        wheels.index_dirs([Path(d) for d in find_links])   # a missing folder: say it now
    try:
        env = detect_environment(find_interpreter(executable, spec))
    except NotPythonError:
        if not getattr(getattr(spec, "environment", None), "python", ""):
            return EnvironmentPlan(None, messages=[
                f"the run starts {executable}, not Python: a Python environment is locked "
                "only if the traced run starts one"])
        env = detect_environment(find_interpreter(None, spec))
    plan = EnvironmentPlan(env)
    if not kind_named(env.kind).plans_wheels or not env.python_version:
        plan.messages.append(f"environment: {env.describe()} (locked after the run)")
        return plan
    plan.locked, plan.skipped = choose_distributions(env, list_distributions(env))
    target = wheels.WheelTarget(env.python_version, env.implementation,
                                LINUX_X86_64_PLATFORMS)
    tags = target.tags()
    local = wheels.index_dirs([Path(d) for d in find_links])
    with tempfile.TemporaryDirectory(prefix="studypack-pip-cache-") as scratch:
        cached = wheels.index_pip_cache(scratch=Path(scratch))
        for key, found in wheels.index_own_cache().items():
            cached.setdefault(key, []).extend(found)
        for dist in plan.locked:
            key = (dist.key, dist.version)
            chosen, _why = wheels.choose(local.get(key, []) + cached.get(key, []), target,
                                         tags)
            if chosen is not None:
                plan.offline[dist.key] = chosen.source
            elif dist.location and (Path(dist.location) / "RECORD").is_file():
                plan.rebuildable.append(dist.key)
            else:
                plan.unavailable.append(f"{dist.name}=={dist.version}")
    plan.messages.append(
        f"environment: {env.describe()}; {len(plan.locked)} installed packages, "
        f"{len(plan.offline)} with a wheel at hand, {len(plan.rebuildable)} rebuildable "
        "from the installed files if the index has none"
        + (f", {len(plan.unavailable)} only from the index ("
           + ", ".join(plan.unavailable[:5]) + ("…" if len(plan.unavailable) > 5 else "")
           + ")" if plan.unavailable else ""))
    return plan


# Speculative downloads (before the run says which distributions it uses) stop short of
# a huge environment: a distribution that takes more than this on disk, or what would
# take the total over the second bound, is left for the environment step after the run,
# which downloads it only if the run used it.
SPECULATIVE_MAX_EACH = 300 * 1024 * 1024
SPECULATIVE_MAX_TOTAL = 1024 * 1024 * 1024


def installed_bytes(dist: Distribution) -> int:
    """What ``dist``'s files take on disk, by its RECORD (0 when it has none)."""
    record = Path(dist.location) / "RECORD" if dist.location else None
    try:
        text = record.read_text(encoding="utf-8", errors="replace") if record else ""
    except OSError:
        return 0
    total = 0
    for row in csv.reader(text.splitlines()):
        if len(row) >= 3 and row[2].isdigit():
            total += int(row[2])
    return total


def speculative_choice(dists: list[Distribution], max_each: int = SPECULATIVE_MAX_EACH,
                       max_total: int = SPECULATIVE_MAX_TOTAL) -> list[Distribution]:
    """The distributions worth downloading before the run: the smallest first, none over
    ``max_each`` bytes installed, together at most ``max_total``."""
    sized = sorted(((installed_bytes(d), d) for d in dists), key=lambda pair: pair[0])
    chosen, total = [], 0
    for size, dist in sized:
        if size > max_each or total + size > max_total:
            continue
        chosen.append(dist)
        total += size
    return [d for d in dists if any(d is c for c in chosen)]


class Prefetch:
    """Vendor the planned distributions' wheels in a thread while the study runs.

    Wheels at hand come first; then one ``pip download`` (no dependency resolution:
    exact pins, ``--no-deps``) asks the index for the others into the prefetch folder,
    speculatively: the environment step after the run keeps only those its lock needs
    (and downloads then what was too large to fetch on speculation, if the run used it:
    :func:`speculative_choice`).
    With ``use_index=False`` nothing is downloaded. Nothing here reports or fails:
    with no network the environment step after the run says so, as it would have."""

    def __init__(self, plan: EnvironmentPlan, folder: Path, find_links: list[str],
                 use_index: bool, warm_up: str | None = None,
                 max_each: int = SPECULATIVE_MAX_EACH,
                 max_total: int = SPECULATIVE_MAX_TOTAL):
        self.plan = plan
        self.max_each, self.max_total = max_each, max_total
        self.warm_up = warm_up   # a module the step after the run imports: load it now
        self.folder = folder
        self.find_links = find_links
        self.use_index = use_index
        self.sources: dict[str, str] = {}
        self.asked: set[tuple[str, str]] = set()   # (key, version) the index answered
        self.index_problem = ""
        self.index_why: dict[str, str] = {}
        self._cancel = CancelToken()
        self._thread = threading.Thread(target=self._run, name="studypack-prefetch",
                                        daemon=True)

    def start(self) -> "Prefetch":
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            if self.warm_up:
                importlib.import_module(self.warm_up)
            # Rebuilds wait until the index had its chance (after the run).
            self.sources, _ = vendor_wheels(self.plan.locked, self.plan.env, self.folder,
                                            find_links=self.find_links, cancel=self._cancel,
                                            use_index=False, rebuild=False)
            missing = speculative_choice(
                [d for d in self.plan.locked if d.key not in self.sources],
                self.max_each, self.max_total)
            if self.use_index and missing:
                problem, why = download_from_index(missing, self.plan.env, self.folder,
                                                   reporter(None), self._cancel, 0,
                                                   len(missing),
                                                   None)
                present = {canonicalize_name(w.name.split("-")[0]): w
                           for w in self.folder.glob("*.whl")}
                for dist in missing:
                    if dist.key in present:
                        self.sources[dist.key] = wheels.FROM_INDEX
                wheels.keep_in_own_cache([present[d.key] for d in missing
                                          if d.key in present])
                self.asked = {(d.key, d.version) for d in missing
                              if d.key in present or d.key in why}
                self.index_problem, self.index_why = problem, why
        except (Cancelled, EnvironmentCaptureError, OSError, ImportError):
            pass   # the environment step after the run tries again, and says what fails

    def result(self) -> Prefetched:
        """Wait for the thread; key -> (wheel file, source) for every wheel it found,
        with what the index answered (see :class:`Prefetched`)."""
        self._thread.join()
        found = Prefetched(asked=self.asked, index_problem=self.index_problem,
                           index_why=self.index_why)
        for wheel in self.folder.glob("*.whl"):
            key = canonicalize_name(wheel.name.split("-")[0])
            if key in self.sources:
                found[key] = (wheel, self.sources[key])
        return found

    def stop(self) -> None:
        self._cancel.cancel()
        if self._thread.is_alive():
            self._thread.join()
        shutil.rmtree(self.folder, ignore_errors=True)
