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


def _red_on_screen(wizard) -> list[str]:
    """Everything the wizard shows in red right now (a failure the user would see)."""
    from PySide6.QtWidgets import QLabel
    from studypack_gui.widgets import StatusLabel
    found = []
    for label in wizard.findChildren(QLabel):
        if not label.isVisibleTo(wizard) or not label.text().strip():
            continue
        if (isinstance(label, StatusLabel) and label.state == "bad") or "#cf222e" in label.styleSheet():
            found.append(label.text())
    return found


def _listed(tree) -> set[str]:
    return {tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())}


@pytest.mark.parametrize("shipped_spec", [True, False], ids=["shipped-toml", "no-toml"])
def test_a_study_that_never_ran_becomes_a_verified_bundle_page_by_page(
        qtbot, immediate_tasks, tmp_path, study_python, shipped_spec):
    """The example as a researcher has it before its first run: no results/ yet —
    with its shipped studypack.toml, and with none at all."""
    from PySide6.QtCore import Qt
    from studypack_gui import dialogs
    from studypack_gui.wizard import BundleWizard
    from studypack_gui.wizard.data_page import PACK
    study = copy_example(tmp_path, study_python)
    spec_file = study / "studypack.toml"
    if not shipped_spec:
        spec_file.unlink()
    shipped = spec_file.read_bytes() if shipped_spec else None
    assert not (study / "results").exists()
    wizard = BundleWizard(study)
    qtbot.addWidget(wizard)
    wizard.show()
    opened = []
    wizard.on_done_open = opened.append

    # Folder; the step list says where we are
    assert wizard.steps.current == 0
    assert ("already has" if shipped_spec else "A new study") in wizard.currentPage().found.text()
    _next(wizard, qtbot, "StudyPage")
    assert wizard.steps.current == 1 and "\u25b6 2. Study" in wizard.steps.labels[1].text()

    study_page = wizard.currentPage()
    assert study_page.title_edit.text() == "Heat diffusion on a rod"
    assert study_page.name_edit.text() == "heat-diffusion"
    if not shipped_spec:
        study_page.authors.set_authors([])
        study_page.authors.table.item(0, 0).setText("Lovelace, Ada")
        # the address form of an ORCID iD is accepted, and kept in its bare form
        study_page.authors.table.item(0, 1).setText("https://orcid.org/0000-0002-1825-0097")
    assert study_page.isComplete(), study_page.authors.problem.text()
    assert _red_on_screen(wizard) == []
    _next(wizard, qtbot, "CodePage")

    # Code: listed although results/ does not exist yet; said so, not in red
    code = wizard.currentPage()
    assert "analysis.py" in _listed(code.files)
    if shipped_spec:   # (a draft names only the results folders that exist)
        assert "results/ does not exist yet" in code.summary.text()
    assert code.git.state == "warn" and _red_on_screen(wizard) == []
    _next(wizard, qtbot, "DataPage")

    data = wizard.currentPage()
    assert set(data.sizes) == {"data/initial.csv", "data/material.json"}
    assert all(data.how(p) == PACK for p in data.sizes)
    assert _red_on_screen(wizard) == []
    _next(wizard, qtbot, "EnvironmentPage")

    env = wizard.currentPage()
    if not shipped_spec:
        env.python.setText(str(study_python))
        env._detect()
    assert env.found.state == "ok", env.found.text()
    assert "numpy==" in env.lock.toPlainText()
    _next(wizard, qtbot, "RunPage")

    run = wizard.currentPage()
    if shipped_spec:
        assert run.command.text() == "python analysis.py --steps 100"
    else:
        assert run.command.text() == "python analysis.py"
        run.outputs.setText("results/")
    run.command.setText("python analysis.py --steps 50")
    assert not run.isComplete()
    qtbot.mouseClick(run.run_button, Qt.MouseButton.LeftButton)
    assert run.verdict.state == "ok", run.verdict.text()
    assert any(f.startswith("results/") for f in _listed(run.found))
    run.confirm.setChecked(True)
    # nothing is written into the study's folder before the user saves
    assert (spec_file.read_bytes() if spec_file.exists() else None) == shipped

    # Back after the run: the pages list again what is there now
    for page in ("EnvironmentPage", "DataPage", "CodePage"):
        wizard.back()
        assert type(wizard.currentPage()).__name__ == page
    assert "analysis.py" in _listed(code.files)
    assert "does not exist yet" not in code.summary.text()
    assert wizard.steps.current == 2
    for page in ("DataPage", "EnvironmentPage", "RunPage"):
        _next(wizard, qtbot, page)
    assert run.isComplete(), "the traced run survives a look back"
    wizard.state.build_image = False        # keep this test off the Docker daemon
    _next(wizard, qtbot, "ImagePage")

    image = wizard.currentPage()
    image.build.setChecked(False)
    image.prepare.click()
    assert image.verdict.state == "ok", image.verdict.text()
    _next(wizard, qtbot, "ReviewPage")

    review = wizard.currentPage()
    areas = [review.tree.topLevelItem(i).text(0) for i in range(review.tree.topLevelItemCount())]
    assert any(a.startswith("Results of the original run") for a in areas)
    assert "Nothing has been written yet" in review.subTitle()
    _next(wizard, qtbot, "ExportPage")

    export = wizard.currentPage()
    assert Path(export.path.text()) == tmp_path / "heat-diffusion.studypack"
    export.create_button.click()
    assert export.verdict.state == "ok", export.verdict.text()
    out = Path(export.path.text())
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert export.checksum.text() == digest
    assert Path(f"{out}.sha256").read_text().split()[0] == digest
    assert immediate_tasks == [], immediate_tasks
    assert _red_on_screen(wizard) == []

    # Done offers to open the new bundle
    dialogs.answers.append("Open it")
    wizard.accept()
    assert opened == [out]
    assert dialogs.questions[-1][0] == "Bundle written"

    assert verify(out).ok
    meta = read_info(out).metadata
    assert meta["runs"][0]["command"] == ["python", "analysis.py", "--steps", "50"]
    assert meta["study"]["authors"][0]["orcid"] == "0000-0002-1825-0097"
    assert any(o.startswith("results/") for o in meta["outputs"])
    # the spec was saved with the bundle, as the user answered
    again = load_spec(spec_file)
    assert again.runs[0].command == ["python", "analysis.py", "--steps", "50"]
    assert again.output_paths == ["results/"]


