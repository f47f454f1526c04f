"""ReproZip packs (``.rpz``) in and out.

An ``.rpz`` (format 2, as ``reprozip pack`` writes it) is a plain tar holding
``METADATA/version`` ("REPROZIP VERSION 2"), ``METADATA/config.yml`` (canonical: no
``additional_patterns``), ``METADATA/trace.sqlite3`` and ``DATA.tar.gz``, whose members
are the traced files under ``DATA/`` at their absolute paths, with every parent folder.

:func:`export_rpz` writes one from a bundle (the traced files of ``data/rootfs``, the
study's own files put back at the folder where it was traced) with ReproZip's own
canonical config writer. :func:`import_rpz` makes a bundle from one: its trace, files
and runs, scrubbed of secrets like any traced run.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from .bundle import format as fmt
from .errors import BundleError, UsageError
from .fsutil import atomic_output
from .progress import Progress, reporter, token

VERSION_LINE = b"REPROZIP VERSION 2\n"
MAX_MEMBERS = 1_000_000


@dataclass
class ExportResult:
    path: Path
    files: int
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ export

def export_rpz(bundle: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False,
               report=None, cancel=None) -> ExportResult:
    """Write the ReproZip pack of ``bundle`` to ``out``."""
    try:   # ReproZip is installed on Linux only (its tracer needs ptrace)
        from reprozip.common import load_config, save_config
        from reprozip import __version__ as reprozip_version
        from rpaths import Path as RPath
    except ImportError:
        raise UsageError("Writing a ReproZip pack needs ReproZip, which is installed only "
                         "on Linux (pip install reprozip there).") from None

    from .bundle.reader import unpack
    from .replay.study import load_layout

    report, cancel = reporter(report), token(cancel)
    out = Path(out)
    if out.exists() and not overwrite:
        raise UsageError(f"{out} already exists; it was left as it is.",
                         "Choose another name with -o, or pass --force to replace it.")
    with tempfile.TemporaryDirectory(prefix="studypack-rpz-") as tmp:
        bag = unpack(bundle, Path(tmp) / "bag", report=report, cancel=cancel).bag_dir
        config_file = bag / fmt.TRACE_DIR / "config.yml"
        trace_db = bag / fmt.TRACE_DIR / "trace.sqlite3"
        if not config_file.is_file() or not trace_db.is_file():
            raise UsageError(f"{Path(bundle).name} holds no ReproZip trace (its study was "
                             "packed without a traced run), so it has no ReproZip pack.")
        layout = load_layout(bag)
        runs, packages, other_files = config = load_config(RPath(str(config_file)),
                                                           canonical=False)
        notes: list[str] = []
        locate = _locator(bag, layout.original_root)
        data = Path(tmp) / "DATA.tar.gz"
        added = _write_data(data, packages, other_files, locate, notes, report, cancel)
        canonical = Path(tmp) / "config.yml"
        save_config(RPath(str(canonical)), runs, packages, other_files, reprozip_version,
                    config.inputs_outputs, canonical=True, pack_id=str(uuid.uuid4()))
        report(Progress("export", 0, None, f"Writing {out.name}"))
        with atomic_output(out, overwrite=overwrite) as fh, \
                tarfile.open(fileobj=fh, mode="w:", format=tarfile.GNU_FORMAT) as tar:
            tar.add(str(data), "DATA.tar.gz")
            _add_bytes(tar, "METADATA/version", VERSION_LINE)
            tar.add(str(trace_db), "METADATA/trace.sqlite3")
            tar.add(str(canonical), "METADATA/config.yml")
    return ExportResult(out, added, notes)


def _locator(bag: Path, original_root: str):
    """Where the content of a traced absolute path is in the unpacked bag."""
    rootfs, study = bag / fmt.ROOTFS_DIR, bag / fmt.STUDY_DIR
    root = PurePosixPath(original_root)

    def locate(path: str) -> Path | None:
        posix = PurePosixPath(path)
        if posix.is_relative_to(root) and posix != root:
            candidate = study / posix.relative_to(root)
            if candidate.exists() or candidate.is_symlink():
                return candidate
        candidate = rootfs / path.lstrip("/")
        return candidate if candidate.exists() or candidate.is_symlink() else None
    return locate


def _write_data(target: Path, packages, other_files, locate, notes, report, cancel) -> int:
    seen: set[str] = set()
    count = 0
    with tarfile.open(str(target), "w:gz", format=tarfile.GNU_FORMAT) as tar:
        def add(path: str) -> bool:
            source = locate(path)
            if source is None:
                return False
            parts = PurePosixPath(path).parts[1:]
            for i in range(1, len(parts)):
                parent = "/" + "/".join(parts[:i])
                if parent not in seen:
                    seen.add(parent)
                    info = tarfile.TarInfo("DATA" + parent)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, time.time()
                    tar.addfile(info)
            if path not in seen:
                seen.add(path)
                tar.add(str(source), "DATA" + path, recursive=False)
            return True

        for package in packages:
            kept = [f for f in package.files if add(str(f.path))]
            package.files = kept
            cancel.check()
        kept_other = []
        for f in other_files:
            if add(str(f.path)):
                kept_other.append(f)
            elif not str(f.path).startswith(("/proc", "/sys", "/dev", "/run")):
                notes.append(f"not in the bundle, left out of the pack: {f.path}")
        other_files[:] = kept_other
        count = len(seen)
        report(Progress("export", count, count, f"{count} files and folders packed"))
    return count


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, time.time()
    tar.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------------ import

@dataclass
class ImportResult:
    path: Path
    sha256: str
    size: int
    files: int
    messages: list[str] = field(default_factory=list)


def read_rpz(path: Path, root: Path) -> tuple[Path, dict, list[dict]]:
    """Extract ``path`` safely: METADATA into ``root/METADATA``, DATA/ files at their
    paths under ``root/fs``. Symlinks are returned as a list (never created), so nothing
    can be written through one. Returns (metadata folder, config, symlinks)."""
    try:
        outer = tarfile.open(path, "r:*")
    except (OSError, tarfile.TarError):
        raise UsageError(f"{path} is not a ReproZip pack (not a tar file).") from None
    meta = root / "METADATA"
    meta.mkdir(parents=True)
    with outer:
        names = {m.name: m for m in outer.getmembers()}
        version = names.get("METADATA/version")
        if version is None or outer.extractfile(version).read() != VERSION_LINE:
            raise UsageError(f"{path.name} is not a ReproZip pack of format 2 (no "
                             "METADATA/version saying REPROZIP VERSION 2).",
                             "Packs made by reprozip 0.8 and later are supported.")
        for name in ("METADATA/config.yml", "METADATA/trace.sqlite3",
                     "METADATA/trace.sqlite3.gz"):
            member = names.get(name)
            if member is not None and member.isfile():
                data = outer.extractfile(member).read()
                if name.endswith(".gz"):
                    data, name = gzip.decompress(data), name[:-3]
                (meta / Path(name).name).write_bytes(data)
        if not (meta / "config.yml").is_file() or not (meta / "trace.sqlite3").is_file():
            raise UsageError(f"{path.name} has no METADATA/config.yml or trace.sqlite3.")
        data_member = names.get("DATA.tar.gz")
        if data_member is None:
            raise UsageError(f"{path.name} has no DATA.tar.gz.")
        links = _extract_data(outer.extractfile(data_member), root / "fs", path.name)
    config = yaml.safe_load((meta / "config.yml").read_text(encoding="utf-8")) or {}
    return meta, config, links


def _extract_data(fileobj, fs: Path, pack_name: str) -> list[dict]:
    links: list[dict] = []
    fs.mkdir(parents=True)
    room, written = shutil.disk_usage(fs).free, 0
    with tarfile.open(fileobj=fileobj, mode="r:*") as data:
        for count, member in enumerate(data):
            if count > MAX_MEMBERS:
                raise BundleError(f"{pack_name} holds more than {MAX_MEMBERS} files.")
            written += max(member.size, 0)
            if written > room:
                raise BundleError(f"{pack_name} unpacks to more than the "
                                  f"{room // 2**20} MiB free in {fs.parent}.",
                                  "Free some room (or set TMPDIR to a larger disk).")
            rel = PurePosixPath(member.name)
            if rel.parts[:1] != ("DATA",) or ".." in rel.parts or rel.is_absolute():
                raise BundleError(f"{pack_name} holds an unsafe path {member.name!r}.")
            parts = rel.parts[1:]
            if not parts:
                continue
            target = fs.joinpath(*parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.issym():
                links.append({"path": "/" + "/".join(parts), "target": member.linkname})
            elif member.isfile() or member.islnk():
                source = data.extractfile(member)
                if source is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
                target.chmod(0o755 if member.mode & 0o111 else 0o644)
            # devices, fifos: never taken
    return links


def import_rpz(rpz: str | os.PathLike, out: str | os.PathLike, *, name: str = "",
               title: str = "", authors: list[str] | None = None, description: str = "",
               license: str = "", outputs: list[str] | None = None,
               overwrite: bool = False, level: int = 3, report=None,
               cancel=None) -> ImportResult:
    """Make a bundle from a ReproZip pack: its runs, trace and files; the metadata
    (name, title, authors…) from the arguments."""
    from .bundle.writer import Member, pack
    from .bundle import metadata as md
    from .create import EnvironmentPart, plan_bundle
    from .secrets import Scrubber
    from .spec import parse_spec, spec_to_toml
    from .storeonce import plan_store_once
    from .trace import RunRecord, TraceResult, _scrub_trace

    report, cancel = reporter(report), token(cancel)
    rpz, out = Path(rpz), Path(out)
    if not rpz.is_file():
        raise UsageError(f"{rpz} does not exist.")
    if out.exists() and not overwrite:
        raise UsageError(f"{out} already exists; it was left as it is.",
                         "Choose another name with -o, or pass --force to replace it.")
    with tempfile.TemporaryDirectory(prefix="studypack-import-") as tmp:
        tmp = Path(tmp)
        report(Progress("import", 0, None, f"Reading {rpz.name}"))
        meta, config, links = read_rpz(rpz, tmp)
        runs = config.get("runs") or []
        if not runs:
            raise UsageError(f"{rpz.name} records no run.")
        root = PurePosixPath(runs[0].get("workingdir") or "/")
        fs = tmp / "fs"
        study_dir = fs.joinpath(*root.parts[1:])
        study_dir.mkdir(parents=True, exist_ok=True)
        written = sorted(str(PurePosixPath(f["path"]).relative_to(root))
                         for f in config.get("inputs_outputs") or []
                         if f.get("written_by_runs") and PurePosixPath(f["path"])
                         .is_relative_to(root) and (fs / f["path"].lstrip("/")).is_file())
        study_name = name or _slug(rpz.stem)
        doc = {"study": {"name": study_name, "title": title or f"{study_name} (from "
                         f"{rpz.name})", "description": description or
                         f"Imported from the ReproZip pack {rpz.name}.",
                         "authors": [{"name": a} for a in authors or []]},
               "outputs": {"paths": list(outputs if outputs is not None else written)}}
        if license:
            doc["study"]["license"] = license
        steps = [{"command": [str(a) for a in r.get("argv") or []],
                  "workdir": _relative_workdir(r.get("workingdir") or str(root), root)}
                 for r in runs]
        if len(steps) == 1:
            doc["run"] = steps[0]
        else:
            doc["runs"] = steps
        spec = parse_spec(doc)
        spec.path = study_dir / "studypack.toml"
        spec.path.write_text(spec_to_toml(spec), encoding="utf-8")

        scrubber = Scrubber(allow=set())
        trace_dir = tmp / "trace"
        trace_dir.mkdir()
        shutil.copyfile(meta / "config.yml", trace_dir / "config.yml")
        shutil.copyfile(meta / "trace.sqlite3", trace_dir / "trace.sqlite3")
        config = _scrub_trace(trace_dir, scrubber)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                             time.gmtime(os.stat(meta / "trace.sqlite3").st_mtime))
        records = []
        for index, run in enumerate(config.get("runs") or [], 1):
            empty = tmp / f"run{index}"
            empty.mkdir()
            (empty / "stdout.txt").write_bytes(b"")
            (empty / "stderr.txt").write_bytes(b"")
            records.append(RunRecord(
                index=index, command=[str(a) for a in run.get("argv") or []],
                workdir=steps[index - 1]["workdir"], executable=run.get("binary"),
                exit_code=run.get("exitcode", 0), signal=None, started_at=when,
                finished_at=when, duration_s=0.0,
                environment=dict(run.get("environ") or {}),
                stdout_file=empty / "stdout.txt", stderr_file=empty / "stderr.txt"))
        traced = TraceResult(trace_dir, records, [], config.get("packages") or [], [])
        environment = EnvironmentPart(
            metadata={"kind": "none", "detected": f"imported from the ReproZip pack "
                      f"{rpz.name}: no lock; replays from the traced files"},
            messages=[])
        plan, warnings = plan_bundle(spec, traced, environment, scrubber, started=None)
        rootfs_files = [p for p in sorted(fs.rglob("*"))
                        if p.is_file() and not p.is_relative_to(study_dir)]
        symlinks = md.dumps({"symlinks": [
            link for link in links if not PurePosixPath(link["path"]).is_relative_to(root)]})
        plan.payload = [m for m in plan.payload if m.arcname != fmt.SYMLINKS]
        plan.payload += [Member.from_bytes(fmt.SYMLINKS, symlinks)]
        rootfs = [Member.from_file(f"{fmt.ROOTFS_DIR}/{p.relative_to(fs).as_posix()}", p)
                  for p in rootfs_files]
        plan.payload += rootfs
        # The traced files are the pack's, not the (empty) trace's: their digest, which
        # keys trace mode's image and is checked at replay, is theirs.
        once = plan_store_once(rootfs, symlinks, [], cancel=cancel)
        metadata = json.loads(plan.metadata)
        metadata["traced_files"] = {**once.metadata(), "study_root": str(root)}
        plan.metadata = md.dumps(metadata)
        _reprozip_hosts(plan, config, md)
        cancel.check()
        result = pack(plan, out, level=level, overwrite=overwrite, report=report,
                      cancel=cancel)
    messages = [f"imported {len(records)} run(s) and {len(rootfs_files)} traced files from "
                f"{rpz.name}; the study folder is {root}",
                "the pack holds no standard output of the run: the replay compares files"]
    if not spec.output_paths:
        messages.append("the pack holds no file the run wrote, so a replay has no output "
                        "to compare (name them with --output PATH if they were packed)")
    messages += warnings + scrubber.summary()
    return ImportResult(result.path, result.sha256, result.size, result.files, messages)


def _relative_workdir(workingdir: str, root: PurePosixPath) -> str:
    path = PurePosixPath(workingdir)
    return str(path.relative_to(root)) if path.is_relative_to(root) else "."


def _slug(text: str) -> str:
    import re
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "imported-study"


def _reprozip_hosts(plan, config: dict, md) -> None:
    """The run records say where the pack was traced (its config.yml), not this host."""
    runs = config.get("runs") or []
    for member in plan.payload:
        parts = member.arcname.split("/")
        if parts[:2] != ["data", "runs"] or parts[-1] != "run.json":
            continue
        index = int(parts[2]) - 1
        if index >= len(runs) or member.data is None:
            continue
        doc = json.loads(member.data)
        run = runs[index]
        system = run.get("system") or ["", ""]
        doc["host"] = {"os": " ".join(map(str, run.get("distribution") or [])),
                       "system": system[0], "kernel": system[1] if len(system) > 1 else "",
                       "architecture": run.get("architecture", ""),
                       "hostname": run.get("hostname", ""),
                       "source": "the ReproZip pack's config.yml"}
        data = md.dumps(doc)
        member.data, member.size = data, len(data)
