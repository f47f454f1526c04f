"""One create session: plan → trace → environment → pack.

The CLI (``studypack create``) runs the four steps in a row; the wizard runs them page
by page (Run, Image, Review, Export). Each step is a method taking ``(report, cancel)``;
the session keeps what the earlier steps found in a work folder until the bundle is
written, and :meth:`CreateSession.close` removes it.

The plan step runs first and writes nothing: every problem that can be found without
running the study (the spec, the output path, files that cannot be packed, the software
environment) costs seconds instead of a traced run.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..bundle import format as fmt
from ..bundle.prepack import NO_ROOM, Prepack
from ..bundle.writer import PackPlan, pack
from ..collect import LeftOut, StudyFile, StudyReview, review_study
from ..errors import UsageError
from ..fsutil import make_work_dir
from ..progress import CancelToken, Progress, Reporter, reporter, token
from ..secrets import Scrubber
from ..spec import StudySpec, load_spec
from ..environment.plan import EnvironmentPlan, Prefetch, plan_environment
from ..trace import TraceResult, resolve_executable, run_environment, trace_study
from .layout import EnvironmentPart, plan_bundle, study_members

STEPS = ("plan", "trace", "environment", "pack")


@dataclass
class CreateOptions:
    allow_failure: bool = False
    trace: bool = True                 # False: pack the study as it is, with no run
    build_image: bool | None = None    # None: build when a Docker daemon answers
    save_image: bool = False
    base_image: str | None = None
    level: int = 3
    overwrite: bool = False
    tag: str | None = None             # the built image's name (default: name:version)
    find_links: list[str] = field(default_factory=list)   # wheelhouses named by the user
    lock: str | None = None            # "used" | "all" (default: the spec's, else "used")


@dataclass
class CreatePlan:
    """What the plan step found, before anything runs: shown to the user."""

    out: Path
    inputs: list[StudyFile]
    left_out: list[LeftOut]
    messages: list[str] = field(default_factory=list)


@dataclass
class CreateResult:
    path: Path
    sha256: str
    size: int
    files: int
    payload_bytes: int
    messages: list[str] = field(default_factory=list)   # what the user should read
    secrets_dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    left_out: list[LeftOut] = field(default_factory=list)
    dockerfile: str | None = None
    details: list[str] = field(default_factory=list)    # item by item, for create -v


def default_output(spec: StudySpec) -> Path:
    return Path.cwd() / f"{spec.study.name}{fmt.EXTENSION}"


def check_output(spec: StudySpec, out: Path, overwrite: bool) -> None:
    """Refuse, before anything runs, a bundle path that would lose a file or end up
    packed into the study itself."""
    if out.exists() and not overwrite:
        raise UsageError(f"{out} already exists; it was left as it is.",
                         "Choose another name with -o, or pass --force to replace it.")
    if out.resolve().is_relative_to(spec.root) and out.suffix != fmt.EXTENSION:
        raise UsageError(f"The bundle would be written inside the study as {out.name}.",
                         f"Name it *{fmt.EXTENSION} or write it outside the study folder.")


# Docker's reference grammar, without a registry port or digest: name[:tag]
_TAG_RE = re.compile(r"^[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
                     r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")


def check_tag(tag: str | None) -> None:
    if tag and not _TAG_RE.match(tag):
        raise UsageError(f"--tag {tag!r} is not a valid image name.",
                         "Use lowercase letters, digits, . _ - and /, then :TAG, "
                         "e.g. --tag lab/heat-diffusion:1.2.")


class CreateSession:
    """The steps of one ``create``. Attributes hold each step's result."""

    def __init__(self, spec: StudySpec, options: CreateOptions | None = None,
                 out: str | os.PathLike | None = None):
        self.spec = spec
        self.options = options or CreateOptions()
        self.out = Path(out) if out else None
        self.work = make_work_dir("create")   # also sweeps the folders of killed runs
        self.scrubber = Scrubber(allow=set(spec.environment.allow_env))
        self.planned: CreatePlan | None = None
        self.traced: TraceResult | None = None
        self.environment: EnvironmentPart | None = None
        self.layout: PackPlan | None = None
        self.review: StudyReview | None = None    # the files as packed (after the run)
        self.reviewed: StudyReview | None = None  # the plan's walk, before the run
        self.env_plan: EnvironmentPlan | None = None
        self.prefetch: Prefetch | None = None
        self.prepack: Prepack | None = None     # the study compressed during the run
        self.prehash = None    # storeonce.TracedHashes: the traced files hashed after it
        self.spliced: int = 0                   # members the writer took from it
        self.prepack_skipped = ""               # why nothing was, if so
        self.warnings: list[str] = []
        self.image_bytes: int | None = None   # the built image's size, when known

    # ------------------------------------------------------------------ step 1
    def plan(self, report: Reporter | None = None,
             cancel: CancelToken | None = None) -> CreatePlan:
        """Check everything that can be checked without running the study."""
        report, cancel = reporter(report), token(cancel)
        report(Progress("plan", 0, None, "Checking the study before its run"))
        out = self.out or default_output(self.spec)
        check_output(self.spec, out, self.options.overwrite)
        check_tag(self.options.tag)
        # With no run to come, the outputs must be there now: this walk is the pack's.
        review = self.reviewed = review_study(self.spec,
                                              outputs_expected=not self.options.trace)
        cancel.check()
        if self.options.trace:
            self._start_prepack(cancel)
        self.planned = CreatePlan(out=out, inputs=review.inputs, left_out=review.left_out)
        self.planned.messages.append(
            f"{sum(f.role == 'code' for f in review.inputs)} code and "
            f"{sum(f.role == 'data' for f in review.inputs)} data files to pack"
            + (f", {len(review.left_out)} left out (listed at the end)"
               if review.left_out else ""))
        report(Progress("plan", 0, None, "Planning the software environment"))
        self.env_plan = plan_environment(self._run_program(), self.spec, self._find_links())
        self.planned.messages += self.env_plan.messages
        if self._lock_mode() == "all" and self.env_plan.unavailable:
            self.planned.messages.append(
                "these packages need the package index (no wheel at hand, no RECORD to "
                "rebuild them from): " + ", ".join(self.env_plan.unavailable))
        report(Progress("plan", 1, 1, "The study and its environment are planned"))
        return self.planned

    def _find_links(self) -> list[str]:
        return list(self.options.find_links) + [
            str(self.spec.root / d) for d in self.spec.environment.find_links]

    def _lock_mode(self) -> str:
        return self.options.lock or self.spec.environment.lock

    def _run_program(self) -> str | None:
        """The program the first run starts, found as the run will find it."""
        step = self.spec.runs[0]
        env = run_environment(self.spec)
        cwd = (self.spec.root / step.workdir).resolve()
        found = resolve_executable(step.command[0], cwd, env)
        if found is None:
            raise UsageError(f"The command {step.command[0]!r} was not found.",
                             "Check [run] command in studypack.toml, or the PATH.")
        return found

    # ------------------------------------------------------------------ step 2
    def run_dir(self, index: int = 1) -> Path:
        """Where the trace writes run ``index``'s stdout.txt / stderr.txt as it runs."""
        return self.work / f"run{index}"

    def trace(self, report: Reporter | None = None,
              cancel: CancelToken | None = None) -> TraceResult | None:
        """Run the study's command(s) under ReproZip. A second call starts afresh."""
        shutil.rmtree(self.work / "trace", ignore_errors=True)
        self.scrubber = Scrubber(allow=set(self.spec.environment.allow_env))
        self.traced = self.environment = self.layout = None
        if not self.options.trace:
            return None
        self._start_prefetch()
        try:
            self.traced = trace_study(self.spec, self.work, self.scrubber,
                                      allow_failure=self.options.allow_failure,
                                      report=report, cancel=cancel)
        finally:   # the run is over: what is left of the prepack needs no low priority
            if self.prepack is not None:
                self.prepack.hurry()
        if self.prepack is not None:   # what the run wrote is packed as it is now
            self.prepack.forget(self.traced.written)
        # store-once's sha256 of the traced files, during the environment step
        from ..storeonce import TracedHashes
        self._stop_prehash()
        self.prehash = TracedHashes(self.traced.files, cancel).start()
        return self.traced

    def _start_prefetch(self) -> None:
        """While the study runs, gather the planned wheels that are at hand and download
        the others from the index, speculatively: the lock after the run keeps only
        those it needs (issue #17: no wait for the index after the run)."""
        plan = self.env_plan
        if self.prefetch is not None or plan is None or not plan.locked:
            return
        self.prefetch = Prefetch(plan, self.work / "prefetch", self._find_links(),
                                 use_index=True, warm_up="studypack.environment.capture"
                                 ).start()

    def _start_prepack(self, cancel: CancelToken | None) -> None:
        """From the plan's walk on, while the study runs, compress its code and data as
        the writer will (the writer copies in what the run left unchanged; issue #17:
        what is known before the run is not packed after it)."""
        if self.prepack is not None:
            self.prepack.stop()
            self.prepack = None
        if self.reviewed is None:
            return
        members = study_members(self.spec, self.reviewed.inputs, self.scrubber)
        self.prepack = Prepack(members, self.spec.study.name, self.work / "prepack",
                               self.options.level, cancel=cancel).start()

    # ------------------------------------------------------------------ step 3
    def capture_environment(self, build_image: bool | None = None,
                            save_image: bool | None = None, report: Reporter | None = None,
                            cancel: CancelToken | None = None) -> EnvironmentPart:
        """Lock and vendor the environment the run used; render (and build) its image."""
        from ..environment import capture_environment

        report, cancel = reporter(report), token(cancel)
        if build_image is not None:
            self.options.build_image = build_image
        if save_image is not None:
            self.options.save_image = save_image
        options = self.options
        shutil.rmtree(self.work / "env", ignore_errors=True)
        traced = self.traced
        lock = self._lock_mode()
        prefetched = self.prefetch.result() if self.prefetch else None
        capture = capture_environment(
            traced.runs[0].executable if traced else None, self.spec, self.work / "env",
            base_image=options.base_image or self.spec.environment.base_image or None,
            build_image=options.build_image, save_image=options.save_image,
            packages=traced.packages if traced else [], tag=options.tag,
            find_links=self._find_links(),
            opened=traced.opened if traced and lock == "used" else None,
            pythons=traced.pythons if traced else None, prefetched=prefetched,
            files=traced.files if traced else None,
            executables=[r.executable or "" for r in traced.runs] if traced else None,
            report=report, cancel=cancel)
        self.environment = EnvironmentPart(capture.metadata, capture.files_dir,
                                           capture.image_tar, list(capture.messages),
                                           capture.dockerfile, list(capture.details))
        self.layout = None
        return self.environment

    # ------------------------------------------------------------------ step 4
    def make_plan(self, report: Reporter | None = None,
                  cancel: CancelToken | None = None) -> PackPlan:
        """The bundle's layout (what goes where), computed without writing: the review."""
        environment = self.environment or EnvironmentPart()
        traced = self.traced
        started = traced.runs[0].started_at if traced else None
        failed = bool(traced) and any(r.exit_code != 0 for r in traced.runs)
        if traced is None and self.reviewed is not None:
            self.review = self.reviewed   # nothing ran since the plan's walk
        else:   # the run wrote its outputs since: walk again to see them
            self.review = review_study(self.spec, outputs_expected=not failed)
        hashed = self.prehash.result() if self.prehash is not None and traced else None
        self.layout, self.warnings = plan_bundle(self.spec, traced, environment,
                                                 self.scrubber, started=started,
                                                 review=self.review, hashed=hashed)
        return self.layout

    def pack(self, out: str | os.PathLike | None = None, overwrite: bool | None = None,
             report: Reporter | None = None,
             cancel: CancelToken | None = None) -> CreateResult:
        """Write the bundle (atomically) and its .sha256."""
        report, cancel = reporter(report), token(cancel)
        if overwrite is not None:
            self.options.overwrite = overwrite
        target = Path(out) if out else (self.planned.out if self.planned else None) \
            or self.out or default_output(self.spec)
        check_output(self.spec, target, self.options.overwrite)
        if self.layout is None:
            self.make_plan(report, cancel)
        cancel.check()
        try:
            written = pack(self.layout, target, level=self.options.level,
                           overwrite=self.options.overwrite, report=report, cancel=cancel,
                           prepacked=self.prepack)
        finally:
            if self.prepack is not None:
                self.spliced = sum(len(c.entries) for c in self.prepack.spliced)
                self.prepack_skipped = self.prepack.skipped
            self._stop_prepack()
        environment = self.environment or EnvironmentPart()
        return CreateResult(written.path, written.sha256, written.size, written.files,
                            written.payload_bytes, self.messages(),
                            sorted(self.scrubber.dropped), list(self.warnings),
                            environment.metadata,
                            self.left_out(), environment.dockerfile,
                            list(environment.details) + self._prepack_details())

    # ---------------------------------------------------------------- together
    def run(self, report: Reporter | None = None,
            cancel: CancelToken | None = None) -> CreateResult:
        """Every step in a row, as ``studypack create`` does."""
        report, cancel = reporter(report), token(cancel)
        self.plan(report, cancel)
        self.trace(report, cancel)
        cancel.check()
        self.capture_environment(report=report, cancel=cancel)
        cancel.check()
        return self.pack(report=report, cancel=cancel)

    def messages(self) -> list[str]:
        """What the user should read besides the warnings: environment notes, what the
        secrets filter removed, and every file left out of the bundle with its reason."""
        found = list(self.environment.messages) if self.environment else []
        found += self.scrubber.summary()
        if self.traced and self.traced.skipped_secret_files:
            found.append("left out files the run read that hold credentials: "
                         + ", ".join(self.traced.skipped_secret_files))
        found += [f"left out {item.path} ({item.reason})" for item in self.left_out()]
        return found

    def left_out(self) -> list[LeftOut]:
        """The study's files that are not in the bundle, each with its reason."""
        if self.review is not None:
            return list(self.review.left_out)
        return list(self.planned.left_out) if self.planned else []

    def _prepack_details(self) -> list[str]:
        if self.prepack_skipped == NO_ROOM:
            return [f"the study's files were not compressed during the run: "
                    f"{self.prepack_skipped} ({self.work.parent})"]
        if not self.spliced:
            return []
        return [f"{self.spliced} of the study's files were compressed during the run"]

    def _stop_prehash(self) -> None:
        if self.prehash is not None:
            self.prehash.stop()
            self.prehash = None

    def _stop_prepack(self) -> None:
        if self.prepack is not None:
            self.prepack.stop()
            self.prepack = None

    def close(self) -> None:
        self._stop_prepack()
        self._stop_prehash()
        if self.prefetch is not None:
            self.prefetch.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> "CreateSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def create_bundle(spec_path: str | os.PathLike, out_path: str | os.PathLike | None = None,
                  options: CreateOptions | None = None, report: Reporter | None = None,
                  cancel: CancelToken | None = None) -> CreateResult:
    """``studypack create``: every step of one session, the work folder removed after."""
    with CreateSession(load_spec(spec_path), options, out_path) as session:
        return session.run(report, cancel)