@pytest.fixture
def bare_wizard(qtbot, immediate_tasks, bare_study):
    from studypack_gui.wizard import BundleWizard
    wizard = BundleWizard(bare_study)
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.next()
    study = wizard.currentPage()
    study.authors.set_authors([])
    study.authors.table.item(0, 0).setText("Lovelace, Ada")
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
    wizard.state.save()   # what Create the bundle (or Save on leaving) writes
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


def _export_page(qtbot, tmp_path, monkeypatch, payload_bytes: int):
    """(the Write page of a fresh study, with a written deposit bundle; the study folder)."""
    from tests.support.deposit_bundles import make_bundle
    from studypack.spec import detect_spec, write_spec
    from studypack_gui.backend import BundleWritten
    from studypack_gui.wizard import WizardState, export_page

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    bundle = make_bundle(tmp_path / "out", payload_bytes=payload_bytes)
    study = tmp_path / "study"
    study.mkdir()
    (study / "README.md").write_text("# Soil carbon\n")
    (study / "analysis.py").write_text("print(1)\n")   # init asks, never guesses, a command
    state = WizardState(folder=study)
    state.spec = detect_spec(study)
    write_spec(state.spec, study / "studypack.toml")
    state.result = BundleWritten(path=bundle, sha256="", size=0, files=0)
    page = export_page.ExportPage(state)
    qtbot.addWidget(page)
    return page, study


def _to_server(page, server) -> None:
    """The page deposits, published, on the fake Zenodo with a token it accepts."""
    server.add_token("gui-token-123456")
    page.site.addItem("test server", server.url)
    page.site.setCurrentIndex(page.site.count() - 1)
    page.token.setText("gui-token-123456")
    page.publish.setChecked(True)


def test_deposit_from_the_export_page_publishes_and_writes_the_doi(qtbot, tmp_path,
                                                                  immediate_tasks, monkeypatch):
    """The Zenodo step, against the faithful fake Zenodo over loopback."""
    from studypack_gui.wizard import export_page
    from tests.support.zenodo_server import FakeZenodo

    page, study = _export_page(qtbot, tmp_path, monkeypatch, payload_bytes=200_000)
    bundle = page.state.result.path
    questions = []
    monkeypatch.setattr(export_page, "confirm_publish",
                        lambda question, metadata: questions.append((question, metadata)) or True)
    with FakeZenodo() as server:
        _to_server(page, server)
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
    assert wizard.state.spec.environment.base_image == base_image
    assert not (wizard.state.folder / "studypack.toml").exists(), "saved only when asked"


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


