"""What goes where in the bag: the layout of a bundle, computed without writing.

:func:`plan_bundle` turns the study's files, the traced run and the environment into a
:class:`~studypack.bundle.writer.PackPlan` that :func:`studypack.bundle.writer.pack`
writes. The create session (:mod:`studypack.create.session`) calls it in its pack step
and the wizard shows it on its Review page.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..bundle import format as fmt
from ..bundle import metadata as md
from ..bundle.portable import portability_warnings
from ..bundle.writer import Member, PackPlan
from ..collect import StudyFile, StudyReview, is_glob, matches, review_study
from ..fsutil import utc_now_iso
from ..hostinfo import git_state, host_facts
from ..secrets import Scrubber
from ..spec import StudySpec, spec_to_toml
from ..trace import TraceResult


@dataclass
class EnvironmentPart:
    """What the environment step adds to a bundle (see studypack.environment)."""

    metadata: dict = field(default_factory=dict)
    files_dir: Path | None = None
    image_tar: Path | None = None
    messages: list[str] = field(default_factory=list)
    dockerfile: str | None = None      # the rendered text, shown on request
    details: list[str] = field(default_factory=list)   # item by item (create -v)


def plan_bundle(spec: StudySpec, traced: TraceResult | None, environment: EnvironmentPart,
                scrubber: Scrubber, started: str | None = None,
                review: StudyReview | None = None,
                hashed=None) -> tuple[PackPlan, list[str]]:
    """Decide what goes where in the bag. Reads file sizes; writes nothing. ``hashed``:
    the traced files' digests computed earlier (:class:`studypack.storeonce.TracedHashes`)."""
    warnings: list[str] = []
    created = utc_now_iso()
    failed = bool(traced) and any(r.exit_code != 0 for r in traced.runs)
    if review is None:
        review = review_study(spec, outputs_expected=not failed)
    inputs, outputs = list(review.inputs), list(review.outputs)
    if traced and started:
        # A file under [outputs] the run did not write (an older result the run left
        # alone) is part of the study as it was, not a result to compare at replay.
        t0 = time.mktime(time.strptime(started, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        stale = [f for f in outputs if (f.stat or f.path.stat()).st_mtime < t0 - 1]
        if stale:
            outputs = [f for f in outputs if f not in stale]
            inputs += [StudyFile(f.relpath, f.path, f.size, "data", f.stat) for f in stale]
            warnings.append(f"{len(stale)} file(s) under [outputs] paths were not written by "
                            f"the traced run (e.g. {stale[0].relpath}); they are packed with "
                            "the study, not compared at replay")
    if spec.output_paths and not outputs:
        warnings.append("the run produced no file under [outputs] paths: nothing to compare")
    for pattern in spec.output_paths:
        if is_glob(pattern) and outputs and not any(matches(f.relpath, [pattern])
                                                    for f in outputs):
            warnings.append(f"no output matches the [outputs] pattern {pattern!r}")

    payload: list[Member] = []
    run_docs: list[dict] = []
    git = None
    if traced:
        git, diff = git_state(spec.root, scrubber, read=traced.opened)
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
        unreadable: list[str] = []
        rootfs, links = _rootfs_members(traced.files, unreadable)
        if unreadable:
            warnings.append(f"{len(unreadable)} file(s) the run read are gone or cannot be "
                            "read now, so they are not in the bundle: "
                            + ", ".join(unreadable[:5]) + (" …" if len(unreadable) > 5 else ""))
        from ..tracehints import network_hint
        warnings += network_hint(traced.trace_dir / "trace.sqlite3")
        payload.append(Member.from_bytes(fmt.SYMLINKS, md.dumps({"symlinks": links})))
    else:
        rootfs, links = [], []

    if not traced:  # learn the secrets typed into the commands (a trace did it otherwise)
        for step in spec.runs:
            scrubber.scrub_argv(list(step.command))
    payload += study_members(spec, inputs, scrubber)
    payload += [_study_member(fmt.OUTPUTS_DIR, f) for f in outputs]
    env_members = []
    if environment.files_dir and environment.files_dir.is_dir():
        for path in sorted(p for p in environment.files_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(environment.files_dir).as_posix()
            env_members.append(Member.from_file(f"{fmt.ENV_DIR}/{rel}", path))
    traced_files = None
    if traced:  # a traced file a vendored package reproduces is stored once, in the package
        from ..storeonce import plan_store_once
        once = plan_store_once(rootfs, md.dumps({"symlinks": links}), env_members,
                               hashed=hashed)
        rootfs, traced_files = once.stored, {**once.metadata(), "study_root": str(spec.root)}
        if once.listing is not None:
            payload.append(once.listing)
    payload += rootfs
    payload += env_members
    if environment.image_tar:
        payload.append(Member.from_file(fmt.IMAGE_TAR, environment.image_tar))

    input_names = [f.relpath for f in inputs]
    output_names = [f.relpath for f in outputs]
    spec_text = scrubber.scrub_text(spec_to_toml(spec)).encode("utf-8")
    crate = md.ro_crate(spec, runs=run_docs, inputs=input_names, outputs=output_names,
                        created=created, environment=environment.metadata)
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
    warnings += spec.study.name_warnings()   # a citation would get these names wrong
    meta = md.metadata_json(spec, runs=runs_summary, inputs=input_names, outputs=output_names,
                            counts=counts, environment=environment.metadata,
                            secrets_dropped=sorted(scrubber.dropped), created=created,
                            warnings=warnings)
    if traced_files:
        meta["traced_files"] = traced_files
    # Nothing is left out in silence, and a link packed by its content stays known.
    meta["left_out"] = [{"path": item.path, "reason": item.reason} for item in review.left_out]
    meta["study_links"] = [link.to_json() for link in review.links]
    plan = PackPlan(
        bag_name=spec.study.name, bag_info=md.bag_info_labels(spec), metadata=md.dumps(meta),
        fetch=[(r.url, r.size, f"{fmt.STUDY_DIR}/{r.path}", r.sha256)
               for r in spec.data_references],
        payload=payload)
    return plan, warnings


def study_members(spec: StudySpec, inputs: list[StudyFile], scrubber: Scrubber
                  ) -> list[Member]:
    """The study's code and data as members under data/study/, in the bundle's order
    (the create session prepacks them during the run, in the same order). The walk's stat
    of each file rules out the study's own studypack.toml and gives the member's facts."""
    spec_file = spec.path.resolve() if spec.path is not None else None
    try:
        own = spec_file.stat() if spec_file is not None else None
    except OSError:
        own = None
    members = []
    for f in inputs:
        try:
            st = f.stat or f.path.stat()   # the walk's, when it gave one
        except OSError:
            st = None
        maybe_spec = spec_file is not None and (
            st is None or own is None or (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino))
        if maybe_spec and f.path.resolve() == spec_file:
            # it may hold a token typed into its command line: packed scrubbed, like
            # the copy at data/studypack.toml
            members.append(Member.from_bytes(f"{fmt.STUDY_DIR}/{f.relpath}",
                                             scrubber.scrub_bytes(f.path.read_bytes())))
        elif st is not None:
            members.append(Member.from_stat(f"{fmt.STUDY_DIR}/{f.relpath}", f.path, st))
        else:
            members.append(_study_member(fmt.STUDY_DIR, f))   # says why it cannot be read
    return members


def _study_member(prefix: str, f: StudyFile) -> Member:
    if f.stat is not None:
        return Member.from_stat(f"{prefix}/{f.relpath}", f.path, f.stat)
    return Member.from_file(f"{prefix}/{f.relpath}", f.path)


def _rootfs_members(files: list[Path], unreadable: list[str] | None = None
                    ) -> tuple[list[Member], list[dict]]:
    """Regular files become members; symlinks are listed (relative targets), since a
    bundle never contains links; their targets are packed as files. A traced file that
    is gone or cannot be read is added to ``unreadable``, to be said."""
    members: dict[str, Member] = {}
    links: list[dict] = []
    unreadable = unreadable if unreadable is not None else []
    for path in files:
        if path.is_symlink():
            real = Path(os.path.realpath(path))
            if real.is_dir():  # /lib64 -> usr/lib64: the loader's path goes through it
                links.append({"path": str(path),
                              "target": os.path.relpath(real, start=path.parent)})
                continue
            if not real.is_file():
                unreadable.append(str(path))
                continue
            links.append({"path": str(path),
                          "target": os.path.relpath(real, start=path.parent)})
            path = real
        arc = f"{fmt.ROOTFS_DIR}/{path.as_posix().lstrip('/')}"
        if arc not in members and path.is_file():
            try:
                members[arc] = Member.from_file(arc, path)
            except OSError:
                unreadable.append(str(path))
        elif not path.is_file():
            unreadable.append(str(path))
    return [members[k] for k in sorted(members)], links
