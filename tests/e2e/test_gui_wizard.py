"""The bundle wizard, driven like a researcher would: from a study folder with no
studypack.toml to a finished, verified bundle — with a real ReproZip trace and a real
pack. Tasks run at once (Picard's habit) so each click has finished when it returns."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import hashlib
from pathlib import Path

import pytest

from studypack.bundle.reader import read_info, verify
from studypack.spec import load_spec

from tests.support.helpers import copy_example

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture
def bare_study(tmp_path, study_python) -> Path:
    """The example study as a researcher has it before studypack: no studypack.toml."""
    study = copy_example(tmp_path, study_python)
    (study / "studypack.toml").unlink()
    return study


def _next(wizard, qtbot, expected_page: str):
    assert wizard.currentPage().isComplete(), type(wizard.currentPage()).__name__
    wizard.next()
    assert type(wizard.currentPage()).__name__ == expected_page


def _to_run_page(wizard, qtbot, python):
    """From the Code page to the Run page, with the study's own interpreter chosen."""
    _next(wizard, qtbot, "DataPage")
    _next(wizard, qtbot, "EnvironmentPage")
    wizard.currentPage().python.setText(str(python))
    _next(wizard, qtbot, "RunPage")
    return wizard.currentPage()


def test_wizard_makes_a_verified_bundle_from_a_bare_study_folder(
        qtbot, immediate_tasks, bare_study, study_python, tmp_path):
    from studypack_gui.wizard import BundleWizard
    from studypack_gui.wizard.data_page import PACK
    wizard = BundleWizard(bare_study)
    qtbot.addWidget(wizard)
    wizard.show()

    # Folder: the folder is accepted; nothing is there yet
    assert "will write studypack.toml" in wizard.currentPage().found.text()
    _next(wizard, qtbot, "StudyPage")
    spec_file = bare_study / "studypack.toml"
    assert spec_file.exists(), "the spec is written as soon as the folder is accepted"

    # Study: defaults come from the README; an ORCID iD with a wrong check digit blocks Next
    study = wizard.currentPage()
    assert study.title_edit.text() == "Heat diffusion on a rod"
    assert study.name_edit.text() == "heat-diffusion"
    study.description.setPlainText("Heat diffusing along a rod.")
    study.authors.set_authors([])
    table = study.authors.table
    table.item(0, 0).setText("Ada Lovelace")
    table.item(0, 1).setText("0000-0002-1825-0096")
    assert not study.isComplete()
    assert "not valid" in study.authors.problem.text()
    table.item(0, 1).setText("0000-0002-1825-0097")
    table.item(0, 2).setText("Analytical Engine Society")
    assert study.isComplete()
    study.license.setCurrentText("CC0-1.0")
    study.keywords.setText("heat, diffusion")
    _next(wizard, qtbot, "CodePage")
    saved = load_spec(spec_file)
    assert saved.study.authors[0].orcid == "0000-0002-1825-0097"
    assert saved.study.license == "CC0-1.0" and saved.study.keywords == ["heat", "diffusion"]

    # Code: not a git repository (said so); the code files are listed
    code = wizard.currentPage()
    assert code.git.state == "warn" and "not a git repository" in code.git.text()
    listed = {code.files.topLevelItem(i).text(0) for i in range(code.files.topLevelItemCount())}
    assert "analysis.py" in listed and "data/initial.csv" not in listed
    _next(wizard, qtbot, "DataPage")

    # Data: the data folder was detected; both files are packed
    data = wizard.currentPage()
    assert set(data.sizes) == {"data/initial.csv", "data/material.json"}
    assert all(data.how(p) == PACK for p in data.sizes)
    assert "2 files packed" in data.total.text()
    _next(wizard, qtbot, "EnvironmentPage")

    # Environment: point it at the study's virtualenv; numpy shows in the lock preview
    env = wizard.currentPage()
    env.python.setText(str(study_python))
    env._detect()
    assert env.found.state == "ok" and "virtualenv" in env.found.text()
    assert "numpy==" in env.lock.toPlainText()
    _next(wizard, qtbot, "RunPage")

    # Run: the command was guessed; Next needs a real traced run and confirmed results
    run = wizard.currentPage()
    assert run.command.text() == "python analysis.py"
    run.command.setText("python analysis.py --steps 50")
    run.outputs.setText("results/")
    assert not run.isComplete()
    qtbot.mouseClick(run.run_button, __import__("PySide6.QtCore").QtCore.Qt.MouseButton.LeftButton)
    assert run.verdict.state == "ok", run.verdict.text()
    assert "exit code 0" in run.verdict.text()
    log = run.log.toPlainText()
    assert "python analysis.py --steps 50" in log
    found = {run.found.topLevelItem(i).text(0) for i in range(run.found.topLevelItemCount())}
    assert any(f.startswith("results/") for f in found), found
    assert not run.isComplete()
    run.confirm.setChecked(True)
    wizard.state.build_image = False        # keep the test off the Docker daemon
    _next(wizard, qtbot, "ImagePage")

    # Image: nothing happens before the user chooses; with the build off the packages
    # are locked with their hashes and vendored
    image = wizard.currentPage()
    assert not image.build.isChecked() and not image.isComplete()
    image.prepare.click()
    assert image.verdict.state == "ok", image.verdict.text()
    assert "pip lock" in image.messages.text() and "numpy" not in image.messages.text().split("not locked")[-1]
    assert image.isComplete()
    # changing an option asks for the environment to be prepared again
    image.save.setChecked(True)
    assert not image.isComplete()
    image.save.setChecked(False)
    image.build.setChecked(False)
    assert image.isComplete()
    _next(wizard, qtbot, "ReviewPage")

    review = wizard.currentPage()
    areas = [review.tree.topLevelItem(i).text(0) for i in range(review.tree.topLevelItemCount())]
    assert any(a.startswith("Code and input data") for a in areas)
    assert any(a.startswith("Results of the original run") for a in areas)
    assert "before compression" in review.total.text()
    _next(wizard, qtbot, "ExportPage")

    export = wizard.currentPage()
    out = tmp_path / "heat.studypack"
    export.path.setText(str(out))
    assert not export.isComplete()
    export.create_button.click()
    assert export.verdict.state == "ok", export.verdict.text()
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert export.checksum.text() == digest
    assert Path(f"{out}.sha256").read_text().split()[0] == digest
    assert export.show_folder.isEnabled() and export.isComplete()
    assert immediate_tasks == [], immediate_tasks

    # What a user checks: the bundle is intact and says what the wizard was told
    assert verify(out).ok
    meta = read_info(out).metadata
    assert meta["study"]["title"] == "Heat diffusion on a rod"
    assert meta["study"]["authors"][0]["orcid"] == "0000-0002-1825-0097"
    assert meta["runs"][0]["command"] == ["python", "analysis.py", "--steps", "50"]
    assert any(o.startswith("results/") for o in meta["outputs"])
    # and the CLI can make the same bundle again from the spec the wizard wrote
    again = load_spec(spec_file)
    assert again.runs[0].command == ["python", "analysis.py", "--steps", "50"]
    assert again.output_paths == ["results/"]
    assert again.environment.python == str(study_python)


