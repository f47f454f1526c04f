"""The replay modes, in the order ``auto`` tries them: one list that ``auto``,
``studypack replay --help``, the CLI and the GUI all read.

Each runner class has a ``name``, a one-line ``summary``, ``available(bundle, host)``
returning None or the reason it cannot run (one clause, no final stop), and makes the
runner that prepares and runs the recorded commands. ``bundle`` is a :class:`BundleFacts`
(from an unpacked bag, or from a bundle's metadata before unpacking) or None when only
this machine is asked about (``--help``).
"""

from __future__ import annotations

import functools
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError

AUTO = "auto"


@dataclass
class BundleFacts:
    """What a bundle carries that decides which modes can replay it."""
    has_image: bool = False
    has_dockerfile: bool = False
    base_image: str | None = None
    has_rootfs: bool = False
    architectures: set[str] = field(default_factory=set)
    traced_libc: Path | None = None

    @classmethod
    def from_layout(cls, layout) -> "BundleFacts":
        from .rebuild import dockerfile_base

        from ..storeonce import LISTING

        rootfs = layout.rootfs
        unpacked = rootfs.is_dir() and any(rootfs.iterdir())
        # Traced files may be skipped at unpack (an image of them is here already) or
        # stored once in their packages (rebuilt before the run).
        has_rootfs = unpacked or bool(layout.trace_image) or (layout.bag_dir / LISTING).is_file()
        return cls(
            has_image=layout.image_tar.is_file(),
            has_dockerfile=layout.dockerfile.is_file(),
            base_image=dockerfile_base(layout.dockerfile) if layout.dockerfile.is_file() else None,
            has_rootfs=has_rootfs,
            architectures={normal_arch((r.get("host") or {}).get("architecture", ""))
                           for r in layout.runs} - {""},
            traced_libc=next(rootfs.glob("**/libc.so.6"), None) if unpacked else None)

    @classmethod
    def from_metadata(cls, metadata: dict) -> "BundleFacts":
        """From studypack.json alone (``info``, the GUI before a replay unpacks)."""
        counts = metadata.get("counts") or {}
        env = metadata.get("environment") or {}
        base = env.get("base_image")
        if isinstance(base, dict):
            base = base.get("pinned") or base.get("ref") or base.get("reference")
        return cls(
            has_image=bool((counts.get("image") or {}).get("files")),
            has_dockerfile=bool(env.get("dockerfile")),
            base_image=base if isinstance(base, str) and base else None,
            has_rootfs=bool((counts.get("rootfs") or {}).get("files")),
            architectures={normal_arch((r.get("host") or {}).get("architecture", ""))
                           for r in metadata.get("runs") or []} - {""})


def normal_arch(name: str) -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(name.lower(), name.lower())


class Host:
    """This machine, asked lazily and once: the engine, bubblewrap, the CPU."""

    @functools.cached_property
    def engine_problem(self) -> str | None:
        from .runners import engine_available

        ok, reason = engine_available()
        return None if ok else reason.rstrip(".")

    @functools.cached_property
    def sandbox_problem(self) -> str | None:
        from .sandbox import bwrap_problem

        return bwrap_problem()

    @property
    def architecture(self) -> str:
        return normal_arch(platform.machine())

    @property
    def linux(self) -> bool:
        return platform.system() == "Linux"

    def image_here(self, ref: str) -> bool:
        from .runners import connect_engine

        engine = connect_engine()
        try:
            return engine.image_exists(ref)
        finally:
            engine.close()

    def arch_problem(self, bundle: BundleFacts | None) -> str | None:
        if bundle and bundle.architectures and self.architecture not in bundle.architectures:
            return (f"the run was recorded on the {', '.join(sorted(bundle.architectures))} "
                    f"CPU architecture and this machine is {self.architecture}")
        return None

    def cannot_run_traced(self, bundle: BundleFacts | None) -> str | None:
        """Why the traced programs cannot run on this CPU or kernel at all."""
        if bundle is None:
            return None
        if self.arch_problem(bundle):
            return self.arch_problem(bundle)
        if bundle.traced_libc is not None and self.linux:
            from .. import elfinfo

            needed, have = elfinfo.minimum_kernel(bundle.traced_libc), kernel_version()
            if needed and have and have < needed:
                return (f"the traced C library needs Linux {'.'.join(map(str, needed))} or "
                        f"newer and this kernel is {platform.release()}")
        return None


def kernel_version() -> tuple[int, int, int] | None:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", platform.release())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def runners() -> list[type]:
    """Every runner class, in the order auto tries them."""
    from .directory import DirectoryRunner
    from .image import ImageRunner
    from .rebuild import RebuildRunner
    from .trace import TraceRunner
    from .sandbox import SandboxRunner

    return [ImageRunner, RebuildRunner, TraceRunner, SandboxRunner, DirectoryRunner]


def mode_names() -> list[str]:
    return [AUTO] + [r.name for r in runners()]


def runner_class(name: str) -> type:
    for runner in runners():
        if runner.name == name:
            return runner
    raise UsageError(f"Unknown replay mode {name!r}.",
                     f"Choose one of: {', '.join(mode_names())}.")


@dataclass
class ModeCheck:
    mode: str
    reason: str | None          # None: it can run

    @property
    def possible(self) -> bool:
        return self.reason is None


def check_modes(bundle: BundleFacts | None, host: Host | None = None) -> list[ModeCheck]:
    host = host or Host()
    return [ModeCheck(r.name, r.available(bundle, host)) for r in runners()]


class ModeUnavailable(UsageError):
    """A mode that cannot run here was asked for (exit code of a usage error)."""


def choose_mode(bundle: BundleFacts, requested: str, host: Host | None = None) -> tuple[str, str]:
    """(mode, reason). ``auto`` takes the first mode of the list that can run here."""
    host = host or Host()
    if requested != AUTO:
        runner = runner_class(requested)
        reason = runner.available(bundle, host)
        if reason is not None:
            checks = check_modes(bundle, host)
            possible = [c.mode for c in checks if c.possible]
            raise ModeUnavailable(
                f"The {requested} mode cannot replay this bundle here: {reason}.",
                f"Try --mode {possible[0]}." if possible else
                "No mode can run it here: " + "; ".join(f"{c.mode}: {c.reason}" for c in checks)
                + ".")
        return requested, runner.why_chosen
    checks = check_modes(bundle, host)
    for index, check in enumerate(checks):
        if check.possible:
            skipped = "; not ".join(f"{c.mode}: {c.reason}" for c in checks[:index])
            reason = f"auto chose {check.mode}: {runner_class(check.mode).why_chosen}"
            return check.mode, reason + (f" (not {skipped})" if skipped else "")
    raise ModeUnavailable("No replay mode can run this bundle here.",
                          "; ".join(f"{c.mode}: {c.reason}" for c in checks) + ".")


def help_table(host: Host | None = None) -> str:
    """The modes for ``studypack replay --help``: what each does, and why it cannot run
    on this machine when it cannot (whatever the bundle)."""
    host = host or Host()
    lines, missing = [], []
    for runner in runners():
        reason = runner.available(None, host)
        if reason:
            missing.append(f"  {runner.name:<10} {reason}")
        else:
            lines.append(f"  {runner.name:<10} {runner.summary}")
    lines.append(f"  {AUTO:<10} the first of these that can run the bundle, and says why "
                 "(default)")
    if missing:
        lines += ["", "not available on this machine:"] + missing
    return "\n".join(lines)
