"""Replay a received bundle: verify and unpack it, recreate the study folder, run the
recorded command(s) in order in the chosen environment, and compare every output with
the original run's.

``replay_bundle`` is the one entry point, used by ``studypack replay`` and the GUI.
The four environments live in :mod:`studypack.replay.runners`; the comparison in
:mod:`studypack.replay.compare`; the rendering in :mod:`studypack.replay.report`.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .. import elfinfo
from ..bundle import format as fmt
from .compare import OutputResult, all_reproduced, compare_outputs, list_outputs
from ..errors import EngineError, RunFailedError, StudypackError, UsageError, write_error
from ..fsutil import make_work_dir
from ..progress import CancelToken, Progress, Reporter, reporter, token
from .directory import DirectoryRunner
from .runners import (ImageRunner, RebuildRunner, RunOutcome, RunPlan, Runner, TraceRunner,
                           dockerfile_base, engine_available)
from ..storeonce import LISTING, rebuild_files
from .cache import references_needed
from .study import (BagLayout, apply_arguments, apply_inputs, fetch_references,
                           load_layout, make_study_dir)

MODES = ("auto", "image", "rebuild", "trace", "directory")
AUTO_ORDER = ("image", "rebuild", "trace", "directory")


@dataclass
class ReplayResult:
    mode: str
    mode_reason: str
    compared: bool                     # False when own inputs/arguments were used
    outputs: list[OutputResult] = field(default_factory=list)
    runs: list[RunOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bundle: str = ""
    study: str = ""
    workdir: Path | None = None        # kept work folder (None once removed)
    expected_dir: Path | None = None   # original outputs (inside the kept work folder)
    actual_dir: Path | None = None     # the replay's study folder
    failed_run: RunOutcome | None = None

    @property
    def reproduced(self) -> bool:
        return self.compared and self.failed_run is None and all_reproduced(self.outputs)

    def to_dict(self) -> dict:
        from .report import report_dict
        return report_dict(self)


# ------------------------------------------------------------------- mode choice

@dataclass
class ModeCheck:
    mode: str
    possible: bool
    reason: str


def check_modes(layout: BagLayout) -> list[ModeCheck]:
    """For each mode, whether it can run here and why (not)."""
    checks = []
    engine_ok, engine_reason = engine_available()
    problems = host_problems(layout)
    arch_problem = next((p for p in problems if "architecture" in p), None)
    has_rootfs = bool(layout.trace_image) or (layout.rootfs.is_dir() and any(
        layout.rootfs.iterdir())) or (layout.bag_dir / LISTING).is_file()

    def container(mode: str, has_it: bool, what: str) -> ModeCheck:
        if not has_it:
            return ModeCheck(mode, False, f"the bundle has no {what.removeprefix('a ')}")
        if not engine_ok:
            return ModeCheck(mode, False, engine_reason)
        if arch_problem:
            return ModeCheck(mode, False, arch_problem)
        return ModeCheck(mode, True, f"the bundle carries {what} and the Docker daemon answers")

    checks.append(container("image", layout.image_tar.is_file(), "a saved image"))
    rebuild = container("rebuild", layout.dockerfile.is_file(),
                        "a Dockerfile with vendored packages")
    if rebuild.possible:
        base = dockerfile_base(layout.dockerfile)
        if base and not _image_here(base):
            rebuild = ModeCheck("rebuild", False,
                                f"its base image {base} is not on this machine (rebuilds are offline)")
    checks.append(rebuild)
    checks.append(container("trace", has_rootfs, "the traced files"))
    if not has_rootfs:
        checks.append(ModeCheck("directory", False, "the bundle has no traced files"))
    elif platform.system() != "Linux":
        checks.append(ModeCheck("directory", False, "it runs only on Linux"))
    elif problems:
        checks.append(ModeCheck("directory", False, "; ".join(problems)))
    else:
        checks.append(ModeCheck("directory", True,
                                "it needs no container engine (runs the traced files here)"))
    return checks


def _image_here(ref: str) -> bool:
    from .runners import connect_engine

    engine = connect_engine()
    try:
        return engine.image_exists(ref)
    finally:
        engine.close()


def host_problems(layout: BagLayout) -> list[str]:
    """Reasons the recorded environment cannot run on this machine at all."""
    problems = []
    here = _normal_arch(platform.machine())
    recorded = {_normal_arch(r.get("host", {}).get("architecture", "")) for r in layout.runs}
    recorded.discard("")
    if recorded and here not in recorded:
        problems.append(f"the run was recorded on the {', '.join(sorted(recorded))} CPU "
                        f"architecture and this machine is {here}")
    libc = next((p for p in layout.rootfs.glob("**/libc.so.6")), None) \
        if layout.rootfs.is_dir() else None
    if libc is not None and platform.system() == "Linux":
        needed = elfinfo.minimum_kernel(libc)
        have = _kernel_version()
        if needed and have and have < needed:
            problems.append(f"the traced C library needs Linux {'.'.join(map(str, needed))} "
                            f"or newer and this kernel is {platform.release()}")
    return problems


def _normal_arch(name: str) -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(name.lower(), name.lower())


def _kernel_version() -> tuple[int, int, int] | None:
    import re

    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", platform.release())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def choose_mode(layout: BagLayout, requested: str) -> tuple[str, str]:
    """(mode, reason). ``auto`` picks image > rebuild > trace > directory."""
    if requested not in MODES:
        raise UsageError(f"Unknown replay mode {requested!r}.",
                         f"Choose one of: {', '.join(MODES)}.")
    checks = {c.mode: c for c in check_modes(layout)}
    if requested != "auto":
        check = checks[requested]
        if not check.possible:
            raise _cannot_run(f"The {requested} mode cannot run here: {check.reason}.", checks)
        return requested, check.reason
    for mode in AUTO_ORDER:
        if checks[mode].possible:
            skipped = [f"{m}: {checks[m].reason}" for m in AUTO_ORDER[:AUTO_ORDER.index(mode)]]
            reason = f"auto chose {mode}: {checks[mode].reason}"
            if skipped:
                reason += " (not " + "; not ".join(skipped) + ")"
            return mode, reason
    raise _cannot_run("No replay mode can run this bundle here.", checks)


def _cannot_run(sentence: str, checks: dict[str, ModeCheck]) -> StudypackError:
    lines = "; ".join(f"{c.mode}: {c.reason}" for c in checks.values())
    possible = [c.mode for c in checks.values() if c.possible]
    hint = f"Modes here — {lines}."
    if possible:
        hint += f" Try --mode {possible[0]}."
    error = EngineError if "Docker" in lines or "daemon" in lines else UsageError
    return error(sentence, hint)


# ------------------------------------------------------------------------ replay

def replay_bundle(bundle_or_dir, *, mode: str = "auto", workdir=None, keep=False,
                  network: bool = False, inputs: dict[str, Path] | None = None,
                  args_override: list[str] | None = None, report: Reporter | None = None,
                  cancel: CancelToken | None = None) -> ReplayResult:
    """Replay a bundle (a ``.studypack`` file or an unpacked bag folder).

    ``keep`` may be a folder (the work folder to keep) or True (keep ``workdir``).
    ``inputs`` maps an input's path in the study (or its unique file name) to a file of
    your own; ``args_override`` changes the command's arguments. With either, outputs
    are listed, not compared.
    """
    report, cancel = reporter(report), token(cancel)
    source = Path(bundle_or_dir).expanduser()
    if isinstance(keep, (str, os.PathLike)):
        workdir, keep = Path(keep), True
    work = _make_workdir(workdir)
    kept = bool(keep)
    try:
        cancel.check()
        if source.is_dir():
            bag_dir = find_bag(source)
        elif source.is_file():
            report(Progress("verify", 0, None, f"verifying and unpacking {source.name}"))
            bag_dir, reuse_image = _unpack_for(mode, source, work, report, cancel)
        else:
            raise UsageError(f"{source} does not exist.")
        layout = load_layout(bag_dir)
        layout.trace_image = reuse_image if source.is_file() else None
        chosen, reason = choose_mode(layout, mode)
        report(Progress("replay", 0, None, f"mode {chosen}: {reason}"))
        # Traced files stored once, in their package, for the modes that read them from
        # disk (and the study folder, made next, from those under the study root).
        rebuild_files(layout.bag_dir, references_needed(layout.bag_dir, chosen,
                                                        layout.original_root,
                                                        bool(layout.trace_image)),
                      layout.rootfs, report, cancel)
        notes = list(layout.notes) + fetch_references(layout, report, cancel)
        study_dir = make_study_dir(layout, work / "study", cancel)
        reuse = bool(inputs) or bool(args_override)
        if inputs:
            notes += apply_inputs(layout, study_dir, inputs)
        plans = _plans(layout, study_dir, args_override)
        if args_override:
            notes.append("arguments changed: " + " | ".join(
                " ".join(p.argv) for p in plans))
        runner = _runner(chosen, layout, work, network=network)
        result = ReplayResult(mode=chosen, mode_reason=reason, compared=not reuse,
                              bundle=source.name, study=layout.study_name, notes=notes)
        try:
            runner.prepare(report, cancel)
            for plan in plans:
                cancel.check()
                report(Progress("run", 0, None,
                                f"run {plan.index}/{len(plans)}: {' '.join(plan.argv)}"))
                outcome = runner.run(plan, report, cancel)
                outcome.recorded_exit_code = layout.run_exit_code(plan.index)
                result.runs.append(outcome)
                if outcome.failed:
                    result.failed_run = outcome
                    break
        finally:
            runner.close()
            result.notes += runner.notes
        cancel.check()
        report(Progress("compare", 0, None, "comparing the outputs"))
        if reuse:
            result.outputs = list_outputs(study_dir, layout.output_paths)
        else:
            spec = layout.spec
            result.outputs = compare_outputs(
                layout.outputs, study_dir, layout.output_paths,
                rules=spec.compare_rules if spec else (),
                rel_tol=spec.compare_rel_tol if spec else None,
                abs_tol=spec.compare_abs_tol if spec else None)
        if kept:
            result.workdir, result.expected_dir, result.actual_dir = work, layout.outputs, study_dir
        report(Progress("compare", 1, 1, "done"))
        return result
    finally:
        if not kept:
            shutil.rmtree(work, ignore_errors=True)


def run_failure(result: ReplayResult) -> RunFailedError | None:
    """The error to raise after showing the report, when a recorded run failed."""
    run = result.failed_run
    if run is None:
        return None
    tail = run.stderr.strip()[-400:].replace("\n", " ⏎ ")
    return RunFailedError(
        f"Run {run.index} (`{' '.join(run.command)}`) exited with code {run.exit_code} in the "
        f"{result.mode} mode, where the original run exited with {run.recorded_exit_code}."
        + (f" Its last error output: {tail}" if tail else ""),
        "Another --mode may work; --keep DIR keeps the work folder to look into.")


def _make_workdir(workdir) -> Path:
    if workdir is None:
        return make_work_dir("replay")  # also sweeps the work folders of killed replays
    work = Path(workdir).expanduser()
    if work.exists() and any(work.iterdir()):
        raise UsageError(f"{work} is not empty; a replay never writes over your files.",
                         "Choose a new or empty folder for --keep.")
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(work, exc) from None
    return work


def find_bag(folder: Path) -> Path:
    """An unpacked bag: the folder itself, or its only sub-folder holding bagit.txt."""
    if (folder / fmt.BAGIT_TXT).is_file():
        return folder
    bags = [p for p in folder.iterdir() if (p / fmt.BAGIT_TXT).is_file()] if folder.is_dir() else []
    if len(bags) == 1:
        return bags[0]
    raise UsageError(f"{folder} is neither a .studypack bundle nor an unpacked one.",
                     "Give the .studypack file, or the folder `studypack unpack` made.")


def _plans(layout: BagLayout, study_dir: Path, args_override) -> list[RunPlan]:
    plans = []
    for run in layout.runs:
        plans.append(RunPlan(
            index=run["index"], argv=list(run["command"]), executable=run.get("executable"),
            workdir=run.get("workdir", "."), environment=dict(run.get("environment") or {}),
            study_dir=study_dir, original_root=layout.original_root))
    if args_override:
        apply_arguments(plans, list(args_override))
    return plans


def _unpack_for(mode: str, source: Path, work: Path, report: Reporter,
                cancel: CancelToken) -> tuple[Path, str | None]:
    """Unpack, verifying everything but writing only what ``mode`` reads: trace mode
    whose image was imported by an earlier replay of the same traced files writes
    neither the traced files nor the packages. Returns the bag and that image."""
    from ..bundle.reader import read_info, unpack
    from .cache import check_claimed_digest, claimed_digest, unpack_skip

    reuse_image = None
    metadata = read_info(source).metadata if mode != "auto" else {}
    if mode == "trace" and claimed_digest(metadata) and engine_available()[0]:
        reuse_image = TraceRunner.image_for(claimed_digest(metadata))
    skip = unpack_skip(mode, metadata, trace_image_here=reuse_image is not None)
    bag_dir = unpack(source, work / "bag", report=report, cancel=cancel, skip=skip).bag_dir
    if reuse_image:
        check_claimed_digest(bag_dir, metadata)
    return bag_dir, reuse_image


def _runner(mode: str, layout: BagLayout, work: Path, *, network: bool) -> Runner:
    if mode == "image":
        return ImageRunner(layout.bag_dir, network=network)
    if mode == "rebuild":
        return RebuildRunner(layout.bag_dir, network=network)
    if mode == "trace":
        return TraceRunner(layout.bag_dir, layout.rootfs, work, network=network,
                           image=layout.trace_image)
    if mode == "directory":
        return DirectoryRunner(layout.rootfs, network=network)
    raise UsageError(f"Unknown replay mode {mode!r}.")