@pytest.fixture
def bare_wizard(qtbot, immediate_tasks, bare_study):
    from studypack_gui.wizard import BundleWizard
    wizard = BundleWizard(bare_study)
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.next()
    study = wizard.currentPage()
    study.authors.set_authors([])
    study.authors.table.item(0, 0).setText("Ada Lovelace")
    wizard.next()
    return wizard


@pytest.mark.parametrize("with_url", [False, True])
def test_a_data_file_can_be_kept_by_reference_with_its_checksum(bare_wizard, qtbot,
                                                                immediate_tasks, with_url):
    from studypack_gui.wizard.data_page import REFERENCE
    wizard = bare_wizard
    _next(wizard, qtbot, "DataPage")
    data = wizard.currentPage()
    url = "https://example.org/initial.csv" if with_url else ""
    data.set_how("data/initial.csv", REFERENCE, url)
    assert "1 kept by reference" in data.total.text()
    wizard.next()
    spec = load_spec(wizard.state.folder / "studypack.toml")
    csv = wizard.state.folder / "data" / "initial.csv"
    if not with_url:
        assert type(wizard.currentPage()).__name__ == "DataPage", "no Next without a URL"
        assert "has no URL" in immediate_tasks[-1][1]
        assert spec.data_references == []
        return
    assert type(wizard.currentPage()).__name__ == "EnvironmentPage"
    ref, = spec.data_references
    assert (ref.path, ref.url, ref.size) == ("data/initial.csv", url, csv.stat().st_size)
    assert ref.sha256 == hashlib.sha256(csv.read_bytes()).hexdigest()


