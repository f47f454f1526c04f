"""The one module through which the GUI calls the core (the reprounzip-qt habit).

Pages and windows import ``studypack_gui.backend`` and nothing else of ``studypack``
(``tests/unit/test_gui_facade.py`` checks it). Every function here is a thin adapter:
it calls a ``studypack`` function and hands back its result, in words for a window
rather than for a terminal (:func:`gui_wording`). The long ones take
``(report, cancel)`` so that pages can pass them to ``tasks.run_task`` as they are.
Nothing here touches Qt.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from studypack import __version__
from studypack.bundle import format as bundle_format
from studypack.errors import (BundleError, Cancelled, EngineError, StudypackError,
                              UsageError, WriteError)
from studypack.fsutil import human_size
from studypack.progress import CancelToken, Progress, Reporter
# replay files: the stated rule and its housekeeping are the core's (re-exported for the windows)
from studypack.replay.workfolders import (KEEP_DAYS, KEEP_REPLAYS, ReplayFolder,  # noqa: F401
                                          list_replays, new_replay_folder, remove_replays)
from studypack.safetext import printable
from studypack.spec import (COMMON_LICENSES, DEFAULT_EXCLUDES, NAME_RE, SPEC_NAME, Author,
                            DataReference, RunStep, StudySpec, detect_spec, load_spec,
                            orcid_is_valid, slugify, write_spec)

__all__ = [  # what pages may use besides the functions below
    "Author", "BundleError", "CancelToken", "Cancelled", "COMMON_LICENSES", "DataReference",
    "DEFAULT_EXCLUDES", "EngineError", "Progress", "RunStep", "SPEC_NAME", "StudySpec",
    "StudypackError", "UsageError", "WriteError", "bundle_format", "human_size", "printable",
    "slugify", "__version__",
]

EXTENSION = bundle_format.EXTENSION


# ----------------------------------------------------- words for a window, not a shell

# Core hints are written for the command line. In the app each names the control that
# does the same thing. (pattern, replacement); a sentence that still names a flag after
# these is dropped rather than shown (see gui_wording).
_GUI_WORDS: list[tuple[str, str]] = [
    (r"Choose another name with -o, or pass --force to replace it\.",
     "Choose another file name, or tick \u201cReplace the file if it exists\u201d."),
    (r"Choose another name, or pass --force to replace it\.",
     "Choose another file name, or tick \u201cReplace the file if it exists\u201d."),
    (r"Edit it, or pass --force to replace it\.", "Edit it, or remove it first."),
    (r"Fix the study and try again, or pass --allow-failure to pack the failed run\.",
     "Fix the command on the Run page (or the study) and press Run again."),
    (r"Use --no-image to create the bundle without building an image\.",
     "Or untick \u201cBuild the image now\u201d on the Image page: the bundle then carries "
     "the recipe and the image is built at replay."),
    (r"Choose a local image with --base-image REF", "Type a local image in the "
     "\u201cBase image\u201d field of the Image page"),
    (r"choose a local image with --base-image REF", "type a local image in the "
     "\u201cBase image\u201d field of the Image page"),
    (r"Upgrade studypack: pip install --upgrade studypack", "Install a newer studypack."),
    (r", or give the file with --input\.", "."),
    (r"in a container run it with --cap-add SYS_PTRACE",
     "in a container, start it with ptrace allowed (`docker run --cap-add SYS_PTRACE`)"),
    (r"(?:choose )?another (?:image )?with --base-image(?: REF)?",
     "another one in the \u201cBase image\u201d field of the Image page"),
    (r"--base-image with an image on this machine",
     "a local image in the \u201cBase image\u201d field"),
    (r"--no-image was given", "\u201cBuild the image now\u201d was not ticked"),
    (r"Try --mode (\w+)\.", "Choose \u201c\\1\u201d in the Mode list."),
    (r"use --mode image or --mode trace", "choose \u201cimage\u201d or \u201ctrace\u201d "
     "in the Mode list"),
    (r"Use --mode image or --mode rebuild\.",
     "Choose \u201cimage\u201d or \u201crebuild\u201d in the Mode list."),
    (r"Use --mode image, rebuild or trace with Docker\.",
     "Choose \u201cimage\u201d, \u201crebuild\u201d or \u201ctrace\u201d in the Mode list "
     "(they need Docker)."),
    (r"or try another --mode\.", "or choose another mode in the Mode list."),
    (r"Use --mode directory, or a container mode\.",
     "Choose \u201cdirectory\u201d or a container mode in the Mode list."),
    (r"try again with --network\.",
     "replay it from a terminal with `studypack replay --network`."),
    (r"Another --mode may work; --keep DIR keeps the work folder to look into\.",
     "Another mode in the Mode list may work; the replay files stay in the replay "
     "folder to look into."),
    (r"\(or run again with --publish\)", "(or tick \u201cPublish now\u201d and deposit again)"),
    (r"Choose a new or empty folder for --keep\.",
     "Choose another folder for replay files (Replay > Replay files folder)."),
    (r"--tag ", "the image name "),
    (r"e\.g\. --tag ", "e.g. "),
    (r", or run the same command with --discard-pending to delete it \(its files and "
     r"edits are lost\) and start again from the published version",
     " on Zenodo, then deposit again"),
    (r"and deposit it with --new-version-of ([^ ]*)\.", "and deposit it as a new version "
     "(the app cannot do that yet: `studypack deposit BUNDLE --new-version-of DOI`)."),
    (r"name it with --find-links DIR \(or find_links under \[environment\]\)",
     "name that folder under find_links in [environment] of studypack.toml"),
    (r"Check --find-links or `find_links`", "Check `find_links`"),
    (r"on a machine with network: (pip download [^`;]*?)(\.?)$",
     "on a machine with network, run `\\1`\\2"),
    (r"Use --sandbox for sandbox DOIs", "Choose the Zenodo sandbox for sandbox DOIs"),
    (r"only work with --sandbox\)", "only work with the Zenodo sandbox)"),
    (r" \(or ZENODO_SANDBOX_TOKEN for --sandbox\)", " (or ZENODO_SANDBOX_TOKEN for the sandbox)"),
]
_FLAG = re.compile(r"(?<![\w`])--[a-z][a-z-]+")
_QUOTED = re.compile(r"`[^`]*`")   # a quoted command (docker, pip, conda) is the system's


def gui_wording(text: str) -> str:
    """A core sentence as the app shows it: the control instead of the flag."""
    if not text:
        return text
    for pattern, replacement in _GUI_WORDS:
        text = re.sub(pattern, replacement, text)
    if names_flag(text):
        # a flag nobody mapped yet: drop that sentence rather than show a shell command
        sentences = re.split(r"(?<=[.;!?])\s+", text)
        text = " ".join(s for s in sentences if not names_flag(s))
    return text


def names_flag(text: str) -> bool:
    """Whether ``text`` tells the user to pass a command-line option (outside a quoted
    command of another tool)."""
    return bool(_FLAG.search(_QUOTED.sub("", text)))


def gui_wording_table_only(text: str) -> str:
    """The rewording without the last resort (for the test that the table is complete)."""
    for pattern, replacement in _GUI_WORDS:
        text = re.sub(pattern, replacement, text)
    return text


@dataclass
class Explanation:
    title: str
    message: str
    hint: str
    details: str


def explain(exc: BaseException) -> Optional[Explanation]:
    """For a StudypackError: its sentence and hint in the app's words (None otherwise)."""
    if not isinstance(exc, StudypackError):
        return None
    message, hint = gui_wording(exc.message), gui_wording(exc.hint or "")
    # no traceback: a mistake the user can fix is not a bug to report
    more = f"{type(exc).__name__} (exit code {exc.exit_code} on the command line): {message}"
    return Explanation("studypack", message, hint, more + (f"\n{hint}" if hint else ""))


