"""Take the screenshots in this folder: the wizard, page by page, on a copy of the
example study that has never run (no results/, no studypack.toml), then the replay
window on the bundle it wrote — as a researcher sees them on a small laptop screen.

Run under a real X server with a window manager (Xvfb + openbox is enough), the
study's own virtualenv in place:

    Xvfb :95 -screen 0 1024x600x24 & DISPLAY=:95 openbox &
    mkdir -p /tmp/demo && cp -r resources/examples/heat-diffusion /tmp/demo/
    rm /tmp/demo/heat-diffusion/studypack.toml
    python -m venv /tmp/demo/heat-diffusion/.venv && /tmp/demo/heat-diffusion/.venv/bin/pip install numpy
    DISPLAY=:95 python docs/screenshots/take_screenshots.py /tmp/demo/heat-diffusion docs/screenshots \
        [--differing /tmp/demo/unseeded-random.studypack]   # a bundle that does not reproduce

At twice the scale (what a HiDPI laptop shows), on a screen twice as big:

    Xvfb :95 -screen 0 2048x1200x24 & DISPLAY=:95 openbox &
    DISPLAY=:95 QT_SCALE_FACTOR=2 python docs/screenshots/take_screenshots.py \
        /tmp/demo2/heat-diffusion docs/screenshots --suffix=-2x --few

The whole screen is captured (``import -window root``: window frame, title bar and all)
and reduced to a 256-colour PNG.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from studypack_gui import dialogs
from studypack_gui.app import StudypackApplication

# No image can be pulled here: a Debian 12 image with Python 3.11 made locally and pushed
# to the local registry (so it has a digest to pin) stands in for python:3.11-slim.
BASE_IMAGE = "127.0.0.1:5000/studypack-test/debian-python:bookworm"


def settle(app: QApplication, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def wait(app: QApplication, done, timeout: float = 900) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError("the GUI did not finish in time")
        app.processEvents()
        time.sleep(0.05)
    settle(app)


class Camera:
    def __init__(self, app: QApplication, out: Path, suffix: str, only: set[str] | None):
        self.app, self.out, self.suffix, self.only = app, out, suffix, only

    def shot(self, name: str) -> None:
        if self.only is not None and name not in self.only:
            return
        settle(self.app, 0.8)
        path = self.out / f"{name}{self.suffix}.png"
        subprocess.run(["import", "-window", "root", str(path)], check=True)
        subprocess.run(["convert", str(path), "-colors", "256", f"PNG8:{path}"], check=True)
        print(f"{path} {path.stat().st_size // 1024} KB")


FEW = {"wizard-2-study", "wizard-6-run", "wizard-9-export", "replay-2-files", "replay-3-report"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("out_dir")
    parser.add_argument("--differing", help="a bundle whose replay does not reproduce")
    parser.add_argument("--suffix", default="", help="added to each file name, e.g. -2x")
    parser.add_argument("--few", action="store_true", help="only " + ", ".join(sorted(FEW)))
    parser.add_argument("--no-image", action="store_true", help="do not build the image")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app = StudypackApplication([sys.argv[0]])
    camera = Camera(app, out, args.suffix, FEW if args.few else None)
    dialogs.answers = []        # "Open the new bundle?" is answered below, not by hand
    wizard = app.new_wizard(args.folder)   # placed by the window manager, as for a user
    busy = lambda: wizard.currentPage().busy  # noqa: E731

    camera.shot("wizard-1-folder")
    wizard.next()
    study = wizard.currentPage()
    study.authors.set_authors([])
    study.authors.table.item(0, 0).setText("Lovelace, Ada")
    study.authors.table.item(0, 2).setText("Analytical Engine Society")
    study.keywords.setText("heat equation, finite differences")
    camera.shot("wizard-2-study")
    for name in ("wizard-3-code", "wizard-4-data", "wizard-5-environment"):
        wizard.next()
        wait(app, lambda: not busy())
        camera.shot(name)
    wizard.next()
    run = wizard.currentPage()
    run.outputs.setText("results/")
    run.start_run()
    wait(app, lambda: not busy())
    run.confirm.setChecked(True)
    camera.shot("wizard-6-run")
    wizard.next()
    wait(app, lambda: not busy())
    image = wizard.currentPage()
    image.base_image.setText(BASE_IMAGE)
    image.build.setChecked(not args.no_image)
    image.start()
    wait(app, lambda: not busy())
    camera.shot("wizard-7-image")
    wizard.next()
    wait(app, lambda: not busy() and wizard.currentPage().isComplete())
    camera.shot("wizard-8-review")
    wizard.next()
    export = wizard.currentPage()
    bundle = Path(export.path.text())
    export.overwrite.setChecked(True)
    export.start()
    wait(app, lambda: not busy())
    camera.shot("wizard-9-export")
    dialogs.answers.append("Not now")
    wizard.accept()

    window = app.new_replay_window()
    camera.shot("replay-0-start")
    window.open_bundle(bundle)
    wait(app, lambda: window.bundle_path is not None and not window.view.verify_panel.running)
    camera.shot("replay-1-study")
    window.view.tabs.setCurrentIndex(1)
    wait(app, lambda: not window.view.files_panel.running)
    tree = window.view.files
    outputs = tree.topLevelItem(1)
    if outputs is not None and outputs.childCount():
        tree.setCurrentItem(outputs.child(0))
        wait(app, lambda: not window.view.files_panel.running)
    camera.shot("replay-2-files")
    window.view.tabs.setCurrentIndex(2)
    window.start_replay()
    wait(app, lambda: not window.view.replay_panel.running)
    camera.shot("replay-3-report")
    if args.differing:
        # a study that cannot reproduce (an unseeded random draw): the report says so
        window.open_bundle(Path(args.differing))
        wait(app, lambda: window.bundle_path == Path(args.differing)
             and not window.view.verify_panel.running)
        window.view.tabs.setCurrentIndex(2)
        window.view.mode.setCurrentIndex(window.view.mode.findData("directory"))
        window.start_replay()
        wait(app, lambda: not window.view.replay_panel.running)
        camera.shot("replay-4-differs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
