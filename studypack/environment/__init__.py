"""The one function ``studypack create`` calls for the software environment.

:func:`capture_environment` detects the traced run's environment, locks and vendors
it (:mod:`studypack.environment.piplock` for pip, :mod:`studypack.environment.condalock` for conda), pins the
base image by digest and renders the Dockerfile (:mod:`studypack.environment.dockerfile`), then —
when asked, or by default when a Docker daemon answers — builds the image offline
and optionally saves it (:mod:`studypack.engine`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .condalock import lock_conda_environment
from .dockerfile import DockerfileInputs, image_tag, render_dockerfile
from ..engine import BaseImageError, Engine, PinnedImage
from .detect import (NotPythonError, PythonEnvironment, detect_environment,
                        find_interpreter)
from .piplock import LINUX_X86_64_PLATFORMS, lock_pip_environment
from ..errors import EngineError, EnvironmentCaptureError
from ..progress import Progress, reporter, token

DEFAULT_CONDA_BASE = "mambaorg/micromamba:latest"
DEFAULT_PLAIN_BASE = "debian:bookworm-slim"   # a study that runs no Python


@dataclass
class EnvironmentCapture:
    metadata: dict                      # goes into studypack.json under "environment"
    files_dir: Path                     # packed as data/env/
    image_tar: Path | None = None       # packed as data/image/image.tar
    messages: list[str] = field(default_factory=list)
    dockerfile: str | None = None       # the rendered text, to show before/after a build


def default_base_image(env: PythonEnvironment) -> str:
    if env.kind == "conda":
        return DEFAULT_CONDA_BASE
    return f"python:{env.python_minor or '3'}-slim"


def capture_environment(executable: str | None, spec, stage_dir: Path, *,
                        base_image: str | None = None, build_image: bool | None = None,
                        save_image: bool = False, packages: list[dict] | None = None,
                        engine: Engine | None = None, tag: str | None = None,
                        find_links: list[str] | None = None, opened: set[str] | None = None,
                        pythons: list[str] | None = None, report=None,
                        cancel=None) -> EnvironmentCapture:
    """Lock, vendor, render and (optionally) build the study's environment.

    ``executable`` is the traced run's interpreter (None: the spec's, or python3 on
    PATH). ``build_image``: True builds (a daemon is required), False never builds,
    None builds when a daemon answers. ``packages`` are the dpkg packages ReproZip
    reported (dicts with name and version).
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
    try:
        return _capture(executable, spec, files_dir=files_dir, stage_dir=stage_dir,
                        engine=engine, base_image=base_image, build_image=build_image,
                        save_image=save_image, packages=packages, tag=tag,
                        find_links=find_links, opened=opened, pythons=pythons, report=report,
                        cancel=cancel)
    finally:
        if owns_engine and engine is not None:
            engine.close()