# ------------------------------------------------------------------ leaving, Back, size

def _edit_title(wizard, qtbot, title: str):
    _next(wizard, qtbot, "StudyPage")
    wizard.currentPage().title_edit.setText(title)


@pytest.mark.parametrize("key", ["cancel", "escape"])
def test_leaving_with_unsaved_edits_asks_and_keep_working_keeps_everything(
        qtbot, immediate_tasks, example_study, key):
    from PySide6.QtCore import Qt
    from studypack_gui import dialogs
    from studypack_gui.wizard import BundleWizard
    spec_file = example_study / "studypack.toml"
    before = spec_file.read_bytes()
    wizard = BundleWizard(example_study)
    qtbot.addWidget(wizard)
    wizard.show()
    _edit_title(wizard, qtbot, "Heat on a longer rod")

    def leave():
        if key == "cancel":
            wizard.reject()
        else:
            qtbot.keyClick(wizard, Qt.Key.Key_Escape)

    dialogs.answers.append("Keep working")
    leave()
    (title, text, choices), = dialogs.questions
    assert "not saved" in text and choices == ["Save and close", "Close without saving",
                                                "Keep working"]
    assert wizard.isVisible() and wizard.currentPage().title_edit.text() == "Heat on a longer rod"
    dialogs.answers.append("Close without saving")
    leave()
    assert not wizard.isVisible()
    assert spec_file.read_bytes() == before


def test_save_and_close_writes_what_the_user_typed(qtbot, immediate_tasks, example_study):
    from studypack_gui import dialogs
    from studypack_gui.wizard import BundleWizard
    wizard = BundleWizard(example_study)
    qtbot.addWidget(wizard)
    wizard.show()
    _edit_title(wizard, qtbot, "Heat on a longer rod")
    dialogs.answers.append("Save and close")
    wizard.reject()
    assert not wizard.isVisible()
    assert load_spec(example_study / "studypack.toml").study.title == "Heat on a longer rod"


def test_closing_during_a_traced_run_asks_stops_it_and_writes_no_test_command(
        bare_wizard, qtbot, study_python):
    from PySide6.QtCore import Qt
    from studypack_gui import dialogs, tasks
    wizard = bare_wizard
    run = _to_run_page(wizard, qtbot, study_python)
    run.command.setText('python -c "import time; print(\'started\', flush=True); time.sleep(120)"')
    tasks.set_immediate(False)
    run.start_run()
    qtbot.waitUntil(lambda: "started" in run.log.toPlainText(), timeout=60000)
    session_dir = wizard.state.session.work
    dialogs.answers.append("Keep working")
    qtbot.keyClick(wizard, Qt.Key.Key_Escape)
    assert wizard.isVisible() and run.busy, "Keep working leaves the run running"
    assert "Still running: the traced run" in dialogs.questions[-1][1]
    dialogs.answers.append("Close without saving")
    qtbot.keyClick(wizard, Qt.Key.Key_Escape)
    assert not wizard.isVisible()
    qtbot.waitUntil(lambda: not run.busy, timeout=30000)
    qtbot.waitUntil(lambda: not session_dir.exists(), timeout=10000)
    assert not (wizard.state.folder / "studypack.toml").exists()


def test_back_during_packing_cancels_it_and_the_old_bundle_stays(
        bare_wizard, qtbot, study_python, tmp_path, monkeypatch):
    """Real worker threads; Back is pressed as soon as the pack reports progress."""
    import os

    from studypack_gui import tasks
    wizard = bare_wizard
    (wizard.state.folder / "data" / "big.bin").write_bytes(os.urandom(80 * 1024 * 1024))
    run = _to_run_page(wizard, qtbot, study_python)
    run.outputs.setText("results/")
    run.start_run()
    run.confirm.setChecked(True)
    wizard.state.build_image = False
    _next(wizard, qtbot, "ImagePage")
    wizard.currentPage().build.setChecked(False)
    wizard.currentPage().prepare.click()
    _next(wizard, qtbot, "ReviewPage")
    _next(wizard, qtbot, "ExportPage")
    export = wizard.currentPage()
    out = tmp_path / "earlier.studypack"
    out.write_bytes(b"the bundle made last week")
    export.path.setText(str(out))
    export.overwrite.setChecked(True)

    pressed = []
    shown = export.panel.progressed

    def press_back_once_packing(progress):
        shown(progress)
        if progress.phase == "pack" and not pressed:
            pressed.append(progress)
            wizard.back()

    monkeypatch.setattr(export.panel, "progressed", press_back_once_packing)
    tasks.set_immediate(False)
    export.create_button.click()
    qtbot.waitUntil(lambda: bool(pressed), timeout=60000)
    assert type(wizard.currentPage()).__name__ == "ReviewPage"
    qtbot.waitUntil(lambda: not export.busy and not wizard.currentPage().busy, timeout=60000)
    assert out.read_bytes() == b"the bundle made last week"
    assert export.verdict.state == "warn" and "no bundle was written" in export.verdict.text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("earlier")) == \
        ["earlier.studypack"], "no partial file left beside it"
    assert wizard.state.result is None
    assert "Nothing has been written yet" in wizard.currentPage().subTitle()


