"""Replay a received bundle: verify and unpack it, recreate the study folder, run the
recorded command(s) in order in the chosen environment, and compare every output with
the original run's.

``replay_bundle`` is the one entry point, used by ``studypack replay`` and the GUI.
The modes (one module each: image, rebuild, trace, sandbox, directory) are listed in
:mod:`.registry`; the comparison is in :mod:`.compare` (formats in :mod:`.formats`), why
an output differs in :mod:`.causes` and :mod:`.envdiff`, the rendering in :mod:`.report`.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import envdiff
from ..bundle import format as fmt
from .causes import assign_causes, needs_repeat
from .compare import (OutputResult, all_reproduced, compare_outputs, list_outputs,
                      rule_warnings, snapshot_outputs)
from ..errors import Cancelled, RunFailedError, StudypackError, UsageError, write_error
from ..fsutil import make_work_dir
from ..progress import CancelToken, Progress, Reporter, reporter, token
from . import registry
from .runners import RunOutcome, RunPlan, Runner
from .registry import mode_names
from ..storeonce import rebuild_files
from ..tracehints import trace_hints
from .cache import references_needed
from .pictures import difference_pictures
from .rebuild_ahead import RebuildAhead
from .study import (BagLayout, apply_arguments, apply_inputs, fetch_references,
                           load_layout, make_study_dir)

MODES = tuple(mode_names())     # auto first, then the registry's order


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
    replays: int = 1                   # how many times the runs were replayed
    environment_diff: list[dict] | None = None   # None: not examined (all reproduced)
    hints: list[str] = field(default_factory=list)   # from the trace
    source_date_epoch: int | None = None
    network: bool = False
    pictures: dict = field(default_factory=dict)    # differing images, for the HTML page

    @property
    def reproduced(self) -> bool:
        return self.compared and self.failed_run is None and all_reproduced(self.outputs)

    def to_dict(self) -> dict:
        from .report import report_dict
        return report_dict(self)


def choose_mode(layout: BagLayout, requested: str,
                host: registry.Host | None = None) -> tuple[str, str]:
    """(mode, reason) for an unpacked bundle: see :mod:`studypack.replay.registry`."""
    return registry.choose_mode(registry.BundleFacts.from_layout(layout), requested, host)


# ------------------------------------------------------------------------ replay

def replay_bundle(bundle_or_dir, *, mode: str = "auto", workdir=None, keep=False,
                  network: bool = False, inputs: dict[str, Path] | None = None,
                  args_override: list[str] | None = None, repeat: int | None = None,
                  report: Reporter | None = None,
                  cancel: CancelToken | None = None) -> ReplayResult:
    """Replay a bundle (a ``.studypack`` file or an unpacked bag folder).

    ``keep`` may be a folder (the work folder to keep) or True (keep ``workdir``).
    ``inputs`` maps an input's path in the study (or its unique file name) to a file of
    your own; ``args_override`` changes the command's arguments. With either, outputs
    are listed, not compared. ``repeat`` is the number of replays (None: a second one
    only when some output differs), which tells a nondeterministic study from a
    changed environment (:mod:`studypack.replay.causes`).
    """
    report, cancel = reporter(report), token(cancel)
    if repeat is not None and repeat < 1:
        raise UsageError(f"A replay runs at least once; {repeat} replays were asked for.",
                         "Ask for 1 replay or more.")
    source = Path(bundle_or_dir).expanduser()
    if isinstance(keep, (str, os.PathLike)):
        workdir, keep = Path(keep), True
    if mode not in MODES:
        registry.runner_class(mode)     # raises: unknown mode, with the known ones
    work = _make_workdir(workdir)
    kept = bool(keep)
    unpacked, layout = _Unpacked(), None
    host = registry.Host()      # asked once (Docker, bubblewrap), before and after the unpack
    try:
        cancel.check()
        if source.is_dir():
            unpacked.bag_dir = find_bag(source)
        elif source.is_file():
            report(Progress("verify", 0, None, f"verifying and unpacking {source.name}"))
            unpacked = _unpack_for(mode, source, work, report, cancel, host)
        else:
            raise UsageError(f"{source} does not exist.")
        ahead, kept_rootfs = unpacked.ahead, unpacked.kept
        layout = load_layout(unpacked.bag_dir)
        layout.trace_image, layout.kept_rootfs = unpacked.reuse_image, kept_rootfs
        chosen, reason = choose_mode(layout, mode, host)
        report(Progress("replay", 0, None, f"mode {chosen}: {reason}"))
        # Traced files stored once, in their package, for the modes that read them from
        # disk (and the study folder, made next, from those under the study root); those
        # rebuilt during the unpack are put in place only now, the bundle verified.
        if kept_rootfs is None:
            needed = references_needed(layout.bag_dir, chosen, layout.original_root,
                                       bool(layout.trace_image))
            if ahead is not None and needed:
                ahead.finish(layout.bag_dir, needed, layout.rootfs, report, cancel)
            else:
                rebuild_files(layout.bag_dir, needed, layout.rootfs, report, cancel)
        if ahead is not None:
            ahead.close()
        if unpacked.stream is not None and chosen == "trace" and not layout.trace_image:
            _finish_trace_image(unpacked.stream, layout, cancel)
        notes = list(layout.notes) + fetch_references(layout, report, cancel)
        if source.is_file():
            notes += _keep_rootfs(layout, chosen, move=not kept)
        study_dir = make_study_dir(layout, work / "study", cancel)
        reuse = bool(inputs) or bool(args_override)
        if inputs:
            notes += apply_inputs(layout, study_dir, inputs)
        plans = _plans(layout, study_dir, args_override)
        before = snapshot_outputs(study_dir, layout.output_paths)
        if args_override:
            notes.append("arguments changed: " + " | ".join(
                " ".join(p.argv) for p in plans))
        runner = _runner(chosen, layout, work, network=network)
        result = ReplayResult(mode=chosen, mode_reason=reason, compared=not reuse,
                              bundle=source.name, study=layout.study_name, notes=notes,
                              source_date_epoch=source_date_epoch(layout), network=network)
        try:
            runner.prepare(report, cancel)
            result.runs, result.failed_run = _run_all(runner, layout, plans, report, cancel)
            cancel.check()
            report(Progress("compare", 0, None, "comparing the outputs"))
            if reuse:
                result.outputs = list_outputs(study_dir, layout.output_paths)
            else:
                result.outputs = _compare(layout, layout.outputs, study_dir, before)
                result.pictures = difference_pictures(result.outputs, layout.outputs, study_dir)
                result.notes += rule_warnings(_rules(layout), result.outputs, layout.outputs,
                                              study_dir)
                repeats = _repeat(runner, layout, study_dir, work, result, repeat,
                                  report, cancel)
                assign_causes(result.outputs, repeats, result.failed_run is not None)
                result.replays = 1 + len(repeats)
                if not result.reproduced:      # nothing to explain otherwise
                    _explain(runner, layout, plans[0], result, report, cancel)
        finally:
            runner.close()
            result.notes += runner.notes
        if kept:
            result.workdir, result.expected_dir, result.actual_dir = work, layout.outputs, study_dir
        report(Progress("compare", 1, 1, "done"))
        return result
    finally:
        unpacked.close()
        from .rootfs_cache import release
        release(unpacked.kept)                     # the traced files kept: not in use
        release(layout.kept_rootfs if layout is not None else None)
        if not kept:
            shutil.rmtree(work, ignore_errors=True)


def _run_all(runner: Runner, layout: BagLayout, plans: list[RunPlan], report: Reporter,
             cancel: CancelToken) -> tuple[list[RunOutcome], RunOutcome | None]:
    """Run the recorded commands in order; stop at the first that fails."""
    outcomes = []
    for plan in plans:
        cancel.check()
        report(Progress("run", 0, None, f"run {plan.index}/{len(plans)}: {' '.join(plan.argv)}"))
        outcome = runner.run(plan, report, cancel)
        outcome.recorded_exit_code = layout.run_exit_code(plan.index)
        outcomes.append(outcome)
        if outcome.failed:
            return outcomes, outcome
    return outcomes, None


def _rules(layout: BagLayout):
    return layout.spec.compare_rules if layout.spec else ()


def _compare(layout: BagLayout, expected: Path, actual: Path,
             before: dict[str, str] | None = None) -> list[OutputResult]:
    spec = layout.spec
    return compare_outputs(expected, actual, layout.output_paths, rules=_rules(layout),
                           rel_tol=spec.compare_rel_tol if spec else None,
                           abs_tol=spec.compare_abs_tol if spec else None, before=before)


def _repeat(runner: Runner, layout: BagLayout, first: Path, work: Path, result: ReplayResult,
            repeat: int | None, report: Reporter, cancel: CancelToken) -> list[list[OutputResult]]:
    """Replay again in the same mode, each time in a fresh study folder, and compare each
    replay's outputs with the first replay's."""
    if repeat is None:
        extra = 1 if needs_repeat(result.outputs, result.failed_run is not None) else 0
    else:
        extra = 0 if result.failed_run is not None else repeat - 1
    comparisons = []
    for number in range(2, 2 + extra):
        cancel.check()
        report(Progress("repeat", number - 1, extra, f"replay {number}: is the study "
                        "deterministic?"))
        study = make_study_dir(layout, work / f"study-{number}", cancel)
        runs, failed = _run_all(runner, layout, _plans(layout, study, None), report, cancel)
        if failed is not None:
            result.notes.append(f"replay {number}: run {failed.index} exited with code "
                                f"{failed.exit_code} (the first replay's did not)")
        comparisons.append(_compare(layout, first, study))
    return comparisons


def _explain(runner: Runner, layout: BagLayout, first: RunPlan, result: ReplayResult,
             report: Reporter, cancel: CancelToken) -> None:
    """environment_diff (a probe in the replay's environment) and the trace's hints."""
    trace_db = layout.bag_dir / fmt.TRACE_DIR / "trace.sqlite3"
    result.hints = trace_hints(trace_db)
    plan = _probe_plan(layout, first)
    facts = None
    if plan is not None:
        report(Progress("compare", 0, None, "examining the replay's environment"))
        try:
            outcome = runner.run(plan, report, cancel)
            facts = envdiff.parse_probe(outcome.stdout)
        except StudypackError as exc:
            if isinstance(exc, Cancelled):
                raise
            facts = None
    if facts is None:
        result.notes.append("the replay's environment could not be examined (its Python "
                            "did not run the probe): environment_diff lists only this "
                            "machine's facts")
        facts = envdiff.host_side()
    result.environment_diff = envdiff.environment_diff(
        envdiff.original_facts(layout), facts, packages=not runner.from_traced_files)


def _probe_plan(layout: BagLayout, first: RunPlan) -> RunPlan | None:
    """The first run's plan, running the study's Python with the probe instead."""
    executable = first.executable
    argv0 = first.argv[0]
    if not PurePosixPath(argv0).name.startswith("python"):
        env_python = (layout.metadata.get("environment") or {}).get("executable")
        if not env_python:
            return None
        argv0, executable = "python", env_python
    return RunPlan(index=0, argv=[argv0, "-c", envdiff.PROBE], executable=executable,
                   workdir=first.workdir, environment=dict(first.environment),
                   study_dir=first.study_dir, original_root=first.original_root)


def source_date_epoch(layout: BagLayout) -> int | None:
    """The original run's start, as recorded (or from its start time, for bundles made
    before studypack recorded it)."""
    run = layout.runs[0]
    value = run.get("source_date_epoch") or (run.get("environment") or {}).get(
        "SOURCE_DATE_EPOCH")
    if value is not None and str(value).isdigit():
        return int(value)
    started = run.get("started_at")
    if isinstance(started, str):
        import calendar
        import time
        try:
            return calendar.timegm(time.strptime(started, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            return None
    return None


NETWORK_ERRORS = re.compile(
    r"Network is unreachable|Temporary failure in name resolution|Name or service not known|"
    r"No address associated with hostname|getaddrinfo|Could not resolve host|"
    r"No route to host|Failed to establish a new connection|NameResolutionError|"
    r"urlopen error", re.I)


def run_failure(result: ReplayResult) -> RunFailedError | None:
    """The error to raise after showing the report, when a recorded run failed."""
    run = result.failed_run
    if run is None:
        return None
    tail = run.stderr.strip()[-400:].replace("\n", " ⏎ ")
    looked_up = any("network" in hint for hint in result.hints)
    if not result.network and (NETWORK_ERRORS.search(run.stderr) or looked_up):
        hint = ("The run seems to need the network, which a replay takes away: try again "
                "with --network.")
    else:
        hint = "Another --mode may work; --keep DIR keeps the work folder to look into."
    return RunFailedError(
        f"Run {run.index} (`{' '.join(run.command)}`) exited with code {run.exit_code} in the "
        f"{result.mode} mode, where the original run exited with {run.recorded_exit_code}."
        + (f" Its last error output: {tail}" if tail else ""), hint)


def _make_workdir(workdir) -> Path:
    if workdir is None:
        return make_work_dir("replay")  # also sweeps the work folders of killed replays
    work = Path(workdir).expanduser().absolute()   # the runners start elsewhere (bwrap)
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
    epoch = source_date_epoch(layout)
    if epoch is not None:
        for plan in plans:
            plan.environment["SOURCE_DATE_EPOCH"] = str(epoch)
    if args_override:
        apply_arguments(plans, list(args_override))
    return plans


@dataclass
class _Unpacked:
    """What the unpack for a replay found and started."""
    bag_dir: Path | None = None
    reuse_image: str | None = None       # an image of these traced files, imported before
    kept: Path | None = None             # the traced files, kept by an earlier replay
    ahead: RebuildAhead | None = None    # the files stored once, rebuilt during the unpack
    stream: object = None                # the trace image, imported during the unpack
    metadata: dict = field(default_factory=dict)

    def close(self) -> None:
        for started in (self.ahead, self.stream):
            if started is not None:
                started.close()


def _unpack_for(mode: str, source: Path, work: Path, report: Reporter, cancel: CancelToken,
                host: registry.Host | None = None) -> _Unpacked:
    """Unpack, verifying everything but writing only what ``mode`` reads: trace mode
    whose image was imported by an earlier replay of the same traced files writes
    neither the traced files nor the packages, nor does the sandbox mode whose root an
    earlier replay kept (:mod:`.rootfs_cache`). A mode that will need the files stored
    once rebuilds them during the unpack (:mod:`.rebuild_ahead`); trace mode without an
    image of these traced files imports them during the unpack (:mod:`.trace_stream`):
    both to finish once the bundle is verified."""
    from ..bundle.reader import read_info, unpack
    from . import rootfs_cache
    from .cache import check_claimed_digest, claimed_digest, unpack_skip
    from .runners import engine_available
    from .trace import TraceRunner
    from .trace_stream import LayerStream

    reuse_image = kept = ahead = stream = None
    info = read_info(source)
    metadata = info.metadata
    # auto's choice as the bundle's description predicts it: only for work that is lost,
    # not wrong, when the choice made after the unpack differs (nothing is skipped)
    expected = mode if mode != "auto" else _expected_mode(metadata, host)
    digest = claimed_digest(metadata)
    engine = mode == "trace" and digest and engine_available()[0]
    if engine:
        reuse_image = TraceRunner.image_for(digest)
    if mode in rootfs_cache.CACHED_MODES and digest:
        kept = rootfs_cache.lookup(digest)
    skip = unpack_skip(mode, metadata, trace_image_here=reuse_image is not None,
                       rootfs_kept=kept is not None)
    if kept is None and reuse_image is None and expected in ("trace", "directory", "sandbox"):
        ahead = RebuildAhead(work / "rebuilt", cancel)
    if engine and reuse_image is None:
        stream = LayerStream.start(digest, work / "bag" / info.bag_name / fmt.ROOTFS_DIR)
    _probe_host_early(expected)
    told = [started.written for started in (ahead, stream) if started is not None]
    result = _Unpacked(None, reuse_image, kept, ahead, stream, metadata)
    try:
        bag_dir = unpack(source, work / "bag", report=report, cancel=cancel, skip=skip,
                         on_written=(lambda rel, path: [t(rel, path) for t in told])
                         if told else None).bag_dir
    except BaseException:
        result.close()
        raise
    if reuse_image or kept:
        check_claimed_digest(bag_dir, metadata)
    if kept and rootfs_cache.sources_of(kept) != rootfs_cache.bag_sources(bag_dir):
        # the same files, listed or packaged otherwise: unpack and rebuild (and check) them
        rootfs_cache.release(kept)
        kept = None
        shutil.rmtree(work / "bag", ignore_errors=True)
        bag_dir = unpack(source, work / "bag", report=report, cancel=cancel,
                         skip=unpack_skip(mode, metadata)).bag_dir
    result.bag_dir, result.kept = bag_dir, kept
    return result


def _finish_trace_image(stream, layout: BagLayout, cancel: CancelToken) -> None:
    """The rest of the trace image imported during the unpack, now that the bundle is
    verified and its traced files are complete; named after their digest, checked
    first. When that import failed, trace mode imports them from disk instead."""
    from ..storeonce import read_listing
    from .cache import check_claimed_digest, trace_image_tag
    from .trace import which_busybox

    digest = check_claimed_digest(layout.bag_dir, layout.metadata)   # the image's label
    if digest != stream.digest:
        return
    busybox = which_busybox()
    rebuilt = {ref.file.removeprefix(fmt.ROOTFS_DIR + "/") for ref in read_listing(layout.bag_dir)}
    tag = stream.finish(layout.rootfs, busybox, trace_image_tag(digest, busybox), rebuilt,
                        cancel)
    if tag is not None:
        layout.trace_image, layout.trace_image_made = tag, True


def _expected_mode(metadata: dict, host: registry.Host | None) -> str | None:
    """The mode auto will choose, as far as the bundle's metadata tells (None: none)."""
    try:
        return registry.choose_mode(registry.BundleFacts.from_metadata(metadata), "auto",
                                    host)[0]
    except StudypackError:
        return None


