"""The GUI's facade (studypack_gui.backend): the only door from the app to the core,
and where core sentences written for a terminal become sentences about controls."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from studypack_gui import backend

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "ui"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted(p for p in UI.rglob("*.py") if p.name != "backend.py"),
                         ids=lambda p: p.relative_to(UI).as_posix())
def test_pages_and_windows_reach_the_core_only_through_the_facade(path):
    core = sorted(m for m in _imports(path) if m == "studypack" or m.startswith("studypack."))
    assert core == [], f"{path.name} imports {core}: go through studypack_gui.backend"


def test_the_wizard_state_is_typed():
    from dataclasses import fields

    from studypack_gui.wizard import WizardState
    untyped = [f.name for f in fields(WizardState) if "Any" in str(f.type)]
    assert untyped == []


@pytest.mark.parametrize("core_hint, gui_words", [
    ("Choose another name with -o, or pass --force to replace it.", "Replace the file if it exists"),
    ("Fix the study and try again, or pass --allow-failure to pack the failed run.", "Run page"),
    ("Pull or load it first, or choose a local image with --base-image REF.", "Base image"),
    ("Modes here \u2014 image: no. Try --mode trace.", "\u201ctrace\u201d in the Mode list"),
    ("Review it on Zenodo (or run again with --publish).", "Publish now"),
    ("the image was not built: --no-image was given", "Build the image now"),
])
def test_command_line_hints_become_the_control_that_does_it(core_hint, gui_words):
    shown = backend.gui_wording(core_hint)
    assert gui_words in shown
    assert not backend.names_flag(shown), shown


def _error_texts(path: Path):
    """The string parts of every ``SomethingError(...)`` call in a core module."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(
                node.func, "attr", "")).endswith("Error"):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                text = "".join(sub.value for sub in ast.walk(arg)
                               if isinstance(sub, ast.Constant) and isinstance(sub.value, str))
                yield node.lineno, text


# Only the command line reaches these: the app does not sign, fetch by DOI, or replay
# with inputs of one's own.
CLI_ONLY = {"signing.py", "study.py", "fetch.py"}


def test_every_core_error_the_app_can_show_is_reworded_without_a_flag():
    unmapped = []
    for path in sorted((REPO / "studypack").rglob("*.py")):
        if "cli" in path.parts or path.name in CLI_ONLY:
            continue
        for line, text in _error_texts(path):
            if backend.names_flag(backend.gui_wording_table_only(text)):
                unmapped.append(f"{path.relative_to(REPO)}:{line}: {text[:90]}")
    assert unmapped == []


def test_an_unmapped_flag_is_dropped_with_its_sentence_not_shown():
    shown = backend.gui_wording("It failed. Run again with --frobnicate. The files are kept.")
    assert shown == "It failed. The files are kept."


@pytest.mark.parametrize("typed, bare", [
    ("0000-0002-1825-0097", "0000-0002-1825-0097"),
    ("https://orcid.org/0000-0002-1825-0097", "0000-0002-1825-0097"),
    ("http://orcid.org/0000-0002-1825-0097/", "0000-0002-1825-0097"),
    ("orcid.org/0000-0001-5109-3700", "0000-0001-5109-3700"),
    ("0000000218250097", "0000-0002-1825-0097"),
    ("", ""),
])
def test_an_orcid_is_accepted_bare_or_as_its_address(typed, bare):
    assert backend.parse_orcid(typed) == (bare, None)


@pytest.mark.parametrize("typed, says", [
    ("12345", "16 digits"),
    ("0000-0002-1825-00970", "this one has 17"),
    ("https://orcid.org/0000-0002-1825", "this one has 12"),
    ("0000-0002-1825-0096", "check digit"),
    ("0000-000A-1825-0097", "only digits"),
])
def test_a_wrong_orcid_says_what_is_wrong(typed, says):
    _bare, problem = backend.parse_orcid(typed)
    assert problem and says in problem
    if "check digit" not in says:
        assert "check digit" not in problem   # a length or a letter is not a check digit


def test_names_and_titles_say_why_they_are_refused():
    assert backend.name_problem("heat-diffusion") is None
    assert "Type a short name" in backend.name_problem("  ")
    assert "'é'" in backend.name_problem("chaleur-été") and "' '" in backend.name_problem("a b")
    assert "start with a letter or a digit" in backend.name_problem("-x")
    assert "64 at most" in backend.name_problem("a" * 65)
    assert backend.title_problem("") and backend.title_problem("Heat") is None


def test_a_missing_results_folder_is_listed_not_an_error(tmp_path):
    study = tmp_path / "study"
    (study / "data").mkdir(parents=True)
    (study / "analysis.py").write_text("print(1)\n")
    (study / "data" / "in.csv").write_text("1\n")
    spec = backend.detect_spec(study)
    spec.output_paths = ["results/"]
    plan = backend.plan_files(spec)
    assert plan.missing == ["results/"]
    assert [f.relpath for f in plan.code] == ["analysis.py"]
    assert [f.relpath for f in plan.data] == ["data/in.csv"]


def test_old_replay_folders_go_by_the_stated_rule(tmp_path):
    import os
    import time
    base = tmp_path / "replays"
    now = time.time()
    ages = {"a-new": 0, "b-day": 1, "c-days": 2, "d-week": 7, "e-month": 30}
    for name, days in ages.items():
        folder = base / name / "study"
        folder.mkdir(parents=True)
        (folder / "out.txt").write_bytes(b"x" * 1000)
        os.chmod(folder / "out.txt", 0o444)
        os.chmod(folder, 0o555)   # read-only, as a replayed system can be
        os.utime(base / name, (now - days * 86400, now - days * 86400))
    removed, freed = backend.remove_replays(base, keep=backend.KEEP_REPLAYS - 1,
                                            older_than_days=backend.KEEP_DAYS)
    left = [f.path.name for f in backend.list_replays(base)]
    assert left == ["a-new", "b-day"]
    assert removed == 3 and freed == 3000
    assert backend.remove_replays(base, keep=0) == (2, 2000)
    assert backend.list_replays(base) == []