def test_enter_in_leave_out_moves_on(bare_wizard, qtbot):
    from PySide6.QtCore import Qt
    wizard = bare_wizard
    code = wizard.currentPage()
    code.excludes.setFocus()
    qtbot.keyClicks(code.excludes, "*.log")
    qtbot.keyClick(code.excludes, Qt.Key.Key_Return)
    assert type(wizard.currentPage()).__name__ == "DataPage"
    assert wizard.state.spec.exclude == ["*.log"]


def test_every_page_fits_a_1024_by_600_screen(qtbot, immediate_tasks, example_study):
    from studypack_gui.wizard import BundleWizard
    from PySide6.QtWidgets import QWizard
    wizard = BundleWizard(example_study)
    qtbot.addWidget(wizard)
    wizard.resize(1024, 560)   # 600 minus a title bar
    wizard.show()
    hint = wizard.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 560, hint
    for _ in range(3):
        for which in (QWizard.WizardButton.NextButton, QWizard.WizardButton.CancelButton):
            button = wizard.button(which)
            corner = button.mapTo(wizard, button.rect().bottomRight())
            assert wizard.rect().contains(corner), (type(wizard.currentPage()).__name__, corner)
        wizard.next()


def test_deposit_choices_are_checked_locally_sent_and_a_pending_version_can_be_discarded(
        qtbot, tmp_path, immediate_tasks, monkeypatch):
    """Upload type, communities and the paper's DOI from the page; a bad community is
    refused before anything is sent; a new version blocked by a draft open on Zenodo is
    deposited once the user ticks "discard the pending draft"."""
    from tests.support.deposit_bundles import make_bundle
    from studypack_gui.backend import BundleWritten
    from studypack_gui.wizard import export_page
    from tests.support.zenodo_server import FakeZenodo

    page, study = _export_page(qtbot, tmp_path, monkeypatch, payload_bytes=2000)
    state = page.state
    page.deposit_ready()
    monkeypatch.setattr(export_page, "confirm_publish", lambda question, metadata: True)
    with FakeZenodo() as server:
        _to_server(page, server)
        assert not page.new_version.isVisible() and not page.discard_pending.isVisible()
        # a local check, before upload
        page.communities.setText("Bad Community!")
        assert page.checks.state == "bad" and "'Bad Community!'" in page.checks.text()
        page.start_deposit()
        assert not server.depositions and "Nothing was sent" in page.deposit_verdict.text()
        # the choices go out, and into studypack.toml
        page.communities.setText("my-lab")
        page.upload_type.setCurrentIndex(page.upload_type.findData("software"))
        page.paper_doi.setText("10.1234/journal.paper.42")
        assert page.checks.state == "ok"
        page.start_deposit()
        assert page.deposit_verdict.state == "ok", page.deposit_verdict.text()
        first = next(iter(server.depositions.values()))
        sent = str(first.metadata)
        assert "software" in sent and "my-lab" in sent and "10.1234/journal.paper.42" in sent
        saved = load_spec(study / "studypack.toml").study
        assert saved.upload_type == "software" and saved.communities == ["my-lab"]
        assert saved.related[0]["identifier"] == "10.1234/journal.paper.42"
        assert saved.doi == first.doi
        # a new version, while one with other files is open on the website
        pending = server.open_new_version(first.id)
        server.add_draft_file(pending.id, "notes.txt", b"added on the website")
        state.result = BundleWritten(path=make_bundle(tmp_path / "v2", payload_bytes=2000,
                                                      version="2.0"), sha256="", size=0, files=0)
        page.deposit_ready()
        assert page.new_version.isVisibleTo(page) and first.doi in page.new_version.text()
        page.new_version.setChecked(True)
        page.start_deposit()
        assert page.deposit_verdict.state == "bad" and "Discard the pending" in \
            page.deposit_verdict.text()
        assert page.discard_pending.isVisibleTo(page) and pending.id in server.depositions
        page.discard_pending.setChecked(True)
        page.start_deposit()
        assert page.deposit_verdict.state == "ok", page.deposit_verdict.text()
        assert pending.id not in server.depositions