def message_of(exc: BaseException) -> str:
    explained = explain(exc)
    return explained.message if explained else str(exc)


# ------------------------------------------------------------------------ the study

def open_study(folder: Path) -> tuple[StudySpec, bool]:
    """(spec, existed): the folder's studypack.toml, or a draft detected from it."""
    spec_file = Path(folder) / SPEC_NAME
    if spec_file.is_file():
        return load_spec(spec_file), True
    return detect_spec(folder), False


def save_study(spec: StudySpec, folder: Path) -> Path:
    """The user asked for it (Save, or Create the bundle): replacing is expected."""
    return write_spec(spec, Path(folder) / SPEC_NAME, overwrite=True)


def spec_text(spec: StudySpec) -> str:
    """What save_study would write: lets a page tell whether anything is unsaved."""
    from studypack.spec import spec_to_toml
    return spec_to_toml(spec)


def copy_spec(spec: StudySpec) -> StudySpec:
    import copy
    return copy.deepcopy(spec)


def name_problem(name: str) -> Optional[str]:
    name = name.strip()
    if not name:
        return "Type a short name: it names the bundle file."
    if len(name) > 64:
        return f"The short name is {len(name)} characters long; 64 at most."
    if not NAME_RE.match(name):
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "._-"))})
        if bad:
            return ("The short name is used in file names: only letters, digits, '.', '_' "
                    "and '-', not " + " ".join(repr(c) for c in bad) + ".")
        return "The short name must start with a letter or a digit."
    return None


