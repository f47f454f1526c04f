"""The one function ``studypack create`` calls for the software environment.

:func:`capture_environment` looks at the traced run (its programs, files and the dpkg
packages ReproZip named), detects the Python it used, and lets each environment kind
that applies (:mod:`.kinds`: Debian packages, conda, virtualenv, system Python, R) lock
and vendor its layer. It pins the base image by digest — or, when that cannot be pulled,
uses the Debian base made by ``studypack base-image`` (:mod:`.baseimage`) — renders the
Dockerfile from the kinds' steps (:mod:`.dockerfile`), then, when asked or by default
when a Docker daemon answers, builds the image offline and optionally saves it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import BaseImageError, Engine, PinnedImage
from ..errors import EngineError, EnvironmentCaptureError
from ..progress import Progress, reporter, token
from . import baseimage
from .detect import NotPythonError, PythonEnvironment, detect_environment, find_interpreter
from .dockerfile import DockerfileInputs, image_tag, render_dockerfile
from .kinds import CaptureContext, Layer, StudyFacts, applicable, kind_named

DEFAULT_PLAIN_BASE = "debian:bookworm-slim"   # a study that runs no Python


@dataclass
class EnvironmentCapture:
    metadata: dict                      # goes into studypack.json under "environment"
    files_dir: Path                     # packed as data/env/
    image_tar: Path | None = None       # packed as data/image/image.tar
    messages: list[str] = field(default_factory=list)
    dockerfile: str | None = None       # the rendered text, to show before/after a build
    details: list[str] = field(default_factory=list)   # item by item (create -v)


def default_base_image(env: PythonEnvironment | None) -> str:
    """python:X.Y-slim for a pip environment, micromamba for conda, Debian without one."""
    return DEFAULT_PLAIN_BASE if env is None else kind_named(env.kind).default_base_image(env)


def capture_environment(executable: str | None, spec, stage_dir: Path, *,
                        base_image: str | None = None, build_image: bool | None = None,
                        save_image: bool = False, packages: list[dict] | None = None,
                        files: list[Path] | None = None,
                        executables: list[str] | None = None,
                        engine: Engine | None = None, tag: str | None = None,
                        find_links: list[str] | None = None, opened: set[str] | None = None,
                        pythons: list[str] | None = None,
                        prefetched: dict[str, tuple[Path, str]] | None = None, report=None,
                        cancel=None) -> EnvironmentCapture:
    """Lock, vendor, render and (optionally) build the study's environment.

    ``executable`` is the traced run's program (None: the spec's Python, or python3 on
    PATH). ``build_image``: True builds (a daemon is required), False never builds,
    None builds when a daemon answers. ``packages`` are the dpkg packages ReproZip
    reported (dicts with name, version and the files used), ``files`` every traced file
    and ``executables`` each run's program (None: there was no traced run). ``opened``:
    the files the run opened, to lock only what it used (None: the whole environment);
    ``pythons``: the Python interpreters it started; ``find_links``: wheelhouses to take
    wheels from; ``prefetched``: wheels gathered while the run ran; ``tag``: the built
    image's tag.
    """
    report, cancel = reporter(report), token(cancel)
    stage_dir = Path(stage_dir)
    files_dir = stage_dir / "files"
    if files_dir.exists():
        shutil.rmtree(files_dir)
    files_dir.mkdir(parents=True)

    want_build = bool(build_image) or save_image
    owns_engine = engine is None
    if engine is None and want_build:
        engine = Engine.connect()   # fail now, before minutes of downloads, if none answers
    if engine is None:
        engine = Engine.try_connect()
    try:
        return _capture(executable, spec, files_dir=files_dir, stage_dir=stage_dir,
                        engine=engine, base_image=base_image, build_image=build_image,
                        save_image=save_image, packages=packages or [], files=files,
                        executables=executables, tag=tag, find_links=find_links,
                        opened=opened, pythons=pythons, prefetched=prefetched,
                        report=report, cancel=cancel)
    finally:
        if owns_engine and engine is not None:
            engine.close()


def detect_python(executable: str | None, spec, *, opened: set[str] | None = None,
                  pythons: list[str] | None = None,
                  messages: list[str] | None = None) -> PythonEnvironment | None:
    """The Python the run used; None when a traced run started none (``jq``,
    ``Rscript``)."""
    messages = messages if messages is not None else []
    try:
        return detect_environment(find_interpreter(executable, spec))
    except NotPythonError:
        if executable is None:
            raise
    if pythons:   # e.g. `bash run.sh` that starts python: lock the Python it started
        env = detect_environment(pythons[0])
        messages.append(f"the run's program {executable} is not Python; the Python it "
                        f"started, {env.executable}, is locked")
        return env
    if opened is not None:
        messages.append(f"the run ({executable}) started no Python interpreter: no Python "
                        "environment is locked")
        return None
    # Not traced: lock the study's Python, as the spec names it.
    env = detect_environment(find_interpreter(None, spec))
    messages.append(f"the run's program {executable} is not Python; the Python "
                    f"environment locked is {env.executable}")
    return env


def _capture(executable, spec, *, files_dir, stage_dir, engine, base_image, build_image,
             save_image, packages, files, executables, tag, find_links, opened, pythons,
             prefetched, report, cancel) -> EnvironmentCapture:
    messages: list[str] = []
    report(Progress("environment", 0, None, "Detecting the study's environment"))
    python = detect_python(executable, spec, opened=opened, pythons=pythons,
                           messages=messages)
    if python is not None:
        messages.append(f"environment: found {python.describe()}")
        wanted = spec.environment.kind if spec is not None else "auto"
        if wanted not in ("auto", "", None, python.kind):
            messages.append(f"studypack.toml says the environment is {wanted}, but "
                            f"{python.executable} belongs to {python.describe()}; the "
                            "latter was locked")
    cancel.check()
    facts = StudyFacts(spec=spec, executables=list(executables or [executable or ""]),
                       packages=packages, files=list(files or []), python=python,
                       traced=files is not None)
    kinds, _why_not = applicable(facts)
    metadata: dict = ({**python.to_metadata(), "detected": python.describe()}
                      if python is not None else
                      {"kind": "none", "executable": executable,
                       "detected": "no Python (the traced run started none)"})
    metadata["kinds"] = [k.name for k in kinds]
    metadata["system_packages"] = sorted(
        ({"name": str(p["name"]), "version": str(p.get("version") or "")}
         for p in packages if p.get("name")), key=lambda p: (p["name"], p["version"]))
    ctx = CaptureContext(facts=facts, files_dir=files_dir, engine=engine,
                         find_links=list(find_links or []), opened=opened,
                         prefetched=prefetched, report=report, cancel=cancel)
    layers: dict[str, Layer] = {}
    for kind in kinds:   # everything that needs no base image first
        if not kind.needs_base_image:
            layers[kind.name] = kind.lock(ctx)
            cancel.check()

    will_build = engine is not None and build_image is not False
    ref = base_image or (spec.environment.base_image if spec is not None else "") \
        or default_base_image(python)
    pinned = _pin_base(engine, ref, user_chose=bool(base_image or (
        spec is not None and spec.environment.base_image)), python=python,
        will_build=will_build, must=build_image is True or save_image,
        messages=messages, report=report)
    ctx.base_image = pinned.pinned if pinned else None
    for kind in kinds:
        if kind.needs_base_image:
            layers[kind.name] = kind.lock(ctx)
            cancel.check()
    ordered = [layers[k.name] for k in kinds]
    details: list[str] = []
    for layer in ordered:
        messages.extend(layer.messages)
        details.extend(layer.details)
        if kind_named(layer.kind).interpreter:
            metadata.update(layer.metadata)
        else:
            metadata[layer.kind] = layer.metadata
    metadata["base_image"] = None if pinned is None else {
        "ref": pinned.ref, "pinned": pinned.pinned, "digest": pinned.digest,
        "source": pinned.source}
    metadata["image"] = {"built": False}
    capture = EnvironmentCapture(metadata=metadata, files_dir=files_dir, messages=messages,
                                 details=details)
    if pinned is None:
        metadata["dockerfile"] = None
        return capture
    return _finish(capture, spec, engine, pinned, ordered, python, will_build, build_image,
                   save_image, stage_dir, tag, report, cancel)


def _pin_base(engine, ref, *, user_chose, python, will_build, must, messages,
              report) -> PinnedImage | None:
    if engine is None:
        messages.append(f"no container engine answers, so the base image {ref} could not be "
                        "pinned: the bundle has the lock and the vendored packages but no "
                        "Dockerfile")
        return None
    try:
        # Without a build nothing is pulled or looked up on a registry: --no-image
        # means no network either, so only an image already here can be pinned.
        return engine.resolve(ref, pull=will_build, registry=will_build, report=report)
    except BaseImageError as exc:
        suite = (baseimage.suite_for_python(python.python_minor) if python is not None
                 else baseimage.host_suite())
        found = None if user_chose or suite is None else \
            baseimage.find_base_image(engine, suite, pull=will_build)
        if found is not None:
            how = "cannot be pulled here" if will_build else "is not on this machine"
            messages.append(f"the base image {ref} {how}; using {found.pinned}, the Debian "
                            f"{suite} base made by `studypack base-image`")
            repository, digest = found.pinned.split("@", 1)
            return PinnedImage(ref=found.ref, repository=repository, digest=digest,
                               source="local")
        if must:
            raise   # an image was asked for explicitly: say why there is none
        # The default (build when a daemon answers) degrades to no image, and says so.
        hint = (f" Make a base image from the Debian mirror with `studypack base-image "
                f"--debian {suite}`"
                + (f" (Python {baseimage.SUITE_PYTHON[suite]})" if python else "")
                + ", then create again; or pass --base-image with an image on this "
                  "machine." if suite and not user_chose else
                " Pass --base-image with an image on this machine to include them.")
        messages.append(f"{exc.message} The bundle has no Dockerfile and no image.{hint}")
        return None


def _finish(capture, spec, engine, pinned, layers, python, will_build, build_image,
            save_image, stage_dir, tag, report, cancel) -> EnvironmentCapture:
    metadata, messages, files_dir = capture.metadata, capture.messages, capture.files_dir
    study = spec.study if spec is not None else None
    runs = spec.runs if spec is not None else []
    inputs = DockerfileInputs(
        base_image=pinned.pinned, base_ref=pinned.ref,
        study_name=getattr(study, "name", "study"), title=getattr(study, "title", ""),
        description=getattr(study, "description", ""), version=getattr(study, "version", ""),
        python_version=python.python_version if python else "",
        system_packages=[(p["name"], p["version"]) for p in metadata["system_packages"]],
        install_steps=[step for layer in layers for step in layer.steps + [""]],
        command=list(runs[0].command) if len(runs) == 1 else [],
        workdir=runs[0].workdir if len(runs) == 1 else ".")
    text = render_dockerfile(inputs)
    (files_dir / "Dockerfile").write_text(text, encoding="utf-8")
    capture.dockerfile = text
    metadata["dockerfile"] = "data/env/Dockerfile"
    messages.append(f"Dockerfile: FROM {pinned.pinned} (pinned by digest from {pinned.ref}); "
                    "packages install offline with hashes required")
    if not will_build:
        why = ("--no-image was given" if build_image is False
               else "no container engine answers" if engine is None
               else "its base image was not found")
        messages.append(f"the image was not built ({why}); rebuild it offline from data/env/")
        return capture

    cancel.check()
    tag = tag or image_tag(metadata_name(spec), getattr(study, "version", "") or
                           _git_version(spec.path if spec is not None else None))
    context = _context_files(files_dir, spec)
    built = engine.build(context, tag=tag, dockerfile="env/Dockerfile", report=report,
                         cancel=cancel)
    image = {"built": True, "id": built.id, "tag": tag, "engine": engine.name,
             "network": "none"}
    if python is not None and kind_named(python.kind).image_python:
        # By id from here on: another create of the same study may retag meanwhile.
        image["python_version"] = _image_python(engine, built.id, cancel)
        if image["python_version"] and image["python_version"] != python.python_version:
            messages.append(f"the image has Python {image['python_version']}; the run used "
                            f"{python.python_version} (same minor version, same wheels)")
    messages.append(f"image built offline: {tag} ({built.id[:19]}) with {engine.name}")
    if save_image:
        capture.image_tar = engine.save(built.id, stage_dir / "image.tar", tag=tag,
                                        report=report, cancel=cancel)
        image["saved"] = True
        image["tar_bytes"] = capture.image_tar.stat().st_size
        messages.append("the image itself is saved in the bundle (data/image/image.tar): "
                        "replay needs no build")
    metadata["image"] = image
    return capture


def _git_version(spec_path) -> str:
    """A study with no version is tagged by its git commit, so two studies of one name
    do not share the tag ``latest``."""
    if spec_path is None:
        return ""
    from ..hostinfo import run_git
    commit = (run_git(Path(spec_path).parent, "rev-parse", "--short=12", "HEAD") or "").strip()
    return f"git-{commit}" if commit else ""


def metadata_name(spec) -> str:
    return (spec.study.name if spec is not None else "") or "study"


def _context_files(files_dir: Path, spec) -> list[tuple[str, Path]]:
    """The build context: ``env/`` (lock, packages, Dockerfile) and ``study/`` (code
    and input data, as packed under data/study/)."""
    files = [(f"env/{p.relative_to(files_dir).as_posix()}", p)
             for p in sorted(files_dir.rglob("*")) if p.is_file()]
    study_files: list[tuple[str, Path]] = []
    if spec is not None and spec.path is not None:
        from ..collect import collect_study

        inputs, _outputs = collect_study(spec)
        study_files = [(f"study/{f.relpath}", f.path) for f in inputs]
    if not study_files:
        # COPY study/ needs the folder to exist even for a study with no files.
        placeholder = files_dir.parent / "empty-study"
        placeholder.mkdir(exist_ok=True)
        study_files = [("study", placeholder)]
    return files + study_files


def bundle_build_context(data_dir: Path) -> list[tuple[str, Path]]:
    """The files an unpacked bundle's image is rebuilt from: ``env/`` and ``study/`` of
    its ``data/`` folder, without the traced files and a saved image (for
    :meth:`Engine.build`, with ``dockerfile="env/Dockerfile"``)."""
    files = []
    for part in ("env", "study"):
        folder = Path(data_dir) / part
        files += [(p.relative_to(data_dir).as_posix(), p)
                  for p in sorted(folder.rglob("*")) if p.is_file()] if folder.is_dir() else []
        if not folder.is_dir() or not any(folder.iterdir()):
            files.append((part, folder if folder.is_dir() else Path(data_dir)))
    return files


def _image_python(engine: Engine, tag: str, cancel) -> str:
    try:
        result = engine.run(tag, ["python", "-c",
                                  "import platform; print(platform.python_version())"],
                            cancel=cancel, timeout=120)
    except EngineError:
        return ""
    return result.stdout.strip() if result.exit_code == 0 else ""


__all__ = ["EnvironmentCapture", "capture_environment", "default_base_image",
           "detect_python", "bundle_build_context", "EnvironmentCaptureError"]