def test_the_authors_table_keeps_an_affiliations_web_page(qtbot):
    """Not a column, but editing a row must not drop it (RO-Crate names it)."""
    from studypack_gui.backend import Author
    from studypack_gui.wizard.study_page import AuthorsTable
    table = AuthorsTable(lambda: None)
    qtbot.addWidget(table)
    table.set_authors([Author(given="Ada", family="Lovelace", affiliation="Engine Society",
                              affiliation_url="https://engine.example.org/")])
    table.table.item(0, 2).setText("Analytical Engine Society")
    author, = table.authors()
    assert (author.family, author.affiliation, author.affiliation_url) == (
        "Lovelace", "Analytical Engine Society", "https://engine.example.org/")


def test_the_environment_page_plans_before_the_run_and_can_lock_everything(
        bare_wizard, qtbot, study_python):
    """The create session's plan step runs on the page (seconds, no traced run): what it
    finds is shown, a missing wheelhouse is found before the run; the lock switch maps to
    [environment] lock; Debian and R packages have tabs of their own."""
    wizard = bare_wizard
    _next(wizard, qtbot, "DataPage")
    _next(wizard, qtbot, "EnvironmentPage")
    env = wizard.currentPage()
    env.python.setText(str(study_python))
    env._detect()
    assert env.checks.state == "ok", env.checks.text()
    assert "Checked before the run" in env.checks.text() and "data files to pack" in \
        env.checks.text()
    assert wizard.state.session is not None and wizard.state.session.core.planned is not None
    assert not wizard.state.session.traced, "planned, not run"
    tabs = [env.tabs.tabText(i).replace("&", "") for i in range(env.tabs.count())]
    assert tabs == ["Python packages", "Debian packages", "R packages"]
    assert "Not part of this study" in env.sections["r"].toPlainText()
    assert env.sections["debian"].toPlainText().strip()
    assert wizard.state.spec.environment.lock == "used"
    env.lock_all.setChecked(True)   # detects and plans again
    assert wizard.state.spec.environment.lock == "all"
    assert env.checks.state == "ok", env.checks.text()
    # a wheelhouse that is not there costs seconds, not a run
    wizard.state.spec.environment.find_links = ["no-such-wheelhouse"]
    env._detect()
    assert env.checks.state == "bad" and "no-such-wheelhouse" in env.checks.text()
    assert not wizard.state.session.traced


@pytest.mark.docker
def test_the_image_page_builds_a_debian_base_image_when_none_can_be_pulled(
        qtbot, immediate_tasks, base_image, tmp_path):
    """The core's make_base_image, in a worker with progress: the offer appears when the
    core says the default base image cannot be pulled; the image made (here: found
    already made, the tests' shared one) becomes the page's base image."""
    from studypack_gui import backend
    from studypack_gui.wizard import WizardState
    from studypack_gui.wizard.image_page import ImagePage
    from studypack.spec import detect_spec
    (tmp_path / "analysis.py").write_text("print(1)\n")
    state = WizardState(folder=tmp_path)
    state.spec = detect_spec(tmp_path)
    page = ImagePage(state)
    qtbot.addWidget(page)
    said = ("The base image python:3.11-slim is not on this machine and cannot be pulled "
            "(no network). The bundle has no Dockerfile and no image. Make a base image from "
            "the Debian mirror with `studypack base-image --debian bookworm` (Python 3.11), "
            "then create again")
    assert backend.base_image_suite([said]) == "bookworm"
    assert backend.base_image_suite(["the image was built"]) == ""
    page.offer_base_image("")
    assert page.make_base.isHidden()
    page.offer_base_image("bookworm")
    assert not page.make_base.isHidden() and "bookworm" in page.make_base.text()
    page.base_image_ref = base_image
    page.make_base.click()
    assert page.verdict.state == "ok", page.verdict.text()
    assert page.base_image.text() == base_image == state.spec.environment.base_image
    assert page.make_base.isHidden() and page.prepare.isEnabled()