def title_problem(title: str) -> Optional[str]:
    return None if title.strip() else "Type a title: it is how readers and archives name the study."


def author_label(author: Author) -> str:
    """How the Authors table shows a person: "Family, Given" when the parts are known."""
    parts = author.family_given()
    if parts is None:
        return author.name.strip()
    family, given = parts
    return f"{family}, {given}" if given else family


def author_from(label: str, orcid: str, affiliation: str, affiliation_url: str = "") -> Author:
    """The table's "Family, Given" back into given and family names (not guessed when
    there is no comma: then the name stays whole, and a note asks)."""
    from studypack.citation import split_name
    parts = split_name(label)
    if parts is None:
        return Author(name=label.strip(), orcid=orcid, affiliation=affiliation,
                      affiliation_url=affiliation_url)
    family, given = parts
    return Author(given=given, family=family, orcid=orcid, affiliation=affiliation,
                  affiliation_url=affiliation_url)


def name_notes(authors: list[Author]) -> list[str]:
    """A note per author whose family name is not known apart (what Zenodo cites)."""
    return [f"For {a.name.strip()!r}, write \u201cFamily, Given\u201d so that citations "
            "name the family name right (one name alone is fine too)." for a in authors
            if a.family_given() is None and a.name.strip()]


_ORCID_URL = re.compile(r"^(?:https?://)?(?:www\.)?orcid\.org/", re.IGNORECASE)


def parse_orcid(text: str) -> tuple[str, Optional[str]]:
    """(the bare iD, problem or None). Accepts 0000-0002-1825-0097, the same without
    dashes, and the https://orcid.org/… form ORCID asks people to show."""
    raw = _ORCID_URL.sub("", text.strip()).strip().strip("/")
    if not raw:
        return "", None
    compact = raw.replace("-", "").replace(" ", "").upper()
    if not re.fullmatch(r"[0-9X]*", compact) or "X" in compact[:-1]:
        return raw, ("An ORCID iD has only digits, in four groups of four; the last "
                     "character may be X.")
    if len(compact) != 16:
        return raw, (f"An ORCID iD has 16 digits (four groups of four); this one has "
                     f"{len(compact)}.")
    bare = "-".join(compact[i:i + 4] for i in range(0, 16, 4))
    if not orcid_is_valid(bare):
        return bare, ("This ORCID iD has 16 digits but its last one, the check digit, does "
                      "not match: a digit is mistyped. Copy it from your ORCID record.")
    return bare, None


def git_status(folder: Path) -> Optional[dict]:
    """{commit, branch, dirty, remote, diff_lines} or None when the folder is not under git."""
    from studypack.hostinfo import git_state
    from studypack.secrets import Scrubber
    facts, diff = git_state(Path(folder), Scrubber())
    if facts is not None:
        facts = dict(facts, diff_lines=len(diff.splitlines()))
    return facts


@dataclass
class StudyFileView:
    relpath: str
    size: int
    role: str           # code | data | output


@dataclass
class FilePlan:
    inputs: list[StudyFileView]
    outputs: list[StudyFileView]
    missing: list[str] = field(default_factory=list)   # declared paths not there (yet)

    @property
    def code(self) -> list[StudyFileView]:
        return [f for f in self.inputs if f.role == "code"]

    @property
    def data(self) -> list[StudyFileView]:
        return [f for f in self.inputs if f.role == "data"]


