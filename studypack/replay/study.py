"""What a replay reads from an unpacked bag, and the study folder it recreates.

:func:`load_layout` reads the run records, the study spec copy and the trace config;
:func:`make_study_dir` recreates the study folder from ``data/study/`` plus the traced
files that lived under the study root (a virtualenv inside the study folder, say);
:func:`apply_inputs` and :func:`apply_arguments` turn a repeat into a reuse.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from ..bundle import format as fmt
from ..bundle.tagfiles import read_json_file
from ..collect import restore_links
from ..errors import BundleError, UsageError, write_error
from ..progress import CancelToken
from ..spec import StudySpec, load_spec


@dataclass
class BagLayout:
    bag_dir: Path
    metadata: dict
    runs: list[dict]                 # run.json documents, in order
    spec: StudySpec | None
    original_root: str               # absolute path of the study root when traced
    notes: list[str] = field(default_factory=list)
    trace_image: str | None = None   # an image of these traced files already imported
    trace_image_made: bool = False   # ... by this replay, during the unpack
    kept_rootfs: Path | None = None  # the traced files kept by an earlier replay (cache)

    @property
    def data(self) -> Path:
        return self.bag_dir / fmt.PAYLOAD

    @property
    def study(self) -> Path:
        return self.bag_dir / fmt.STUDY_DIR

    @property
    def outputs(self) -> Path:
        return self.bag_dir / fmt.OUTPUTS_DIR

    @property
    def rootfs(self) -> Path:
        return self.kept_rootfs or self.bag_dir / fmt.ROOTFS_DIR

    @property
    def image_tar(self) -> Path:
        return self.bag_dir / fmt.IMAGE_TAR

    @property
    def dockerfile(self) -> Path:
        return self.bag_dir / fmt.ENV_DIR / "Dockerfile"

    @property
    def study_name(self) -> str:
        return (self.metadata.get("study") or {}).get("name", "") or self.bag_dir.name

    @property
    def output_paths(self) -> list[str]:
        if self.spec is not None and self.spec.output_paths:
            return list(self.spec.output_paths)
        # No spec: every file the original run wrote is an output.
        return sorted(p.name + ("/" if p.is_dir() else "")
                      for p in self.outputs.iterdir()) if self.outputs.is_dir() else []

    def run_exit_code(self, index: int) -> int | None:
        for run in self.runs:
            if run["index"] == index:
                return run.get("exit_code", 0)
        return 0


def load_layout(bag_dir: Path) -> BagLayout:
    bag_dir = Path(bag_dir)
    try:
        metadata = read_json_file(bag_dir / fmt.METADATA)   # bounded: the bag is a stranger's
    except OSError:
        raise BundleError(f"{bag_dir} has no readable {fmt.METADATA}.",
                          "Is this an unpacked studypack bundle?") from None
    if not isinstance(metadata, dict):
        raise BundleError(f"{bag_dir}'s {fmt.METADATA} is not a record.")
    runs_dir = bag_dir / fmt.RUNS_DIR
    runs = []
    for folder in sorted((p for p in runs_dir.iterdir() if p.is_dir() and p.name.isdigit()),
                         key=lambda p: int(p.name)) if runs_dir.is_dir() else []:
        try:
            run = read_json_file(folder / "run.json")
        except OSError:
            raise BundleError(f"{folder / 'run.json'} is missing or not JSON.") from None
        if not isinstance(run, dict):
            raise BundleError(f"{folder / 'run.json'} is not a run record.")
        run.setdefault("index", int(folder.name))
        if not run.get("command"):
            raise BundleError(f"{folder / 'run.json'} names no command.")
        runs.append(run)
    if not runs:
        raise BundleError(f"The bundle {bag_dir.name} records no run, so there is nothing to "
                          "replay.")
    notes = []
    spec = _bundle_spec(bag_dir, metadata, notes)
    root = _original_root(bag_dir, runs, metadata)
    if root is None:
        root = "/study"
        notes.append("the bundle does not say where the study lived when it was traced; "
                     "it is replayed in /study")
    restore_symlinks(bag_dir)
    return BagLayout(bag_dir, metadata, runs, spec, root, notes)


def _bundle_spec(bag_dir: Path, metadata: dict, notes: list[str]) -> StudySpec | None:
    """The spec copy in the bundle; when it does not load, the output paths and the
    comparison rules are taken from studypack.json instead."""
    from ..errors import SpecError
    from ..spec import parse_spec

    spec_copy = bag_dir / fmt.SPEC_COPY
    if spec_copy.is_file():
        try:
            return load_spec(spec_copy)
        except SpecError as exc:
            notes.append(f"the bundle's studypack.toml does not load ({exc.message}); the "
                         "comparison rules come from studypack.json")
    study = metadata.get("study") or {}
    doc = {"study": {"name": study.get("name") or "study", "title": study.get("title") or "study"},
           "run": {"command": ["true"]}}
    if isinstance(metadata.get("compare"), dict):
        doc["compare"] = metadata["compare"]
    try:
        spec = parse_spec(doc)
    except SpecError:
        return None
    spec.output_paths = []     # every file of data/outputs (see BagLayout.output_paths)
    return spec


def _original_root(bag_dir: Path, runs: list[dict], metadata: dict) -> str | None:
    """The study root's absolute path when traced: recorded, or the traced working
    folder of the first run minus that run's workdir."""
    for key in ("study_root", "root"):
        value = metadata.get(key) or (metadata.get("trace") or {}).get(key)
        if isinstance(value, str) and value.startswith("/"):
            return value
    config = bag_dir / fmt.TRACE_DIR / "config.yml"
    # libyaml's loader when PyYAML has it: the pure-Python one takes ~50 ms on a trace's
    # config, a fixed cost of every replay
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        traced = (yaml.load(config.read_text(encoding="utf-8"), Loader=loader)
                  or {}).get("runs") or []
    except (OSError, yaml.YAMLError):
        traced = []
    if traced and runs:
        workingdir = traced[0].get("workingdir")
        rel = PurePosixPath(runs[0].get("workdir") or ".")
        if isinstance(workingdir, str) and workingdir.startswith("/"):
            path = PurePosixPath(workingdir)
            for _ in [p for p in rel.parts if p not in (".", "")]:
                path = path.parent
            return str(path)
    return None


