"""Take the screenshots in this folder: the wizard, page by page, on a copy of the
example study, then the replay window on the bundle it wrote.

Run under a real X server (Xvfb is enough) with the study's own virtualenv in place:

    Xvfb :99 -screen 0 1280x800x24 &
    cp -r studypack/examples/heat-diffusion /tmp/demo/ && rm /tmp/demo/heat-diffusion/studypack.toml
    python -m venv /tmp/demo/heat-diffusion/.venv && /tmp/demo/heat-diffusion/.venv/bin/pip install numpy
    DISPLAY=:99 python docs/screenshots/take_screenshots.py /tmp/demo/heat-diffusion docs/screenshots \
        [/tmp/demo/unseeded-random.studypack]   # optional: a bundle that does not reproduce

Each window is captured with ImageMagick's ``import`` (what the X server shows) at
1024x768, the size the GUI must stay readable at, and reduced to a 256-colour PNG.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from studypack_gui.app import StudypackApplication

WIDTH, HEIGHT = 1024, 768
# No image can be pulled here: a Debian 12 image with Python 3.11 made locally and pushed
# to the local registry (so it has a digest to pin) stands in for python:3.11-slim.
BASE_IMAGE = "127.0.0.1:5000/studypack-test/debian-python:bookworm"


def settle(app: QApplication, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def wait(app: QApplication, done, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError("the GUI did not finish in time")
        app.processEvents()
        time.sleep(0.05)
    settle(app)


def shot(app: QApplication, widget, out: Path) -> None:
    settle(app, 0.5)
    subprocess.run(["import", "-window", str(int(widget.winId())), str(out)], check=True)
    subprocess.run(["convert", str(out), "-colors", "256", f"PNG8:{out}"], check=True)
    print(f"{out} {out.stat().st_size // 1024} KB")


def main(folder: str, out_dir: str, differing: str | None = None) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app = StudypackApplication([sys.argv[0]])
    wizard = app.new_wizard(folder)
    wizard.resize(WIDTH, HEIGHT)
    wizard.move(0, 0)
    busy = lambda: wizard.currentPage().busy  # noqa: E731

    shot(app, wizard, out / "wizard-1-folder.png")
    wizard.next()
    study = wizard.currentPage()
    study.authors.set_authors([])
    study.authors.table.item(0, 0).setText("Ada Lovelace")
    study.authors.table.item(0, 1).setText("0000-0002-1825-0097")
    study.authors.table.item(0, 2).setText("Analytical Engine Society")
    study.keywords.setText("heat equation, finite differences")
    shot(app, wizard, out / "wizard-2-study.png")
    for name in ("3-code", "4-data", "5-environment"):
        wizard.next()
        wait(app, lambda: not busy())
        shot(app, wizard, out / f"wizard-{name}.png")
    wizard.next()
    run = wizard.currentPage()
    run.outputs.setText("results/")
    run.start_run()
    wait(app, lambda: not busy())
    run.confirm.setChecked(True)
    shot(app, wizard, out / "wizard-6-run.png")
    wizard.next()
    wait(app, lambda: not busy())
    image = wizard.currentPage()
    image.base_image.setText(BASE_IMAGE)
    image.build.setChecked(True)
    image.start()
    wait(app, lambda: not busy())
    shot(app, wizard, out / "wizard-7-image.png")
    wizard.next()
    wait(app, lambda: not busy() and wizard.currentPage().isComplete())
    shot(app, wizard, out / "wizard-8-review.png")
    wizard.next()
    export = wizard.currentPage()
    bundle = Path(export.path.text())
    export.overwrite.setChecked(True)
    export.start()
    wait(app, lambda: not busy())
    shot(app, wizard, out / "wizard-9-export.png")
    wizard.hide()

    window = app.new_replay_window()
    window.resize(WIDTH, HEIGHT)
    window.move(0, 0)
    shot(app, window, out / "replay-0-start.png")
    window.open_bundle(bundle)
    wait(app, lambda: window.bundle_path is not None and not window.view.verify_panel.running)
    shot(app, window, out / "replay-1-study.png")
    window.view.tabs.setCurrentIndex(1)
    shot(app, window, out / "replay-2-files.png")
    window.view.tabs.setCurrentIndex(2)
    window.start_replay()
    wait(app, lambda: not window.view.replay_panel.running)
    shot(app, window, out / "replay-3-report.png")
    if differing:
        # a study that cannot reproduce (an unseeded random draw): the report says so
        window.open_bundle(Path(differing))
        wait(app, lambda: window.bundle_path == Path(differing)
             and not window.view.verify_panel.running)
        window.view.tabs.setCurrentIndex(2)
        window.view.mode.setCurrentIndex(window.view.mode.findData("directory"))
        window.start_replay()
        wait(app, lambda: not window.view.replay_panel.running)
        shot(app, window, out / "replay-4-differs.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