def plan_files(spec: StudySpec) -> FilePlan:
    """The study's files by role. Results folders that do not exist yet are normal
    before the first run: they are listed in ``missing``, not an error."""
    from studypack.collect import collect_study
    missing = [p for p in spec.output_paths if not (spec.root / p).exists()]
    inputs, outputs = collect_study(spec, missing_outputs_ok=True)
    view = lambda f: StudyFileView(f.relpath, f.size, f.role)  # noqa: E731
    return FilePlan([view(f) for f in inputs], [view(f) for f in outputs], missing)


def sha256_of(path: Path, report: Optional[Reporter] = None,
              cancel: Optional[CancelToken] = None) -> str:
    """For a data file kept by reference: the checksum the reader will check (a large
    file takes a while: progress in bytes, cancellable)."""
    from studypack.hashing import sha256_file
    return sha256_file(Path(path), cancel, report)


# ---------------------------------------------------------------- environment

@dataclass
class EnvironmentView:
    description: str
    kind: str
    python_version: str = ""
    lock_name: str = ""
    lock_text: str = ""
    notes: list[str] = field(default_factory=list)
    sections: list["EnvironmentSection"] = field(default_factory=list)   # Debian, R


@dataclass
class EnvironmentSection:
    """One more kind of environment (the core's preview): its own tab on the page."""
    kind: str                 # debian | r
    title: str                # "Debian packages"
    lock_name: str            # the lock file it becomes, or ""
    lines: list[str]          # what will be locked; empty when it does not apply
    absent: str = ""          # why it does not apply to this study, or ""


def detect_environment(spec: StudySpec, report=None, cancel=None) -> EnvironmentView:
    from studypack.environment.detect import detect_environment as detect, find_interpreter
    python = spec.environment.python
    # a relative interpreter in the spec is relative to the study, not to our cwd
    explicit = str(spec.root / python) if python and not Path(python).is_absolute() else None
    env = detect(find_interpreter(explicit, spec))
    view = EnvironmentView(description=env.describe(), kind=env.kind,
                           python_version=env.python_version)
    from studypack.environment.kinds import StudyFacts, kind_named   # the Python's lock
    section = kind_named(env.kind).preview(StudyFacts(spec=spec, python=env))
    view.lock_name, view.lock_text = section.lock_name, "\n".join(section.lines)
    from studypack.environment import preview_environment   # Debian packages, R
    preview = preview_environment(spec, only=("debian", "r"))
    for kind, title in (("debian", "Debian packages"), ("r", "R packages")):
        section = preview.section(kind)
        if section is not None:
            view.sections.append(EnvironmentSection(kind, section.title, section.lock_name,
                                                    list(section.lines)))
        else:
            view.sections.append(EnvironmentSection(
                kind, title, "", [], gui_wording(preview.not_applying.get(kind, "")) or
                "does not apply to this study"))
    return view


def engine_status() -> tuple[bool, str]:
    """(reachable, sentence) for the container engine."""
    from studypack.engine import Engine
    engine = Engine.try_connect()
    if engine is None:
        return False, ("No Docker daemon answers: the bundle will carry the Dockerfile and the "
                       "packages, and the image can be built at replay.")
    try:
        return True, f"{engine.name} is running."
    finally:
        engine.close()


def image_size(tag: str) -> Optional[int]:
    """The size of a built image as the engine reports it (what saving would add)."""
    from studypack.engine import Engine
    engine = Engine.try_connect()
    if engine is None or not tag:
        return None
    try:
        return int(engine.client.images.get(tag).attrs.get("Size") or 0) or None
    except Exception:  # the estimate is a courtesy; its absence is not an error
        return None
    finally:
        engine.close()


# ---------------------------------------------------------------- create, page by page

@dataclass
class TraceView:
    exit_code: Optional[int]
    duration_s: float
    files_used: int


@dataclass
class EnvironmentOutcome:
    dockerfile: str
    locked: bool
    image_tag: str
    image_tar_bytes: Optional[int]
    image_bytes: Optional[int]
    messages: list[str]
    debian_suite: str = ""   # the base image could not be pulled: a Debian base of this
                             # release, made here, would do (make_base_image)


_MAKE_BASE = re.compile(r"base-image --debian (\w+)")