def restore_symlinks(bag_dir: Path) -> None:
    """Recreate the traced symlinks (kept in a JSON list, since the bundle's tar holds
    no links) inside data/rootfs. A link never lands outside the rootfs; its target is
    kept as recorded (absolute targets are meant relative to the rootfs)."""
    listing = bag_dir / fmt.SYMLINKS
    if not listing.is_file():
        return
    try:
        doc = read_json_file(listing)
    except OSError:
        raise BundleError(f"{listing} cannot be read.") from None
    if isinstance(doc, dict):
        doc = doc.get("symlinks", doc)
    pairs = doc.items() if isinstance(doc, dict) else (
        (d.get("path"), d.get("target")) for d in doc if isinstance(d, dict))
    rootfs = bag_dir / fmt.ROOTFS_DIR
    for path, target in pairs:
        if not isinstance(path, str) or not isinstance(target, str):
            continue
        rel = PurePosixPath(path.lstrip("/"))
        if rel.parts[:2] == ("data", "rootfs"):
            rel = PurePosixPath(*rel.parts[2:])
        if not rel.parts or ".." in rel.parts or "\0" in target:
            raise BundleError(f"{listing} names an unsafe link {path!r}.")
        link = rootfs / rel
        if link.is_symlink() or link.exists():
            continue
        if any(p.is_symlink() for p in [rootfs / PurePosixPath(*rel.parts[:i])
                                        for i in range(1, len(rel.parts))]):
            continue  # a link below another link would be written through it
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
    # Bundles whose list lacks the merged-/usr folder links (/lib64 -> usr/lib64, …):
    # the loader path every dynamic program names goes through them.
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        top = rootfs / name
        if (rootfs / "usr" / name).is_dir() and not top.exists() and not top.is_symlink():
            os.symlink(f"usr/{name}", top)


def make_study_dir(layout: BagLayout, target: Path, cancel: CancelToken) -> Path:
    """The study folder as it was before the original run: code and inputs, the traced
    files that lived under the study root, and the (empty) output folders."""
    try:
        target.mkdir(parents=True, exist_ok=False)
        if layout.study.is_dir():
            _copy_tree(layout.study, target, cancel)
        traced_root = layout.rootfs / layout.original_root.lstrip("/")
        if traced_root.is_dir() and not traced_root.is_symlink():
            _copy_tree(traced_root, target, cancel)
        # the study's own symlinks were packed by content: links again, as traced
        restore_links(target, layout.metadata.get("study_links") or [])
        if layout.outputs.is_dir():
            for folder in layout.outputs.rglob("*"):
                if folder.is_dir() and not folder.is_symlink():
                    (target / folder.relative_to(layout.outputs)).mkdir(parents=True,
                                                                        exist_ok=True)
    except OSError as exc:
        raise write_error(target, exc) from None
    return target


