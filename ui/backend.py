"""The one module through which the GUI calls the core (the reprounzip-qt habit).

Every function here is a thin adapter: it calls a ``studypack`` function and hands
back its result. The long ones take ``(report, cancel)`` so that pages can pass them
to :func:`studypack_gui.tasks.run_task` as they are. Nothing here touches Qt.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from studypack.create import CreateSession as CoreCreateSession
from studypack.errors import UsageError
from studypack.progress import CancelToken, Reporter
from studypack.spec import SPEC_NAME, StudySpec, detect_spec, load_spec, write_spec


def available(module: str, name: str | None = None) -> bool:
    """Whether a core capability is installed (parts of the core are optional)."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    return name is None or hasattr(mod, name)


def _need(module: str, name: str, what: str):
    try:
        mod = importlib.import_module(module)
        return getattr(mod, name)
    except (ImportError, AttributeError):
        raise UsageError(f"This installation of studypack cannot {what} yet.",
                         "Update studypack to a version that includes it.") from None


# ------------------------------------------------------------------------ the study

def open_study(folder: Path) -> tuple[StudySpec, bool]:
    """(spec, existed): the folder's studypack.toml, or a draft detected from it."""
    spec_file = Path(folder) / SPEC_NAME
    if spec_file.is_file():
        return load_spec(spec_file), True
    return detect_spec(folder), False


def save_study(spec: StudySpec, folder: Path) -> Path:
    """Written as the user goes; they accepted the folder, so replacing is expected."""
    return write_spec(spec, Path(folder) / SPEC_NAME, overwrite=True)


def git_status(folder: Path) -> Optional[dict]:
    """{commit, branch, dirty, remote} or None when the folder is not under git."""
    from studypack.hostinfo import git_state
    from studypack.secrets import Scrubber
    facts, diff = git_state(Path(folder), Scrubber())
    if facts is not None:
        facts = dict(facts, diff_lines=len(diff.splitlines()))
    return facts


@dataclass
class FilePlan:
    inputs: list            # studypack.collect.StudyFile (role code/data)
    outputs: list

    @property
    def code(self) -> list:
        return [f for f in self.inputs if f.role == "code"]

    @property
    def data(self) -> list:
        return [f for f in self.inputs if f.role == "data"]


def plan_files(spec: StudySpec) -> FilePlan:
    from studypack.collect import collect_study
    inputs, outputs = collect_study(spec)
    return FilePlan(inputs, outputs)


def sha256_of(path: Path, report: Optional[Reporter] = None,
              cancel: Optional[CancelToken] = None) -> str:
    """For a data file kept by reference: the checksum the reader will check."""
    from studypack.hashing import sha256_file
    return sha256_file(Path(path), cancel)


# ---------------------------------------------------------------- environment

@dataclass
class EnvironmentView:
    description: str
    kind: str
    python_version: str = ""
    lock_name: str = ""
    lock_text: str = ""
    notes: list[str] = field(default_factory=list)
    capture: Any = None      # the core's own result, for the later steps


def detect_environment(spec: StudySpec, report=None, cancel=None) -> EnvironmentView:
    from studypack.environment.detect import detect_environment as detect, find_interpreter
    python = spec.environment.python
    # a relative interpreter in the spec is relative to the study, not to our cwd
    explicit = str(spec.root / python) if python and not Path(python).is_absolute() else None
    env = detect(find_interpreter(explicit, spec))
    view = EnvironmentView(description=env.describe(), kind=env.kind,
                           python_version=env.python_version, capture=env)
    if env.kind == "conda":
        from studypack.environment.condalock import read_conda_meta
        records = read_conda_meta(env.prefix)
        view.lock_name = "conda-lock.yml (preview: the packages that will be locked)"
        view.lock_text = "\n".join(
            f"{r.get('name')}={r.get('version')}={r.get('build', '')}" for r in records)
    elif env.python_version:
        from studypack.environment.piplock import choose_distributions, list_distributions
        locked, skipped = choose_distributions(env, list_distributions(env))
        view.lock_name = ("requirements.lock (preview: versions now; the sha256 of each "
                          "wheel is added when the bundle is made)")
        view.lock_text = "\n".join(
            [f"# not locked: {name} ({why})" for name, why in sorted(skipped.items())]
            + [f"{d.name}=={d.version}" for d in locked])
    return view


def _optional(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


# ---------------------------------------------------------------- bundle reader

def read_info(path: Path):
    return _need("studypack.bundle.reader", "read_info", "read bundles")(path)


def verify(path: Path, report=None, cancel=None):
    return _need("studypack.bundle.reader", "verify", "verify bundles")(
        path, report=report, cancel=cancel)


def signature_status(path: Path, tagmanifest: bytes):
    """studypack.signing.SignatureStatus for the bundle's detached signature, checked
    against the tag manifest bytes that :func:`verify` read from the bundle."""
    from studypack.signing import verify_signature
    return verify_signature(path, None, tagmanifest)


def replay_modes(bundle: Optional[Path] = None) -> list[str]:
    """"auto" and the modes that can replay ``bundle`` here (without a bundle: the modes
    this machine can run), in the core registry's order."""
    return ["auto"] + [mode for mode, reason in replay_mode_checks(bundle) if reason is None]


def replay_mode_checks(bundle: Optional[Path] = None) -> list[tuple[str, Optional[str]]]:
    """(mode, None or the reason it cannot run) for every mode of the core registry."""
    from studypack.replay.registry import BundleFacts, check_modes
    facts = None
    if bundle is not None:
        from studypack.errors import StudypackError
        try:
            facts = BundleFacts.from_metadata(read_info(Path(bundle)).metadata)
        except StudypackError:
            facts = None
    return [(check.mode, check.reason) for check in check_modes(facts)]


def replay(path: Path, mode: str, keep: Optional[Path], report=None, cancel=None):
    fn = _need("studypack.replay", "replay_bundle", "replay bundles")
    return fn(path, mode=mode, keep=keep, report=report, cancel=cancel)


def replay_roots(result) -> tuple[Optional[Path], Optional[Path]]:
    """(original outputs root, replay outputs root) of a ReplayResult, for diffs."""
    expected = getattr(result, "expected_dir", None)
    actual = getattr(result, "actual_dir", None)
    return (Path(expected) if expected else None, Path(actual) if actual else None)


# ---------------------------------------------------------------- create, page by page

class CreateSession(CoreCreateSession):
    """The core's create session (plan → trace → environment → pack), run one page at a
    time: trace (Run page), environment (Image page), review (Review page), pack (Export
    page). The GUI only adds the built image's size, for the Image page."""

    def capture_environment(self, build_image: bool | None, save_image: bool,
                            report=None, cancel=None):
        environment = super().capture_environment(build_image, save_image, report, cancel)
        image = environment.metadata.get("image") or {}
        if image.get("built") and not image.get("saved"):
            self.image_bytes = image_size(image.get("tag", ""))
        return environment


def default_bundle_path(spec: StudySpec) -> Path:
    """Beside the study folder, not inside it: the study is not part of its own bundle."""
    from studypack.bundle.format import EXTENSION
    return spec.root.parent / f"{spec.study.name}{EXTENSION}"


def image_size(tag: str) -> int | None:
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