def base_image_suite(core_messages: list[str]) -> str:
    """The Debian release the core suggests making a base image of ("" when none): it
    says so when the default base image cannot be pulled and none was made here yet."""
    return next((m.group(1) for m in map(_MAKE_BASE.search, core_messages) if m), "")


def make_base_image(suite: str, ref: Optional[str] = None, report=None, cancel=None) -> str:
    """A Debian ``suite`` base image with Python, made here from the Debian mirror with
    debootstrap (or found, when made before): the core's ``make_base_image``. Its
    reference (pinnable: it is in the local registry)."""
    from studypack.engine import Engine
    from studypack.environment.baseimage import make_base_image as make
    engine = Engine.connect()
    try:
        return make(suite, engine=engine, ref=ref, report=report, cancel=cancel).ref
    finally:
        engine.close()


@dataclass
class PlanArea:
    label: str
    files: int
    size: int
    first: list[tuple[str, int]]


@dataclass
class PlanView:
    files: int
    size: int
    areas: list[PlanArea]
    secrets_dropped: dict[str, str]
    warnings: list[str]
    messages: list[str]


@dataclass
class BundleWritten:
    path: Path
    sha256: str
    size: int
    files: int


# Beyond this many files in one area the review shows a count instead of every name.
MAX_LISTED = 300
_AREAS = [
    ("data/study", "Code and input data"),
    ("data/outputs", "Results of the original run"),
    ("data/runs", "Run records (command, log, host, git)"),
    ("data/trace", "ReproZip trace"),
    ("data/rootfs", "System files the run used"),
    ("data/env", "Environment (lock, packages, Dockerfile)"),
    ("data/image", "Saved image"),
    ("data", "Description (RO-Crate, REPLAY.md, studypack.toml)"),
]


def _summarise(plan) -> list[PlanArea]:
    groups: dict[str, list[tuple[str, int]]] = {}
    for member in plan.payload:
        area = next(a for a, _ in _AREAS if member.arcname.startswith(a + "/"))
        groups.setdefault(area, []).append((member.arcname[len(area) + 1:], member.size))
    out = []
    for area, label in _AREAS:
        members = groups.get(area, [])
        if members:
            out.append(PlanArea(f"{label} \u2014 {area}/", len(members),
                                sum(s for _, s in members), sorted(members)[:MAX_LISTED]))
    for url, size, arcname, _digest in plan.fetch:
        out.append(PlanArea(f"By reference: {arcname} from {url}", 1, size, []))
    return out