def test_deposit_from_the_export_page_publishes_and_writes_the_doi(qtbot, tmp_path,
                                                                  immediate_tasks, monkeypatch):
    """The Zenodo step, against the faithful fake Zenodo over loopback."""
    from types import SimpleNamespace

    from tests.support.deposit_bundles import make_bundle
    from studypack.spec import write_spec
    from studypack_gui.wizard import WizardState, export_page
    from tests.support.zenodo_server import FakeZenodo

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    bundle = make_bundle(tmp_path / "out", payload_bytes=200_000)
    study = tmp_path / "study"
    study.mkdir()
    (study / "README.md").write_text("# Soil carbon\n")
    state = WizardState(folder=study)
    from studypack.spec import detect_spec
    state.spec = detect_spec(study)
    state.spec_path = write_spec(state.spec, study / "studypack.toml")
    state.result = SimpleNamespace(path=bundle)
    page = export_page.ExportPage(state)
    qtbot.addWidget(page)
    questions = []
    monkeypatch.setattr(export_page, "confirm_publish",
                        lambda question, metadata: questions.append((question, metadata)) or True)
    with FakeZenodo() as server:
        server.add_token("gui-token-123456")
        page.site.addItem("test server", server.url)
        page.site.setCurrentIndex(page.site.count() - 1)
        page.token.setText("gui-token-123456")
        page.publish.setChecked(True)
        page.start_deposit()
        dep = next(iter(server.depositions.values()))
        assert dep.submitted and server.stored_bytes(dep.id, bundle.name) == bundle.read_bytes()
    (question, metadata), = questions
    assert "published" in question and "Soil carbon under cover crops" in metadata
    assert page.deposit_verdict.state == "ok" and dep.doi in page.deposit_verdict.text()
    assert load_spec(study / "studypack.toml").study.doi == dep.doi


@pytest.mark.docker
def test_the_image_page_builds_the_image_and_estimates_its_size(bare_wizard, qtbot,
                                                                study_python, base_image):
    wizard = bare_wizard
    run = _to_run_page(wizard, qtbot, study_python)
    run.outputs.setText("results/")
    run.start_run()
    run.confirm.setChecked(True)
    _next(wizard, qtbot, "ImagePage")
    image = wizard.currentPage()
    assert image.engine.state == "ok"
    image.base_image.setText(base_image)
    image.build.setChecked(True)
    image.prepare.click()
    assert image.verdict.state == "ok", image.verdict.text()
    dockerfile = image.dockerfile.toPlainText()
    repository = base_image.rsplit(":", 1)[0]
    assert f"FROM {repository}@sha256:" in dockerfile
    assert "Image built" in image.verdict.text()
    assert "about" in image.save.text() and "MB" in image.save.text()
    assert load_spec(wizard.state.folder / "studypack.toml").environment.base_image == base_image


def test_cancel_stops_a_traced_run_and_the_gui_stays_responsive(bare_wizard, qtbot,
                                                                 study_python):
    """Real worker threads here: the run goes on while the GUI thread handles events."""
    from studypack_gui import tasks
    wizard = bare_wizard
    run = _to_run_page(wizard, qtbot, study_python)
    run.command.setText('python -c "import time; print(\'started\', flush=True); time.sleep(120)"')
    tasks.set_immediate(False)
    run.start_run()
    assert run.busy and not run.isComplete()
    qtbot.waitUntil(lambda: "started" in run.log.toPlainText(), timeout=60000)
    assert run.panel.cancel_button.isVisible() and run.panel.cancel_button.isEnabled()
    run.panel.cancel_button.click()
    qtbot.waitUntil(lambda: not run.busy, timeout=30000)
    assert run.verdict.state == "warn" and "Cancelled" in run.verdict.text()
    assert wizard.state.trace is None and not run.isComplete()
    assert run.run_button.isEnabled()