def _probe_host_early(mode: str | None) -> None:
    """Start the host check the mode makes before its run (a bubblewrap or unshare
    probe: a child process, remembered) now, so that it runs during the unpack."""
    if mode == "sandbox":
        from .sandbox import bwrap_problem as probe
    elif mode == "directory":
        from .directory import no_network_prefix as probe
    else:
        return
    import threading

    threading.Thread(target=probe, daemon=True, name="studypack-probe").start()


def _keep_rootfs(layout: BagLayout, mode: str, *, move: bool) -> list[str]:
    """Notes on the traced files kept for the next replay (or reused from the last)."""
    from . import rootfs_cache
    from .cache import check_claimed_digest

    if layout.kept_rootfs is not None:
        return [f"{mode} mode reused the traced files kept in {layout.kept_rootfs.parent} "
                "by an earlier replay of the same traced files (same digest); the bundle "
                "was still verified"]
    if mode not in rootfs_cache.CACHED_MODES or not layout.rootfs.is_dir():
        return []
    digest = check_claimed_digest(layout.bag_dir, layout.metadata)
    kept = rootfs_cache.keep(layout.rootfs, digest, layout.original_root, move=move,
                             sources=rootfs_cache.bag_sources(layout.bag_dir))
    if kept is None:
        return []
    layout.kept_rootfs = kept
    return [f"{mode} mode kept the traced files in {kept.parent}; a later replay of the "
            "same traced files reuses them (the newest "
            f"{rootfs_cache.KEEP} are kept there)"]


def _runner(mode: str, layout: BagLayout, work: Path, *, network: bool) -> Runner:
    return registry.runner_class(mode).for_replay(layout, work, network=network)
