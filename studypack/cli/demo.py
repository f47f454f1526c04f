"""studypack demo: the whole path on the example study shipped inside the package
(studypack/examples/heat-diffusion, installed as package data).

Copies the example into a folder, gives it its own virtualenv with numpy, then creates a
bundle, verifies it, shows what it holds, replays it and prints the reproduction report.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

from ..errors import EXIT_NOT_REPRODUCED, UsageError
from ._console import err_console, out_console

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "heat-diffusion"


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
    p.add_argument("--mode", default="auto", choices=mode_names(),
                   help="replay mode (default: auto)")
    p.add_argument("--image", action="store_true",
                   help="also build a container image (needs the base image locally)")
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
    _step("2. studypack create: trace the run, capture the environment, pack")
    create = ["create", str(study), "-o", str(bundle)]
    if not args.image:
        create.append("--no-image")
    code = _studypack(*create)
    if code:
        return code
    _step("3. studypack info: what the bundle holds (read from its first bytes)")
    _studypack("info", str(bundle))
    _step("4. studypack verify: every checksum")
    code = _studypack("verify", str(bundle))
    if code:
        return code
    _step("5. studypack replay: run it again and compare every output")
    code = _studypack("replay", str(bundle), "--mode", args.mode,
                      "--html", str(work / "report.html"))
    err_console.print(f"\nThe bundle: {bundle}\nThe report: {work / 'report.html'}")
    if code == EXIT_NOT_REPRODUCED:
        err_console.print("Some outputs were not reproduced: see the report above.")
    return code
