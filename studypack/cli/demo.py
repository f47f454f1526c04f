"""studypack demo: the whole path on the example study shipped with studypack
(resources/examples/heat-diffusion in a checkout, studypack/examples in a wheel).

Copies the example into a folder, gives it its own virtualenv with numpy, then creates a
bundle, verifies it, shows what it holds, replays it and prints the reproduction report.
When a Docker daemon answers, the bundle gets a Dockerfile pinned by digest and an image
built offline — on a machine that cannot pull python:X.Y-slim, from a Debian base image
made here first (`studypack base-image`) — and it is replayed in rebuild and trace modes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

from ..errors import EXIT_NOT_REPRODUCED, UsageError
from ._console import err_console, out_console



def example_study() -> Path:
    """The example study: package data (studypack/examples) when installed from a wheel,
    resources/examples in a source checkout or an editable install."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "examples" / "heat-diffusion"
    return installed if installed.is_dir() else package.parent / "resources" / "examples" / "heat-diffusion"


EXAMPLE = example_study()


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="create, verify and replay the bundled example study",
        description="Run the whole studypack path on the example study "
                    "(shipped with studypack: examples/heat-diffusion): give it a virtualenv with numpy, "
                    "trace its run and create a bundle, verify it, replay it, and print the "
                    "reproduction report.")
    p.add_argument("--dir", default="studypack-demo", type=Path,
                   help="work folder for the demo (default: ./studypack-demo)")
    from ..replay.registry import mode_names
    p.add_argument("--mode", default=None, choices=mode_names(),
                   help="replay in this mode only (default: rebuild then trace when Docker "
                        "answers, else auto)")
    p.add_argument("--no-image", action="store_true",
                   help="no container image: no Docker needed (replays in directory mode)")
    p.set_defaults(func=run)


def _step(text: str) -> None:
    out_console.rule(f"[bold]{text}")


def _studypack(*args: str) -> int:
    return subprocess.run([sys.executable, "-m", "studypack", *args]).returncode


def run(args) -> int:
    work: Path = args.dir.resolve()
    study = work / "heat-diffusion"
    bundle = work / "heat-diffusion.studypack"
    work.mkdir(parents=True, exist_ok=True)
    for stale in (bundle, Path(f"{bundle}.sha256")):
        stale.unlink(missing_ok=True)  # the demo's own output from an earlier demo
    if study.exists():
        shutil.rmtree(study / "results", ignore_errors=True)
    else:
        shutil.copytree(EXAMPLE, study, ignore=shutil.ignore_patterns(".venv", "results"))
    python = study / ".venv" / "bin" / "python"
    if not python.exists():
        _step("1. The study's own environment: a virtualenv with numpy")
        venv.EnvBuilder(with_pip=True).create(study / ".venv")
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", "numpy"])
        if pip.returncode != 0:
            shutil.rmtree(study / ".venv", ignore_errors=True)
            raise UsageError("Could not install numpy into the example's virtualenv.",
                             "The demo needs PyPI once; check the network.")
    image = not args.no_image and _base_image_ready(python)
    _step("3. studypack create: trace the run, lock, vendor, Dockerfile, image, pack")
    create = ["create", str(study), "-o", str(bundle)]
    if not image:
        create.append("--no-image")
    code = _studypack(*create)
    if code:
        return code
    _step("4. studypack info: what the bundle holds (read from its first bytes)")
    _studypack("info", str(bundle))
    _step("5. studypack verify: every checksum")
    code = _studypack("verify", str(bundle))
    if code:
        return code
    modes = [args.mode] if args.mode else (["rebuild", "trace"] if image else ["auto"])
    for number, mode in enumerate(modes, 6):
        _step(f"{number}. studypack replay --mode {mode}: run it again and compare every "
              "output")
        report = work / f"report-{mode}.html"
        code = _studypack("replay", str(bundle), "--mode", mode, "--html", str(report))
        err_console.print(f"The report: {report}")
        if code:
            break
    err_console.print(f"\nThe bundle: {bundle}")
    if code == EXIT_NOT_REPRODUCED:
        err_console.print("Some outputs were not reproduced: see the report above.")
    return code


def _base_image_ready(python: Path) -> bool:
    """A base image for the Dockerfile: python:X.Y-slim when it can be pulled, else the
    Debian base `studypack base-image` makes from the mirror. False: build no image."""
    from ..engine import BaseImageError, Engine
    from ..environment import baseimage

    _step("2. A base image, pinned by digest")
    engine = Engine.try_connect()
    if engine is None:
        err_console.print("No Docker daemon answers: the bundle gets no image, and the "
                          "replay runs the traced files directly.")
        return False
    minor = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % "
                            "sys.version_info[:2])"], capture_output=True,
                           text=True).stdout.strip()
    default = f"python:{minor}-slim"
    try:
        pinned = engine.resolve(default, pull=True, registry=True)
        err_console.print(f"{default} is pinned as {pinned.pinned}")
        return True
    except BaseImageError:
        suite = baseimage.suite_for_python(minor)
        if suite is None:
            err_console.print(f"{default} cannot be pulled here, and no Debian release "
                              f"ships Python {minor}: the bundle gets no image.")
            return False
        err_console.print(f"{default} cannot be pulled here: making a Debian {suite} base "
                          f"with Python {minor} from the Debian mirror instead.")
    finally:
        engine.close()
    return _studypack("base-image", "--debian", suite) == 0