def _capture(executable, spec, *, files_dir, stage_dir, engine, base_image, build_image,
             save_image, packages, tag, find_links, opened, pythons, report,
             cancel) -> EnvironmentCapture:
    messages: list[str] = []
    report(Progress("environment", 0, None, "Detecting the study's environment"))
    try:
        env = detect_environment(find_interpreter(executable, spec))
    except NotPythonError:
        if executable is None:
            raise
        if pythons:   # e.g. `bash run.sh` that starts python: lock the Python it started
            env = detect_environment(pythons[0])
            messages.append(f"the run's program {executable} is not Python; the Python it "
                            f"started, {env.executable}, is locked")
        elif opened is not None:
            return _without_python(executable, spec, files_dir, stage_dir, engine,
                                   base_image, build_image, save_image, packages, tag,
                                   messages, report, cancel)
        else:
            # Not traced: lock the study's Python, as the spec names it.
            env = detect_environment(find_interpreter(None, spec))
            messages.append(f"the run's program {executable} is not Python; the Python "
                            f"environment locked is {env.executable}")
    messages.append(f"environment: found {env.describe()}")
    wanted = getattr(getattr(spec, "environment", None), "kind", "auto")
    if wanted not in ("auto", "", None, env.kind):
        messages.append(f"studypack.toml says the environment is {wanted}, but "
                        f"{env.executable} belongs to {env.describe()}; the latter was locked")
    cancel.check()

    metadata: dict = {**env.to_metadata(), "detected": env.describe()}
    if env.kind == "conda":
        conda = lock_conda_environment(env, files_dir, report=report, cancel=cancel)
        install_kind, lock_file = "conda", conda.lock_file.name
        metadata.update(conda.to_metadata())
        messages.append(f"conda lock: {len(conda.records)} packages, written from "
                        f"{conda.method}; the packages are vendored as a local channel")
        messages.extend(conda.notes)
    else:
        pip = lock_pip_environment(env, files_dir, report=report, cancel=cancel,
                                   find_links=find_links, opened=opened)
        install_kind, lock_file = "pip", pip.lock_file.name
        metadata.update(pip.to_metadata())
        metadata.update({"lock_method": "importlib.metadata + pip download (hash-pinned)",
                         "wheel_target": {"platform": "linux-x86_64",
                                          "python": env.python_minor,
                                          "implementation": env.implementation,
                                          "manylinux": LINUX_X86_64_PLATFORMS[0]}})
        messages.append(f"pip lock: {len(pip.locked)} packages pinned with sha256 hashes; "
                        f"{len(pip.wheels)} wheels vendored (linux x86_64, Python "
                        f"{env.python_version}): {pip.source_summary() or 'none needed'}")
        if pip.unused:
            messages.append(f"left out of the lock {len(pip.unused)} installed package(s) "
                            "the run did not use: " + ", ".join(sorted(pip.unused))
                            + " (lock = \"all\" under [environment] keeps them)")
        if pip.rebuilt:
            messages.append("REBUILT from the installed files (no wheel was found in a "
                            "wheelhouse, pip's cache or the index"
                            + (f"; {pip.index_problem}" if pip.index_problem else "")
                            + "): " + ", ".join(pip.rebuilt))
        for name, why in sorted(pip.skipped.items()):
            messages.append(f"not locked: {name} ({why})")
    cancel.check()

    system_packages = sorted({(str(p["name"]), str(p.get("version") or ""))
                              for p in packages or [] if p.get("name")})
    metadata["system_packages"] = [{"name": n, "version": v} for n, v in system_packages]

    ref = base_image or getattr(getattr(spec, "environment", None), "base_image", "") \
        or default_base_image(env)
    if engine is None:
        engine = Engine.try_connect()
        try:
            return _finish(env, spec, files_dir, stage_dir, engine, ref, install_kind,
                           lock_file, system_packages, build_image, save_image, metadata,
                           messages, tag, report, cancel)
        finally:
            if engine is not None:
                engine.close()
    return _finish(env, spec, files_dir, stage_dir, engine, ref, install_kind, lock_file,
                   system_packages, build_image, save_image, metadata, messages, tag, report,
                   cancel)


def _without_python(executable, spec, files_dir, stage_dir, engine, base_image, build_image,
                    save_image, packages, tag, messages, report, cancel) -> EnvironmentCapture:
    """The traced run started no Python (a shell or R script): no Python is locked."""
    messages.append(f"the run ({executable}) started no Python interpreter: no Python "
                    "environment is locked")
    metadata: dict = {"kind": "none", "executable": executable,
                      "detected": "no Python (the traced run started none)"}
    system_packages = sorted({(str(p["name"]), str(p.get("version") or ""))
                              for p in packages or [] if p.get("name")})
    metadata["system_packages"] = [{"name": n, "version": v} for n, v in system_packages]
    ref = base_image or getattr(getattr(spec, "environment", None), "base_image", "") \
        or DEFAULT_PLAIN_BASE
    owns = engine is None
    engine = engine or Engine.try_connect()
    try:
        return _finish(None, spec, files_dir, stage_dir, engine, ref, "none", "",
                       system_packages, build_image, save_image, metadata, messages, tag,
                       report, cancel)
    finally:
        if owns and engine is not None:
            engine.close()