class CreateSession:
    """The core's create session (``studypack.create.CreateSession``: plan, trace,
    environment, pack), driven one page at a time: trace (Run page), environment (Image
    page), review (Review page), pack (Export page). This adapter only turns its results
    into what the pages show."""

    def __init__(self, spec: StudySpec):
        from studypack.create import CreateOptions
        from studypack.create import CreateSession as CoreSession
        self.core = CoreSession(spec, CreateOptions())

    @property
    def spec(self) -> StudySpec:
        return self.core.spec

    @spec.setter
    def spec(self, spec: StudySpec) -> None:
        self.core.spec = spec

    @property
    def work(self) -> Path:
        return self.core.work

    @property
    def traced(self) -> bool:
        return self.core.traced is not None

    @property
    def environment_ready(self) -> bool:
        return self.core.environment is not None

    def run_logs(self, index: int = 1) -> tuple[Path, Path]:
        """Where the trace writes run ``index``'s stdout and stderr as it runs."""
        run_dir = self.core.run_dir(index)
        return run_dir / "stdout.txt", run_dir / "stderr.txt"

    def plan(self, report=None, cancel=None) -> list[str]:
        """The core's plan step: every check that needs no run (files, the environment and
        where its packages come from), in seconds. Its findings, in the app's words. The
        bundle file is chosen on the last page, which checks it then."""
        self.core.options.overwrite = True
        self.core.out = None
        try:
            planned = self.core.plan(report, cancel)
        finally:
            self.core.options.overwrite = False
        return [gui_wording(m) for m in planned.messages]

    def trace(self, report=None, cancel=None) -> TraceView:
        traced = self.core.trace(report, cancel)
        run = traced.runs[0]
        return TraceView(run.exit_code, run.duration_s, len(traced.files))

    def capture_environment(self, build_image: Optional[bool], save_image: bool,
                            report=None, cancel=None) -> EnvironmentOutcome:
        env = self.core.capture_environment(build_image, save_image, report, cancel)
        image = env.metadata.get("image") or {}
        built = isinstance(image, dict) and bool(image.get("built"))
        dockerfile = env.dockerfile or ""
        if not dockerfile and env.files_dir and (env.files_dir / "Dockerfile").is_file():
            dockerfile = (env.files_dir / "Dockerfile").read_text(encoding="utf-8",
                                                                  errors="replace")
        tar_bytes = env.image_tar.stat().st_size if env.image_tar and env.image_tar.is_file() \
            else None
        return EnvironmentOutcome(
            dockerfile=dockerfile, locked=bool(env.metadata.get("lock_file")),
            image_tag=(image.get("tag") or str(image.get("id", ""))[:19]) if built else "",
            image_tar_bytes=tar_bytes,
            image_bytes=image_size(image.get("tag", "")) if built and not image.get("saved")
            else None,
            messages=[gui_wording(m) for m in env.messages],
            debian_suite=base_image_suite(env.messages))

    def skip_environment(self) -> None:
        from studypack.create import EnvironmentPart
        self.core.environment = EnvironmentPart(
            metadata={"kind": "not captured"}, messages=["the environment recipe was left out"])
        self.core.layout = None

    def make_plan(self, report=None, cancel=None) -> PlanView:
        layout = self.core.make_plan(report, cancel)
        messages = [m for m in self.messages() if not m.startswith("dropped environment variable")]
        return PlanView(layout.payload_count, layout.payload_bytes, _summarise(layout),
                        dict(self.core.scrubber.dropped),
                        [gui_wording(w) for w in self.core.warnings], messages)

    def check_output(self, out: Path, overwrite: bool) -> Path:
        """The core's refusals (a file that exists, a bundle packed into its own study)
        before anything is written."""
        from studypack.create.session import check_output
        out = Path(out).expanduser()
        check_output(self.spec, out, overwrite)
        return out

    def pack(self, out: Path, overwrite: bool, report=None, cancel=None) -> BundleWritten:
        """Plan again (the studypack.toml just saved is part of the bundle) and write."""
        self.core.layout = None
        result = self.core.pack(Path(out).expanduser(), overwrite, report, cancel)
        return BundleWritten(Path(result.path), result.sha256, result.size, result.files)

    def messages(self) -> list[str]:
        return [gui_wording(m) for m in self.core.messages()]

    def close(self) -> None:
        self.core.close()


def default_bundle_path(spec: StudySpec) -> Path:
    """Beside the study folder, not inside it: the study is not part of its own bundle."""
    return spec.root.parent / f"{spec.study.name}{EXTENSION}"


# ---------------------------------------------------------------- deposit

def upload_types() -> tuple[str, ...]:
    from studypack.citation import UPLOAD_TYPES
    return UPLOAD_TYPES


@dataclass
class DepositChoices:
    """What the deposit page adds to the bundle's study description."""
    upload_type: str = ""                 # "" = dataset
    communities: list[str] = field(default_factory=list)
    paper_doi: str = ""                   # [study] related, relation isSupplementTo
    new_version_of: str = ""              # the study's DOI, to add a version to its record
    discard_pending: bool = False


def deposit_study(bundle: Path, choices: DepositChoices) -> tuple[dict, Optional[dict]]:
    """(the bundle's study description with the page's choices over it, which is what is
    sent; the git facts of its run)."""
    from studypack.deposit.workflow import bundle_facts
    study, _version, git = bundle_facts(Path(bundle))
    if choices.upload_type:
        study["upload_type"] = choices.upload_type
    if choices.communities:
        study["communities"] = list(choices.communities)
    if choices.paper_doi.strip():
        related = [r for r in study.get("related") or [] if isinstance(r, dict)
                   and r.get("identifier") != choices.paper_doi.strip()]
        study["related"] = related + [{"identifier": choices.paper_doi.strip(),
                                       "relation": "isSupplementTo"}]
    return study, git


def deposit_problems(study: dict) -> list[str]:
    """The local checks of the study description: what Zenodo would refuse or cite
    wrongly, found before anything is sent."""
    from studypack.deposit.metadata import check_study
    return [gui_wording(p) for p in check_study(study)]