def _copy_tree(source: Path, target: Path, cancel: CancelToken) -> None:
    """Copy files and symlinks (as links); never replace a file already there."""
    for dirpath, dirnames, filenames in os.walk(source):
        cancel.check()
        base = Path(dirpath)
        rel = base.relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in dirnames + filenames:
            src, dst = base / name, target / rel / name
            if src.is_symlink():
                if not dst.exists() and not dst.is_symlink():
                    os.symlink(os.readlink(src), dst)
            elif src.is_file() and not dst.exists():
                shutil.copy2(src, dst)
        dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]


def apply_inputs(layout: BagLayout, study_dir: Path, inputs: dict[str, Path]) -> list[str]:
    """Replace input files with the user's own. NAME is the input's path in the study
    (``data/temps.csv``) or, when unique, its file name."""
    known = sorted(p.relative_to(layout.study).as_posix()
                   for p in layout.study.rglob("*") if p.is_file()) if layout.study.is_dir() else []
    notes = []
    for name, own in inputs.items():
        own = Path(own).expanduser()
        if not own.is_file():
            raise UsageError(f"--input {name}={own}: {own} is not a file.")
        rel = name.strip().lstrip("./")
        if rel not in known:
            candidates = [k for k in known if PurePosixPath(k).name == rel]
            if len(candidates) != 1:
                data_files = [k for k in known if not k.endswith((".py", ".toml"))][:12]
                raise UsageError(
                    f"--input {name}: the study has {'several' if candidates else 'no'} input "
                    f"file{'s' if candidates else ''} called {rel!r}.",
                    "Name it by its path in the study; inputs here: "
                    + (", ".join(candidates or data_files) or "(none)") + ".")
            rel = candidates[0]
        destination = study_dir / rel
        destination.unlink(missing_ok=True)
        shutil.copyfile(own, destination)
        notes.append(f"input {rel} replaced by {own}")
    return notes


def apply_arguments(plans, overrides: list[str]) -> None:
    """Change the command's arguments: ``--steps 50`` or ``--steps=50`` replaces the
    value of an option the recorded command already has (in every run that has it);
    anything else is appended to the last run's command."""
    extra: list[str] = []
    i = 0
    while i < len(overrides):
        word = overrides[i]
        if word.startswith("-") and len(word) > 1:
            name, eq, value = word.partition("=")
            takes_next = not eq and i + 1 < len(overrides) and not overrides[i + 1].startswith("-")
            if takes_next:
                value = overrides[i + 1]
            replaced = False
            for plan in plans:
                replaced |= _replace_option(plan.argv, name, value if (eq or takes_next) else None)
            if not replaced:
                extra += overrides[i:i + (2 if takes_next else 1)]
            i += 2 if takes_next else 1
        else:
            extra.append(word)
            i += 1
    if extra:
        plans[-1].argv.extend(extra)


def _replace_option(argv: list[str], name: str, value: str | None) -> bool:
    for j, word in enumerate(argv[1:], 1):
        if word.startswith(name + "="):
            argv[j] = f"{name}={value}" if value is not None else name
            return True
        if word == name:
            if value is not None and j + 1 < len(argv) and not argv[j + 1].startswith("-"):
                argv[j + 1] = value
            elif value is not None:
                argv.insert(j + 1, value)
            return True
    return False


def fetch_references(layout: BagLayout, report, cancel: CancelToken) -> list[str]:
    """Download the input data a bundle keeps outside by reference (BagIt fetch.txt)
    into the bag, checking each file's size and its sha256 from the manifest."""
    from ..bundle.tagfiles import parse_fetch, parse_manifest
    from ..references import Reference, fetch_references as download

    fetch_txt = layout.bag_dir / fmt.FETCH_TXT
    if not fetch_txt.is_file():
        return []
    manifest = parse_manifest((layout.bag_dir / fmt.MANIFEST).read_bytes(), fmt.MANIFEST)
    references = []
    # http(s) only, a size and a safe data/ path per line: the reader's own rules
    for rel, (url, size) in parse_fetch(fetch_txt.read_bytes()).items():
        if rel not in manifest:
            raise BundleError(f"fetch.txt names {rel}, which no manifest checksum covers.")
        references.append(Reference(rel, url, size, manifest[rel]))
    fetched = download(references, layout.bag_dir, report=report, cancel=cancel)
    return [f"fetched {ref.path.removeprefix('data/study/')} from {ref.url} (sha256 checked)"
            for ref in fetched]