def _finish(env, spec, files_dir, stage_dir, engine, ref, install_kind, lock_file,
            system_packages, build_image, save_image, metadata, messages, tag, report,
            cancel) -> EnvironmentCapture:
    will_build = engine is not None and build_image is not False
    pinned: PinnedImage | None = None
    if engine is None:
        messages.append(f"no container engine answers, so the base image {ref} could not be "
                        "pinned: the bundle has the lock and the vendored packages but no "
                        "Dockerfile")
    else:
        try:
            # Without a build nothing is pulled or looked up on a registry: --no-image
            # means no network either, so only an image already here can be pinned.
            pinned = engine.resolve(ref, pull=will_build, registry=will_build, report=report)
        except BaseImageError as exc:
            if build_image is True or save_image:
                raise   # an image was asked for explicitly: say why there is none
            # The default (build when a daemon answers) degrades to no image, and says so.
            will_build = False
            messages.append(f"{exc} The bundle has no Dockerfile and no image (pass "
                            "--base-image with an image on this machine to include them).")
    metadata["base_image"] = None if pinned is None else {
        "ref": ref, "pinned": pinned.pinned, "digest": pinned.digest, "source": pinned.source}
    metadata["image"] = {"built": False}
    capture = EnvironmentCapture(metadata=metadata, files_dir=files_dir, messages=messages)
    if pinned is None:
        metadata["dockerfile"] = None
        return capture

    study = getattr(spec, "study", None)
    runs = getattr(spec, "runs", None) or []
    inputs = DockerfileInputs(
        base_image=pinned.pinned, base_ref=ref, kind=install_kind,
        study_name=getattr(study, "name", "study"), title=getattr(study, "title", ""),
        description=getattr(study, "description", ""), version=getattr(study, "version", ""),
        python_version=env.python_version if env else "", system_packages=system_packages,
        lock_file=lock_file, command=list(runs[0].command) if len(runs) == 1 else [],
        workdir=runs[0].workdir if len(runs) == 1 else ".")
    text = render_dockerfile(inputs)
    (files_dir / "Dockerfile").write_text(text, encoding="utf-8")
    capture.dockerfile = text
    metadata["dockerfile"] = "data/env/Dockerfile"
    messages.append(f"Dockerfile: FROM {pinned.pinned} (pinned by digest from {ref}); "
                    "packages install offline with hashes required")
    if not will_build:
        why = ("--no-image was given" if build_image is False
               else "no container engine answers" if engine is None
               else "its base image was not found")
        messages.append(f"the image was not built ({why}); rebuild it offline from data/env/")
        return capture

    cancel.check()
    tag = tag or image_tag(metadata_name(spec), getattr(study, "version", "") or
                           _git_version(getattr(spec, "path", None)))
    context = _context_files(files_dir, spec)
    built = engine.build(context, tag=tag, dockerfile="env/Dockerfile", report=report,
                         cancel=cancel)
    image = {"built": True, "id": built.id, "tag": tag, "engine": engine.name,
             "network": "none"}
    if install_kind == "pip":
        # By id from here on: another create of the same study may retag meanwhile.
        image["python_version"] = _image_python(engine, built.id, cancel)
        if image["python_version"] and image["python_version"] != env.python_version:
            messages.append(f"the image has Python {image['python_version']}; the run used "
                            f"{env.python_version} (same minor version, same wheels)")
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
    return getattr(getattr(spec, "study", None), "name", "") or "study"


def _context_files(files_dir: Path, spec) -> list[tuple[str, Path]]:
    """The build context: ``env/`` (lock, packages, Dockerfile) and ``study/`` (code
    and input data, as packed under data/study/)."""
    files = [(f"env/{p.relative_to(files_dir).as_posix()}", p)
             for p in sorted(files_dir.rglob("*")) if p.is_file()]
    study_files: list[tuple[str, Path]] = []
    if getattr(spec, "path", None) is not None:
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
           "EnvironmentCaptureError"]