def plan_deposit(bundle: Path, base_url: str, publish: bool,
                 choices: Optional[DepositChoices] = None):
    """(plan, metadata text shown before anything is sent)."""
    from studypack.deposit import plan_deposit as plan
    from studypack.deposit.metadata import render
    from studypack.deposit.refs import other_site_of
    choices = choices or DepositChoices()
    study, git = deposit_study(bundle, choices)
    made = plan(bundle, base_url=base_url, publish=publish, study=study, git=git,
                new_version_of=choices.new_version_of or None,
                discard_pending=choices.discard_pending and bool(choices.new_version_of),
                other_site=other_site_of(base_url))
    return made, render(made.metadata)


def is_pending_version(exc: BaseException) -> bool:
    """A new version of the record is already open on Zenodo (it can be discarded)."""
    from studypack.deposit.errors import PendingVersionError
    return isinstance(exc, PendingVersionError)


def run_deposit(plan, typed_token: str, report=None, cancel=None):
    from studypack.deposit import run_deposit as run
    from studypack.deposit.token import Secret, find_token
    token = Secret(typed_token) if typed_token else find_token(
        plan.base_url, sandbox="sandbox" in plan.base_url)
    return run(plan, token, report=report, cancel=cancel)


def write_doi(spec_path: Path, doi: str) -> None:
    from studypack.deposit import write_doi as write
    write(spec_path, doi)


# ---------------------------------------------------------------- bundle reader

def read_info(path: Path):
    from studypack.bundle.reader import read_info as read
    return read(path)


def verify(path: Path, report=None, cancel=None):
    from studypack.bundle.reader import verify as check
    return check(path, report=report, cancel=cancel)


def signature_status(path: Path, tagmanifest: bytes):
    """studypack.signing.SignatureStatus for the bundle's detached signature, checked
    against the tag manifest bytes that :func:`verify` read from the bundle."""
    from studypack.signing import verify_signature
    return verify_signature(path, None, tagmanifest)


def bundle_member(kind: str, relpath: str) -> str:
    # kind: "input" (code and data) or "output" (the original run's results)
    """The bag path of a study file (kind ``input``) or of an original output."""
    return f"{bundle_format.STUDY_DIR if kind == 'input' else bundle_format.OUTPUTS_DIR}/{relpath}"


def _members(path: Path, cancel: Optional[CancelToken]):
    """(path inside the bag, tar member, tar) for each regular file, streamed: nothing
    is written, so a hostile name cannot escape anywhere."""
    import tarfile

    import zstandard
    with open(path, "rb") as fh:
        reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    if cancel is not None:
                        cancel.check()
                    if member.isfile():
                        yield member.name.partition("/")[2], member, tar
        except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
            raise BundleError(f"{Path(path).name} cannot be read: {exc}.",
                              "Get a fresh copy of the bundle.") from None


def member_sizes(path: Path, report=None, cancel=None) -> dict[str, int]:
    """Size of every file in the bundle, by its path inside the bag (one streamed pass)."""
    return {name: member.size for name, member, _tar in _members(Path(path), cancel)}


def extract_members(path: Path, members: list[str], dest: Path, report=None,
                    cancel=None) -> list[Path]:
    """Copy files out of the bundle into ``dest`` (by file name), never replacing one."""
    dest = Path(dest)
    targets = {m: dest / Path(m).name for m in members}
    if len(set(targets.values())) < len(targets):
        raise UsageError("Two of the selected files have the same name; nothing was extracted.",
                         "Extract them one at a time into different folders.")
    for target in targets.values():
        if target.exists():
            raise UsageError(f"{target} already exists; nothing was extracted.",
                             "Choose another folder, or move that file away first.")
    written = []
    try:
        for name, member, tar in _members(Path(path), cancel):
            if name in targets:
                source = tar.extractfile(member)
                with open(targets[name], "xb") as out:
                    shutil.copyfileobj(source, out)
                written.append(targets[name])
    except BaseException:
        for target in written:   # all or nothing
            target.unlink(missing_ok=True)
        raise
    absent = [m for m in members if targets[m] not in written]
    if absent:
        for target in written:
            target.unlink(missing_ok=True)
        raise UsageError(f"{absent[0]} is not a file of this bundle; nothing was extracted.")
    return written


