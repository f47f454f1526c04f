"""The environment kinds: one class each, in one ordered registry.

A study's environment is made of layers, each handled by one kind:

==========  ==========================================================================
``debian``  Debian packages owning files the run used (.deb files, :mod:`.debian`)
``conda``   a conda environment (conda-lock + a local channel, :mod:`.condalock`)
``venv``    a virtualenv (hash-pinned requirements + a wheelhouse, :mod:`.piplock`)
``system``  the system Python's pip-installed packages (same as venv)
``r``       the R packages the run loaded (:mod:`.rlang`)
==========  ==========================================================================

At most one of conda/venv/system applies (one interpreter); ``debian`` and ``r`` add to
it. Every kind says whether it applies and, if not, why (:meth:`EnvironmentKind.applies`);
shows what it would lock before anything runs (:meth:`preview`); locks and vendors
(:meth:`lock`); and gives its Dockerfile lines (:meth:`install_steps`). The order of
:data:`KINDS` is the order of the Dockerfile: system packages first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from . import debian, rlang
from .detect import PythonEnvironment

# a log line names this many packages the lock left out; studypack.json lists them all
UNUSED_SHOWN = 8

ENV_DIR = "/env"
VENV_DIR = "/env/venv"
CONDA_PREFIX = "/env/conda"


@dataclass
class StudyFacts:
    """What the kinds look at: the study, its traced run, the detected Python."""

    spec: object = None
    executables: list[str] = field(default_factory=list)   # each run's program
    packages: list[dict] = field(default_factory=list)     # ReproZip's dpkg packages
    files: list[Path] = field(default_factory=list)        # every traced file
    python: PythonEnvironment | None = None
    traced: bool = True


@dataclass
class Layer:
    """What one kind adds to the bundle: its part of studypack.json, review lines, and
    its Dockerfile lines."""

    kind: str
    metadata: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)   # item by item (create -v)


@dataclass
class Preview:
    """Shown before the run (the wizard's environment page): what will be locked."""

    kind: str
    title: str
    lock_name: str = ""
    lines: list[str] = field(default_factory=list)


@dataclass
class CaptureContext:
    """Shared by the kinds while one bundle's environment is captured."""

    facts: StudyFacts
    files_dir: Path
    engine: object = None          # studypack.engine.Engine, or None
    base_image: str | None = None  # the pinned base (repo@sha256:…), or None
    find_links: list[str] = field(default_factory=list)   # wheelhouses the user named
    opened: set[str] | None = None  # files the run opened: lock what ran (None: all)
    prefetched: dict | None = None  # wheels gathered while the run ran (create's plan)
    report: object = None
    cancel: object = None


class EnvironmentKind:
    name: ClassVar[str]
    title: ClassVar[str]
    needs_base_image: ClassVar[bool] = False   # locks against what the base already has
    interpreter: ClassVar[bool] = False        # the run's Python: its metadata is the
    #                                            environment's top level (at most one)
    plans_wheels: ClassVar[bool] = False       # create's plan vendors its wheels early
    image_python: ClassVar[bool] = False       # the built image's Python is checked
    pip_skips_system_installs: ClassVar[bool] = False   # leave apt/conda's packages to them

    def previews_untraced(self, facts: StudyFacts, reason: str) -> bool:
        """Show a preview section before the traced run although :meth:`applies` said
        ``reason`` (the run has to say what it uses first)."""
        return False

    def applies(self, facts: StudyFacts) -> str | None:
        """None when this kind applies to the study, else the reason it does not."""
        raise NotImplementedError

    def preview(self, facts: StudyFacts) -> Preview:
        return Preview(self.name, self.title)

    def lock(self, ctx: CaptureContext) -> Layer:
        """Lock and vendor into ``ctx.files_dir``; the returned layer has the steps."""
        raise NotImplementedError


# ------------------------------------------------------------------ Python

class _PipKind(EnvironmentKind):
    """A Python environment locked by pip (a virtualenv, or the system Python)."""

    interpreter = True
    plans_wheels = True
    image_python = True

    def applies(self, facts: StudyFacts) -> str | None:
        if facts.python is None:
            return "the run did not use Python"
        if facts.python.kind != self.name:
            return f"the run's Python is {facts.python.describe()}"
        return None

    def default_base_image(self, env: PythonEnvironment) -> str:
        return f"python:{env.python_minor or '3'}-slim"

    def preview(self, facts: StudyFacts) -> Preview:
        from .piplock import choose_distributions, list_distributions

        if not facts.python.python_version:   # the interpreter did not say: nothing to list
            return Preview(self.name, self.title)
        locked, skipped = choose_distributions(facts.python, list_distributions(facts.python))
        return Preview(self.name, self.title,
                       "requirements.lock (preview: versions now; the sha256 of each wheel "
                       "is added when the bundle is made)",
                       [f"# not locked: {name} ({why})" for name, why in sorted(skipped.items())]
                       + [f"{d.name}=={d.version}" for d in locked])

    def lock(self, ctx: CaptureContext) -> Layer:
        from .piplock import LINUX_X86_64_PLATFORMS, lock_pip_environment

        env = ctx.facts.python
        pip = lock_pip_environment(env, ctx.files_dir, report=ctx.report, cancel=ctx.cancel,
                                   find_links=ctx.find_links, opened=ctx.opened,
                                   prefetched=ctx.prefetched)
        metadata = {**pip.to_metadata(),
                    "lock_method": "importlib.metadata + pip download (hash-pinned)",
                    "wheel_target": {"platform": "linux-x86_64", "python": env.python_minor,
                                     "implementation": env.implementation,
                                     "manylinux": LINUX_X86_64_PLATFORMS[0]}}
        messages = [f"pip lock: {len(pip.locked)} packages pinned with sha256 hashes; "
                    f"{len(pip.wheels)} wheels vendored (linux x86_64, Python "
                    f"{env.python_version}): {pip.source_summary() or 'none needed'}"]
        if pip.unused:
            names = sorted(pip.unused)
            shown = ", ".join(names[:UNUSED_SHOWN]) + (
                f" and {len(names) - UNUSED_SHOWN} more" if len(names) > UNUSED_SHOWN else "")
            messages.append(f"left out of the lock {len(names)} installed package(s) the run "
                            f"did not use: {shown} (all listed in studypack.json; "
                            "lock = \"all\" under [environment] keeps them)")
        if pip.rebuilt:
            messages.append("REBUILT from the installed files (no wheel was found in a "
                            "wheelhouse, pip's cache or the index"
                            + (f"; {pip.index_problem}" if pip.index_problem else "")
                            + "): " + ", ".join(pip.rebuilt))
        messages += [f"not locked: {name} ({why})" for name, why in sorted(pip.skipped.items())]
        return Layer(self.name, metadata, messages,
                     pip_install_steps(pip.lock_file.name, bool(pip.wheels)))


def pip_install_steps(lock_file: str, has_wheels: bool) -> list[str]:
    steps = ["# The wheels were vendored when the bundle was made; pip may not use any index",
             "# and checks every file against the sha256 in the lock.",
             f"COPY env/{lock_file} {ENV_DIR}/{lock_file}"]
    if has_wheels:
        steps += [f"COPY env/wheelhouse/ {ENV_DIR}/wheelhouse/",
                  f"RUN python3 -m venv {VENV_DIR} \\",
                  f" && {VENV_DIR}/bin/python -m pip install --no-index --find-links "
                  f"{ENV_DIR}/wheelhouse --require-hashes --no-cache-dir "
                  f"-r {ENV_DIR}/{lock_file}"]
    else:   # nothing to pip-install: the venv alone, as the run had
        steps += [f"RUN python3 -m venv {VENV_DIR}"]
    return steps + [f"ENV VIRTUAL_ENV={VENV_DIR} PATH={VENV_DIR}/bin:$PATH"]


class VenvKind(_PipKind):
    name = "venv"
    title = "a virtualenv (pip packages, hash-pinned, wheels vendored)"


class SystemPythonKind(_PipKind):
    name = "system"
    title = "the system Python (its pip-installed packages, hash-pinned)"
    pip_skips_system_installs = True


class CondaKind(EnvironmentKind):
    name = "conda"
    title = "a conda environment (conda-lock, packages vendored as a local channel)"
    interpreter = True
    pip_skips_system_installs = True

    def default_base_image(self, env: PythonEnvironment) -> str:
        return "mambaorg/micromamba:latest"

    def applies(self, facts: StudyFacts) -> str | None:
        if facts.python is None:
            return "the run did not use a conda environment's Python"
        if facts.python.kind != self.name:
            return f"the run's Python is {facts.python.describe()}"
        return None

    def preview(self, facts: StudyFacts) -> Preview:
        from .condalock import read_conda_meta

        records = read_conda_meta(facts.python.prefix)
        return Preview(self.name, self.title,
                       "conda-lock.yml (preview: the packages that will be locked)",
                       [f"{r.get('name')}={r.get('version')}={r.get('build', '')}"
                        for r in records])

    def lock(self, ctx: CaptureContext) -> Layer:
        from .condalock import lock_conda_environment

        conda = lock_conda_environment(ctx.facts.python, ctx.files_dir, report=ctx.report,
                                       cancel=ctx.cancel)
        messages = [f"conda lock: {len(conda.records)} packages, written from "
                    f"{conda.method}; the packages are vendored as a local channel"]
        explicit = f"{ENV_DIR}/conda-explicit.txt"
        steps = [
            "# The conda packages were vendored as a local channel; the explicit list pins",
            "# each file and its md5. Needs micromamba, mamba or conda in the base image.",
            f"COPY env/conda-explicit.txt env/conda-lock.yml {ENV_DIR}/",
            f"COPY env/channel/ {ENV_DIR}/channel/",
            "RUN set -e; \\",
            "    if command -v micromamba >/dev/null; then "
            f"micromamba create -y --offline -p {CONDA_PREFIX} -f {explicit}; \\",
            "    elif command -v mamba >/dev/null; then "
            f"mamba create -y --offline -p {CONDA_PREFIX} --file {explicit}; \\",
            f"    else conda create -y --offline -p {CONDA_PREFIX} --file {explicit}; fi",
            f"ENV CONDA_PREFIX={CONDA_PREFIX} PATH={CONDA_PREFIX}/bin:$PATH",
        ]
        return Layer(self.name, conda.to_metadata(), messages + list(conda.notes), steps)


# ------------------------------------------------------------------ beyond Python

class DebianKind(EnvironmentKind):
    name = "debian"
    title = "Debian packages (.deb files at their exact versions)"
    needs_base_image = True

    def previews_untraced(self, facts: StudyFacts, reason: str) -> bool:
        return not facts.traced and debian.dpkg_available()

    def applies(self, facts: StudyFacts) -> str | None:
        if not debian.dpkg_available():
            return ("this machine has no dpkg: only Debian and Ubuntu packages are vendored; "
                    "programs from another distribution replay from the traced files only")
        if not facts.packages:
            return ("the run used no file from a Debian package" if facts.traced
                    else "there is no traced run to say which packages it used")
        return None

    def preview(self, facts: StudyFacts) -> Preview:
        release = debian.host_release()
        lines = [f"# {release.get('PRETTY_NAME', 'this machine')}: the packages owning files "
                 "the traced run uses, and their dependencies, are vendored as .deb files "
                 "unless the base image has them"]
        if not facts.traced:
            lines.append("# (which packages: known after the traced run)")
        return Preview(self.name, self.title, debian.LOCK_NAME, lines + [
            f"{p['name']}={p.get('version', '')}" for p in facts.packages])

    def lock(self, ctx: CaptureContext) -> Layer:
        if ctx.base_image is None:
            lock = debian.plan_debian_packages(ctx.facts.packages, base=None)
            for package in lock.packages:
                if not package.status:
                    package.status = "not vendored"
                    package.reason = "no base image was pinned, so there is no Dockerfile"
            debian.write_lock(lock, ctx.files_dir / debian.LOCK_NAME)
            return Layer(self.name, lock.to_metadata(), lock.summary(),
                         details=lock.details())
        base, base_release = debian.base_image_packages(ctx.engine, ctx.base_image,
                                                        ctx.cancel)
        host = debian.host_release()
        host_release = " ".join(v for v in (host.get("ID"), host.get("VERSION_ID")) if v)
        if base is None or base_release != host_release:
            why = ("the base image has no dpkg (it is not Debian-based)" if base is None
                   else f"the base image is {base_release or 'another system'}, the run was "
                        f"on {host_release}")
            lock = debian.plan_debian_packages(ctx.facts.packages, base=None)
            lock.covered = False
            lock.notes.append(f"Debian packages were not vendored: {why}; programs from the "
                              "distribution replay from the traced files (trace mode)")
            for package in lock.packages:
                package.status, package.reason = "not vendored", why
            debian.write_lock(lock, ctx.files_dir / debian.LOCK_NAME)
            return Layer(self.name, lock.to_metadata(), lock.summary(),
                         details=lock.details())
        lock = debian.plan_debian_packages(ctx.facts.packages, base=base)
        debian.vendor_debian_packages(lock, ctx.files_dir, report=ctx.report,
                                      cancel=ctx.cancel)
        return Layer(self.name, lock.to_metadata(), lock.summary(),
                     debian.install_steps(lock, ENV_DIR), lock.details())


class RKind(EnvironmentKind):
    name = "r"
    title = "R and the R packages the run loaded"

    def applies(self, facts: StudyFacts) -> str | None:
        if rlang.uses_r(facts.executables, facts.files):
            return None
        return "the run did not start R"

    def preview(self, facts: StudyFacts) -> Preview:
        lines = [f"# R {rlang.r_version() or '(not found on PATH)'}; the packages the run "
                 "loads are locked from their DESCRIPTION files"]
        if facts.files:
            lock = rlang.lock_r_packages(facts.files)
            lines += [f"{p.name} {p.version} ({p.origin})" for p in lock.packages]
        return Preview(self.name, self.title, rlang.LOCK_NAME, lines)

    def lock(self, ctx: CaptureContext) -> Layer:
        installed = {p["name"]: str(p.get("version") or "") for p in ctx.facts.packages}
        executable = next((e for e in ctx.facts.executables
                           if Path(e or "").name in rlang.R_PROGRAMS), "")
        lock = rlang.lock_r_packages(ctx.facts.files, installed_versions=installed,
                                     executable=executable)
        rlang.vendor_r_packages(lock, ctx.files_dir)
        return Layer(self.name, lock.to_metadata(), lock.summary(),
                     rlang.install_steps(lock))


# The order of the Dockerfile: the system first, then the Python environment, then R's.
KINDS: list[EnvironmentKind] = [DebianKind(), CondaKind(), VenvKind(), SystemPythonKind(),
                                RKind()]
PYTHON_KINDS = tuple(k.name for k in KINDS if k.interpreter)


def kind_named(name: str) -> EnvironmentKind:
    return next(k for k in KINDS if k.name == name)


def applicable(facts: StudyFacts) -> tuple[list[EnvironmentKind], dict[str, str]]:
    """The kinds that apply, in registry order, and why each other one does not."""
    chosen, why_not = [], {}
    for kind in KINDS:
        reason = kind.applies(facts)
        if reason is None:
            chosen.append(kind)
        else:
            why_not[kind.name] = reason
    return chosen, why_not
