"""`studypack init` reads what researchers keep (CITATION.cff, codemeta.json, LICENSE,
README, run scripts) and asks for what it cannot read, instead of guessing."""

from __future__ import annotations

import json
import shutil
import subprocess

from studypack.discover import discover_study, license_id, readme_title_and_paragraph
from studypack.spec import load_spec, spec_to_toml
from tests.support.helpers import STUDIES, run_cli


def cited_copy(tmp_path):
    study = tmp_path / "cited"
    shutil.copytree(STUDIES / "cited", study)
    return study


def test_citation_cff_gives_title_authors_license_keywords_version(tmp_path):
    found = discover_study(cited_copy(tmp_path))
    study = found.spec.study
    assert study.title == "Replication of the logistic map bifurcation diagram"
    assert study.version == "1.4.2" and study.license == "GPL-3.0-or-later"
    assert study.keywords == ["logistic map", "chaos", "replication"]
    first, second = study.authors
    assert (first.given, first.family, first.orcid, first.affiliation) == (
        "Emmy", "Noether", "0000-0002-1825-0097", "University of Göttingen")
    assert (second.given, second.family) == ("Grace", "Hopper")
    assert found.spec.runs[0].command == ["bash", "run.sh"]   # not the analysis.py it runs
    assert found.questions == []


def test_without_citation_the_license_file_readme_and_run_script_speak(tmp_path):
    study = cited_copy(tmp_path)
    (study / "CITATION.cff").unlink()
    (study / "README.md").write_text((study / "README.md").read_text().replace(
        "```\nbash run.sh\n```\n", ""))
    found = discover_study(study)
    assert found.spec.study.license == "GPL-3.0-or-later"       # from LICENSE, not CC-BY
    assert found.spec.study.title == "Logistic map, replicated"
    assert found.spec.study.description == (
        "This repository replicates the bifurcation diagram of the logistic map. It computes "
        "the long-run values of x for 400 values of r and writes them as a table.")
    assert found.spec.runs[0].command == ["bash", "run.sh"]
    assert found.found["command"] == "run.sh"
    assert found.spec.study.authors == []
    assert any(q.startswith("Who are the authors?") for q in found.questions)


def test_the_machines_global_git_config_is_never_the_author(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Someone Else Entirely\n")
    monkeypatch.setenv("HOME", str(home))
    study = tmp_path / "plain"
    study.mkdir()
    (study / "main.py").write_text("print(1)\n")
    subprocess.run(["git", "init", "-q"], cwd=study, check=True)
    found = discover_study(study)
    assert found.spec.study.authors == []
    assert found.spec.runs[0].command == ["python", "main.py"]


def test_nothing_to_run_is_a_question_not_a_guess(tmp_path):
    study = tmp_path / "empty"
    study.mkdir()
    (study / "a.py").write_text("")
    (study / "b.py").write_text("")
    found = discover_study(study)
    assert found.spec.runs[0].command == []
    assert any(q.startswith("Which command runs the study?") for q in found.questions)
    assert any(q.startswith("Under which license") for q in found.questions)
    result = run_cli("init", study)
    assert result.returncode == 0, result.stderr
    assert "? Which command runs the study? Set [run] command" in result.stderr
    # bracketed words are printed, not eaten as markup
    assert "Check the [run] command, the [data] and [outputs] paths" in result.stderr


def test_codemeta_json(tmp_path):
    study = tmp_path / "meta"
    study.mkdir()
    (study / "Makefile").write_text("all:\n\techo hi\n")
    (study / "codemeta.json").write_text(json.dumps({
        "@context": "https://w3id.org/codemeta/3.0", "name": "Soil carbon model",
        "description": "A model of soil carbon.", "version": "2.0",
        "license": "https://spdx.org/licenses/MIT", "keywords": "soil, carbon",
        "author": [{"givenName": "Ada", "familyName": "Lovelace",
                    "@id": "https://orcid.org/0000-0002-1825-0097",
                    "affiliation": {"name": "Analytical Engine Society"}}]}))
    spec = discover_study(study).spec
    assert (spec.study.title, spec.study.version, spec.study.license) == (
        "Soil carbon model", "2.0", "MIT")
    assert spec.study.keywords == ["soil", "carbon"]
    assert spec.study.authors[0].family == "Lovelace"
    assert spec.study.authors[0].orcid == "0000-0002-1825-0097"
    assert spec.runs[0].command == ["make"]


def test_readme_badges_images_and_html_are_not_the_description():
    text = ("<p align=center><img src=logo.png></p>\n"
            "[![CI](https://x/badge.svg)](https://x)\n\n"
            "Study of rods\n=============\n\n"
            "![figure](fig.png)\n\n"
            "We simulate heat on a [rod](https://en.wikipedia.org/wiki/Rod) with\n"
            "**explicit** finite differences. The result is a table.\n\n"
            "More text.\n")
    title, paragraph = readme_title_and_paragraph(text)
    assert title == "Study of rods"
    assert paragraph == ("We simulate heat on a rod with explicit finite differences. "
                         "The result is a table.")


def test_license_ids():
    assert license_id((STUDIES / "cited" / "LICENSE").read_text()) == "GPL-3.0-or-later"
    assert license_id("MIT License\n\nPermission is hereby granted, free of charge, to any "
                      "person") == "MIT"
    assert license_id("SPDX-License-Identifier: BSD-3-Clause\n") == "BSD-3-Clause"
    assert license_id("All rights reserved.") == ""


def test_the_written_spec_loads(tmp_path):
    study = cited_copy(tmp_path)
    result = run_cli("init", study)
    assert result.returncode == 0, result.stderr
    spec = load_spec(study)
    assert spec.study.authors[0].family == "Noether"
    assert "authors from CITATION.cff" in result.stderr


def test_a_replication_repository_readme(tmp_path):
    """Shaped like a ReScience replication: README.MD, the paper's Makefile in a
    subfolder, the command in inline code, a GPL whose body names the Affero GPL."""
    study = tmp_path / "replication"
    (study / "paper").mkdir(parents=True)
    (study / "paper" / "Makefile").write_text("all:\n\tlatexmk\n")
    (study / "reproduce.py").write_text("print('figures')\n")
    (study / "helpers.py").write_text("")
    (study / "LICENSE").write_text(
        (STUDIES / "cited" / "LICENSE").read_text() + "\n" * 40
        + "13. Use with the GNU Affero General Public License.\n")
    (study / "README.MD").write_text(
        "### Replication code\n\n#### Paper\n\nThe paper is in paper. To build it run\n\n"
        "```\ncd paper\nmake\n```\n\n#### Code\n\n"
        "This code redraws every figure of the article.\nFigures land in figures/\n\n"
        "To redraw one figure, e.g. figure 2:\n\n`python reproduce.py f2`\n")
    spec = discover_study(study).spec
    assert spec.study.title == "Replication code"
    assert spec.study.description == ("This code redraws every figure of the article. "
                                      "Figures land in figures/")
    assert spec.study.license == "GPL-3.0-or-later"
    assert spec.runs[0].command == ["python", "reproduce.py", "f2"]
    assert "authors = []" not in spec_to_toml(spec)
