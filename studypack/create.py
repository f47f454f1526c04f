"""``studypack create``: trace the study's run, capture its environment, pack a bundle.

The steps are separate functions so the wizard can call them page by page:
:func:`studypack.trace.trace_study`, :func:`plan_bundle` (pure: what goes where) and
:func:`studypack.bundle.writer.pack`. :func:`create_bundle` chains them.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .bundle import format as fmt
from .bundle.portable import portability_warnings
from .bundle import metadata as md
from .bundle.writer import Member, PackPlan, pack
from .collect import StudyFile, collect_study
from .errors import UsageError
from .fsutil import make_work_dir, utc_now_iso
from .hostinfo import git_state, host_facts
from .progress import CancelToken, Reporter, reporter, token
from .secrets import Scrubber
from .spec import StudySpec, load_spec, spec_to_toml
from .trace import TraceResult, trace_study


@dataclass
class CreateOptions:
    allow_failure: bool = False
    trace: bool = True                 # False: pack the study as it is, with no run
    build_image: bool | None = None    # None: build when a Docker daemon answers
    save_image: bool = False
    base_image: str | None = None
    level: int = 3
    overwrite: bool = False


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


@dataclass
class EnvironmentPart:
    """What the environment step adds to a bundle (see studypack.environment)."""

    metadata: dict = field(default_factory=dict)
    files_dir: Path | None = None
    image_tar: Path | None = None
    messages: list[str] = field(default_factory=list)


def default_output(spec: StudySpec) -> Path:
    return Path.cwd() / f"{spec.study.name}{fmt.EXTENSION}"


def create_bundle(spec_path: str | os.PathLike, out_path: str | os.PathLike | None = None,
                  options: CreateOptions | None = None, report: Reporter | None = None,
                  cancel: CancelToken | None = None) -> CreateResult:
    options = options or CreateOptions()
    report, cancel = reporter(report), token(cancel)
    spec = load_spec(spec_path)
    out = Path(out_path) if out_path else default_output(spec)
    if out.exists() and not options.overwrite:
        raise UsageError(f"{out} already exists; it was left as it is.",
                         "Choose another name with -o, or pass --force to replace it.")
    if out.resolve().is_relative_to(spec.root) and out.suffix != fmt.EXTENSION:
        raise UsageError(f"The bundle would be written inside the study as {out.name}.",
                         f"Name it *{fmt.EXTENSION} or write it outside the study folder.")
    work = make_work_dir("create")  # also sweeps the scratch folders of killed runs
    try:
        scrubber = Scrubber(allow=set(spec.environment.allow_env))
        traced = None
        if options.trace:
            traced = trace_study(spec, work, scrubber, allow_failure=options.allow_failure,
                                 report=report, cancel=cancel)
        cancel.check()
        environment = capture_environment_part(spec, traced, work, options, report, cancel)
        cancel.check()
        plan, warnings = plan_bundle(spec, traced, environment, scrubber,
                                     started=traced.runs[0].started_at if traced else None)
        result = pack(plan, out, level=options.level, overwrite=options.overwrite,
                      report=report, cancel=cancel)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    messages = list(environment.messages) + scrubber.summary()
    if traced and traced.skipped_secret_files:
        messages.append("left out files the run read that hold credentials: "
                        + ", ".join(traced.skipped_secret_files))
    return CreateResult(result.path, result.sha256, result.size, result.files,
                        result.payload_bytes, messages, sorted(scrubber.dropped), warnings,
                        environment.metadata)


def capture_environment_part(spec: StudySpec, traced: TraceResult | None, work: Path,
                             options: CreateOptions, report: Reporter,
                             cancel: CancelToken) -> EnvironmentPart:
    """Lock, vendor and (optionally) build the environment of the traced interpreter.

    ENVIRONMENT HOOK: studypack.environment.capture_environment does the work.
    """
    try:
        from .environment import capture_environment
    except ImportError:
        return EnvironmentPart(metadata={"kind": "not captured"},
                               messages=["the software environment was not captured "
                                         "(this studypack has no environment module)"])
    executable = traced.runs[0].executable if traced else None
    capture = capture_environment(
        executable, spec, work / "env", base_image=options.base_image,
        build_image=options.build_image, save_image=options.save_image,
        packages=traced.packages if traced else [], report=report, cancel=cancel)
    return EnvironmentPart(capture.metadata, capture.files_dir, capture.image_tar,
                           list(capture.messages))


def plan_bundle(spec: StudySpec, traced: TraceResult | None, environment: EnvironmentPart,
                scrubber: Scrubber, started: str | None = None) -> tuple[PackPlan, list[str]]:
    """Decide what goes where in the bag. Reads file sizes; writes nothing."""
    warnings: list[str] = []
    created = utc_now_iso()
    failed = bool(traced) and any(r.exit_code != 0 for r in traced.runs)
    inputs, outputs = collect_study(spec, missing_outputs_ok=failed)
    if traced and started:
        t0 = time.mktime(time.strptime(started, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        stale = [f.relpath for f in outputs if f.path.stat().st_mtime < t0 - 1]
        if stale:
            warnings.append(f"{len(stale)} output file(s) were not written by the traced run "
                            f"(e.g. {stale[0]}); they are packed as they are")
    if spec.output_paths and not outputs:
        warnings.append("the run produced no file under [outputs] paths: nothing to compare")

    payload: list[Member] = []
    run_docs: list[dict] = []
    git = None
    if traced:
        git, diff = git_state(spec.root, scrubber)
        host = host_facts()
        for record in traced.runs:
            record.host, record.git = host, git
            doc = record.to_json()
            run_docs.append(doc)
            base = f"{fmt.RUNS_DIR}/{record.index}"
            payload.append(Member.from_bytes(f"{base}/run.json", md.dumps(doc)))
            payload.append(Member.from_file(f"{base}/stdout.txt", record.stdout_file))
            payload.append(Member.from_file(f"{base}/stderr.txt", record.stderr_file))
            if diff and record.index == 1:
                payload.append(Member.from_bytes(f"{base}/git.diff", diff.encode("utf-8")))
        payload.append(Member.from_file(f"{fmt.TRACE_DIR}/config.yml",
                                        traced.trace_dir / "config.yml"))
        payload.append(Member.from_file(f"{fmt.TRACE_DIR}/trace.sqlite3",
                                        traced.trace_dir / "trace.sqlite3"))
        rootfs, links = _rootfs_members(traced.files)
        from .replay.envdiff import network_hint
        warnings += network_hint(traced.trace_dir / "trace.sqlite3")
        payload.append(Member.from_bytes(fmt.SYMLINKS, md.dumps({"symlinks": links})))
    else:
        rootfs = []

    if not traced:  # learn the secrets typed into the commands (a trace did it otherwise)
        for step in spec.runs:
            scrubber.scrub_argv(list(step.command))
    payload += [_spec_file_scrubbed(spec, f, scrubber) or _study_member(fmt.STUDY_DIR, f)
                for f in inputs]
    payload += [_study_member(fmt.OUTPUTS_DIR, f) for f in outputs]
    payload += rootfs
    env_members = []
    if environment.files_dir and environment.files_dir.is_dir():
        for path in sorted(p for p in environment.files_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(environment.files_dir).as_posix()
            env_members.append(Member.from_file(f"{fmt.ENV_DIR}/{rel}", path))
    payload += env_members
    if environment.image_tar:
        payload.append(Member.from_file(fmt.IMAGE_TAR, environment.image_tar))

    input_names = [f.relpath for f in inputs]
    output_names = [f.relpath for f in outputs]
    spec_text = scrubber.scrub_text(spec_to_toml(spec)).encode("utf-8")
    crate = md.ro_crate(spec, runs=run_docs, inputs=input_names, outputs=output_names,
                        created=created)
    head = [
        Member.from_bytes(fmt.RO_CRATE, md.dumps(crate)),
        Member.from_bytes(fmt.REPLAY_MD, md.replay_md(spec, run_docs, spec.study.name).encode()),
        Member.from_bytes(fmt.REPLAY_SH, md.replay_sh(spec, run_docs).encode(), mode=0o755),
        Member.from_bytes(fmt.SPEC_COPY, spec_text),
    ]
    payload = head + payload

    def role_count(members, prefix):
        chosen = [m for m in members if m.arcname.startswith(prefix + "/")]
        return {"files": len(chosen), "bytes": sum(m.size for m in chosen)}

    counts = {
        "code": {"files": sum(f.role == "code" for f in inputs),
                 "bytes": sum(f.size for f in inputs if f.role == "code")},
        "data": {"files": sum(f.role == "data" for f in inputs),
                 "bytes": sum(f.size for f in inputs if f.role == "data")},
        "outputs": role_count(payload, fmt.OUTPUTS_DIR),
        "rootfs": role_count(payload, fmt.ROOTFS_DIR),
        "env": role_count(payload, fmt.ENV_DIR),
        "image": role_count(payload, "data/image"),
        "payload": {"files": len(payload) + len(spec.data_references),
                    "bytes": sum(m.size for m in payload)
                    + sum(r.size for r in spec.data_references)},
        "referenced": {"files": len(spec.data_references),
                       "bytes": sum(r.size for r in spec.data_references)},
    }
    runs_summary = [{k: d[k] for k in ("index", "command", "workdir", "exit_code",
                                       "started_at", "finished_at", "duration_s")}
                    | {"host": {k: d["host"].get(k) for k in ("os", "kernel", "architecture",
                                                              "cpu", "hostname", "user")},
                       "git": d["git"]}
                    for d in run_docs]
    warnings += portability_warnings(
        spec.study.name, [m.arcname for m in payload]
        + [f"{fmt.STUDY_DIR}/{r.path}" for r in spec.data_references])
    meta = md.metadata_json(spec, runs=runs_summary, inputs=input_names, outputs=output_names,
                            counts=counts, environment=environment.metadata,
                            secrets_dropped=sorted(scrubber.dropped), created=created,
                            warnings=warnings)
    plan = PackPlan(
        bag_name=spec.study.name, bag_info=md.bag_info_labels(spec), metadata=md.dumps(meta),
        fetch=[(r.url, r.size, f"{fmt.STUDY_DIR}/{r.path}", r.sha256)
               for r in spec.data_references],
        payload=payload)
    return plan, warnings


def _spec_file_scrubbed(spec: StudySpec, f: StudyFile, scrubber: Scrubber) -> Member | None:
    """The study's own studypack.toml may hold a token typed into its command line: it
    is packed scrubbed, like the copy at data/studypack.toml."""
    if spec.path is None or f.path.resolve() != spec.path.resolve():
        return None
    return Member.from_bytes(f"{fmt.STUDY_DIR}/{f.relpath}",
                             scrubber.scrub_bytes(f.path.read_bytes()))


def _study_member(prefix: str, f: StudyFile) -> Member:
    return Member.from_file(f"{prefix}/{f.relpath}", f.path)


def _rootfs_members(files: list[Path]) -> tuple[list[Member], list[dict]]:
    """Regular files become members; symlinks are listed (relative targets), since a
    bundle never contains links; their targets are packed as files."""
    members: dict[str, Member] = {}
    links: list[dict] = []
    for path in files:
        if path.is_symlink():
            real = Path(os.path.realpath(path))
            if real.is_dir():  # /lib64 -> usr/lib64: the loader's path goes through it
                links.append({"path": str(path),
                              "target": os.path.relpath(real, start=path.parent)})
                continue
            if not real.is_file():
                continue
            links.append({"path": str(path),
                          "target": os.path.relpath(real, start=path.parent)})
            path = real
        arc = f"{fmt.ROOTFS_DIR}/{path.as_posix().lstrip('/')}"
        if arc not in members and path.is_file():
            try:
                members[arc] = Member.from_file(arc, path)
            except OSError:
                continue
    return [members[k] for k in sorted(members)], links