PREVIEW_BYTES = 64 * 1024
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg")


def preview_text(path: Path) -> Optional[str]:
    """The start of a text file, or None when it is not text."""
    with open(path, "rb") as fh:
        data = fh.read(PREVIEW_BYTES)
    if b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 4:  # not merely a character cut at the end
            return None
        text = data[:exc.start].decode("utf-8")
    if path.stat().st_size > PREVIEW_BYTES:
        text += f"\n\u2026 (the first {human_size(PREVIEW_BYTES)} of {human_size(path.stat().st_size)})"
    return text


# ---------------------------------------------------------------- replay

@dataclass
class ModeChoice:
    name: str
    usable: bool
    reason: str


AUTO_LABEL = "auto \u2014 the best mode this computer can run"


def mode_label(name: str) -> str:
    """How the Mode list names a mode: the runner's own one-line summary (the registry
    says what each does; the window does not repeat it)."""
    if name == "auto":
        return AUTO_LABEL
    from studypack.replay.registry import runner_class
    try:
        summary = runner_class(name).summary
    except UsageError:   # a name the registry does not know: shown as it is
        return name
    return f"{name} \u2014 {summary}" if summary else name


MODE_USABLE = {"image": "Docker answers", "rebuild": "Docker answers", "trace": "Docker answers",
               "sandbox": "bubblewrap confines the run, no root needed",
               "directory": "needs no container engine"}


def replay_choices(info) -> list[ModeChoice]:
    """Each replay mode of the core registry, in auto's order, with whether this bundle,
    on this machine, can use it — decided from the bundle's description, before anything
    is unpacked."""
    from studypack.replay.registry import BundleFacts, check_modes
    checks = check_modes(BundleFacts.from_metadata(info.metadata or {}))
    choices = [ModeChoice(c.mode, c.possible, gui_wording(c.reason) if c.reason
                          else MODE_USABLE.get(c.mode, "can run here")) for c in checks]
    usable = [c for c in choices if c.usable]
    auto = ModeChoice("auto", bool(usable),
                      f"will use {usable[0].name}" if usable else "no mode can run here")
    return [auto] + choices


def original_duration(info) -> Optional[float]:
    """Seconds the original run(s) took, as recorded in the bundle."""
    runs = [r for r in (info.metadata or {}).get("runs") or [] if isinstance(r, dict)]
    total = sum(float(r.get("duration_s") or 0) for r in runs)
    return total or None


def replay(path: Path, mode: str, keep: Path, report=None, cancel=None):
    from studypack.replay import replay_bundle
    return replay_bundle(path, mode=mode, keep=keep, report=report, cancel=cancel)


@dataclass
class ReplayVerdict:
    headline: str
    reproduced: bool
    failure: str               # the failed run, explained, or ""
    notes: list[str]
    expected_root: Optional[Path]
    actual_root: Optional[Path]


def replay_verdict(result) -> ReplayVerdict:
    from studypack.replay import run_failure
    from studypack.replay.report import headline, report_dict
    failure = run_failure(result)
    text = headline(report_dict(result))
    failure_text = ""
    if failure is not None:
        failure_text = gui_wording(failure.message) + (
            "\n" + gui_wording(failure.hint) if failure.hint else "")
    return ReplayVerdict(text, bool(result.reproduced), failure_text,
                         [gui_wording(n) for n in result.notes],
                         Path(result.expected_dir) if result.expected_dir else None,
                         Path(result.actual_dir) if result.actual_dir else None)


def report_html(result) -> str:
    from studypack.replay.report import render_html
    return render_html(result)


def save_text(path: Path, text: str) -> Path:
    from studypack.fsutil import atomic_write_text
    atomic_write_text(Path(path), text)
    return Path(path)


# ---------------------------------------------------------------- about

def versions() -> dict[str, str]:
    import sys
    found = {"studypack": __version__, "Python": sys.version.split()[0]}
    for name in ("PySide6", "docker", "reprozip", "zstandard"):
        try:
            from importlib.metadata import version
            found[name] = version(name)
        except Exception:  # not installed: say so rather than fail the About box
            found[name] = "not installed"
    return found
