"""A first studypack.toml from what researchers already keep in a study folder.

``CITATION.cff`` and ``codemeta.json`` (title, authors with ORCID and affiliation,
license, keywords, version), the LICENSE file (as an SPDX id), README's first plain
paragraph, and the command from a README code block, run.sh, Makefile, Snakefile or the
one main script. What cannot be read from the folder is asked (a question in
:attr:`Discovery.questions`), never guessed; the machine's git config is not the author.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import UsageError
from .spec import (SPEC_NAME, Author, EnvironmentSpec, RunStep, StudyInfo, StudySpec,
                   orcid_is_valid, slugify)

_DATA_DIRS = ("data", "input", "inputs", "raw", "dataset", "datasets")
_OUTPUT_DIRS = ("results", "output", "outputs", "figures", "out")
_MAIN_SCRIPTS = ("analysis.py", "main.py", "run.py", "run_analysis.py", "pipeline.py")
_RUN_SCRIPTS = ("run.sh", "run_all.sh", "reproduce.sh", "run-all.sh", "main.sh")
_README_NAMES = ("README.md", "README.rst", "README.txt", "README")

# Words that identify a license text (all must occur), first match wins. Words in
# capitals are the license's title, looked for in its first lines only.
_LICENSE_TEXTS = [
    ("AGPL-3.0-or-later", ["GNU AFFERO GENERAL PUBLIC LICENSE", "Version 3"]),
    ("LGPL-3.0-or-later", ["GNU LESSER GENERAL PUBLIC LICENSE", "Version 3"]),
    ("LGPL-2.1-or-later", ["GNU LESSER GENERAL PUBLIC LICENSE", "Version 2.1"]),
    ("GPL-3.0-or-later", ["GNU GENERAL PUBLIC LICENSE", "Version 3"]),
    ("GPL-2.0-or-later", ["GNU GENERAL PUBLIC LICENSE", "Version 2"]),
    ("Apache-2.0", ["Apache License", "Version 2.0"]),
    ("MPL-2.0", ["Mozilla Public License", "2.0"]),
    ("CC-BY-SA-4.0", ["Attribution-ShareAlike 4.0 International"]),
    ("CC-BY-NC-4.0", ["Attribution-NonCommercial 4.0 International"]),
    ("CC-BY-4.0", ["Attribution 4.0 International"]),
    ("CC0-1.0", ["CC0 1.0 Universal"]),
    ("Unlicense", ["This is free and unencumbered software"]),
    ("BSD-3-Clause", ["Redistribution and use in source and binary forms",
                      "Neither the name"]),
    ("BSD-2-Clause", ["Redistribution and use in source and binary forms"]),
    ("ISC", ["Permission to use, copy, modify, and/or distribute this software"]),
    ("MIT", ["Permission is hereby granted, free of charge"]),
]


@dataclass
class Discovery:
    spec: StudySpec
    found: dict[str, str] = field(default_factory=dict)    # what -> the file it came from
    questions: list[str] = field(default_factory=list)     # what the user must answer


def discover_study(folder) -> Discovery:
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder.")
    names = {p.name for p in root.iterdir()}
    study = StudyInfo(name=slugify(root.name),
                      title=root.name.replace("-", " ").replace("_", " ").strip().capitalize(),
                      license="")
    found: dict[str, str] = {}
    questions: list[str] = []

    readme = next((root / n for want in _README_NAMES for n in sorted(names)
                   if n.lower() == want.lower()), None)
    readme_text = readme.read_text(encoding="utf-8", errors="replace") if readme else ""
    if readme_text:
        heading, paragraph = readme_title_and_paragraph(readme_text)
        if heading:
            study.title, found["title"] = heading, readme.name
        if paragraph:
            study.description, found["description"] = paragraph, readme.name
    license_file = next((root / n for n in sorted(names)
                         if re.match(r"^(LICEN[CS]E|COPYING)(\.(md|txt|rst))?$", n, re.I)), None)
    if license_file:
        spdx = license_id(license_file.read_text(encoding="utf-8", errors="replace"))
        if spdx:
            study.license, found["license"] = spdx, license_file.name
    if "codemeta.json" in names:
        _apply_codemeta(study, root / "codemeta.json", found)
    if "CITATION.cff" in names:   # the most explicit; read last so it wins
        _apply_citation(study, root / "CITATION.cff", found)

    if not study.authors:
        questions.append("Who are the authors? Add [[study.authors]] with given, family "
                         "and orcid (no CITATION.cff or codemeta.json names them).")
    if not study.license:
        questions.append("Under which license is the study published? Set [study] "
                         "license to an SPDX id, e.g. CC-BY-4.0 (no LICENSE file says).")
        study.license = "CC-BY-4.0"   # the spec's default, said rather than hidden
    command, source = find_command(root, names, readme_text)
    if command:
        found["command"] = source
    else:
        questions.append("Which command runs the study? Set [run] command, e.g. "
                         '["python", "analysis.py"] (no run script, Makefile, Snakefile, '
                         "README code block or single main script says).")
    env_kind = "venv" if {".venv", "venv"} & names else (
        "conda" if {"environment.yml", "environment.yaml"} & names else "auto")
    spec = StudySpec(
        study=study, runs=[RunStep(command=command)],
        data_paths=[d + "/" for d in _DATA_DIRS if (root / d).is_dir()],
        output_paths=[d + "/" for d in _OUTPUT_DIRS if (root / d).is_dir()],
        # the study's own virtualenv runs it, not whatever python is first on PATH
        environment=EnvironmentSpec(kind=env_kind, python=next(
            (f"{v}/bin/python" for v in (".venv", "venv")
             if (root / v / "bin" / "python").exists()), "")),
        path=root / SPEC_NAME)
    return Discovery(spec, found, questions)


# ------------------------------------------------------------------ README

_BADGE = re.compile(r"^\s*(\[!\[|!\[|<img|<a |<p |<div|<!--|\.\. image::|\.\. \|)", re.I)
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def readme_title_and_paragraph(text: str) -> tuple[str, str]:
    """The first heading, and the first paragraph of plain prose (badges, images, HTML
    and headings skipped; links reduced to their text). A paragraph that introduces a
    code block ("To compile the PDF run") says how, not what: the next one is taken."""
    lines = text.splitlines()
    title = ""
    paragraphs: list[tuple[list[str], bool]] = []   # (lines, followed by code)
    current: list[str] = []
    in_code = False

    def close(before_code: bool = False) -> None:
        nonlocal current
        if current:
            paragraphs.append((current, before_code))
        current = []

    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            if not in_code:
                if current:
                    close(before_code=True)
                elif paragraphs and not paragraphs[-1][1]:
                    paragraphs[-1] = (paragraphs[-1][0], True)
            in_code = not in_code
            continue
        if in_code:
            continue
        underline = i + 1 < len(lines) and re.fullmatch(r"[=\-~^]{3,}", lines[i + 1].strip())
        if stripped.startswith("#") or underline:
            close()
            if not title:
                title = stripped.lstrip("#").strip()
            continue
        if re.fullmatch(r"[=\-~^]{3,}", stripped) or not stripped or _BADGE.match(stripped) \
                or stripped.startswith(("|", ">", "- [", "    ")) or line.startswith("\t"):
            close()
            continue
        current.append(stripped)
    close()
    chosen = next((p for p, before_code in paragraphs
                   if not before_code and not p[-1].endswith(":")), [])
    prose = _MD_LINK.sub(r"\1", " ".join(chosen))
    prose = re.sub(r"[*_`]{1,2}([^*_`]+)[*_`]{1,2}", r"\1", prose)
    return title, re.sub(r"\s+", " ", prose).strip()


# ------------------------------------------------------------------ LICENSE

def license_id(text: str) -> str:
    """The SPDX id of a license text, or "" when it is not one studypack recognises.

    Only the head of the text is read: the GPL's own body names the Affero GPL, the
    Apache license names others, and so on."""
    spdx = re.search(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+-]+)", text)
    if spdx:
        return spdx.group(1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    title = " ".join(lines[:3]).lower()          # "GNU GENERAL PUBLIC LICENSE Version 3…"
    head = re.sub(r"\s+", " ", text[:1500]).lower()
    for spdx_id, words in _LICENSE_TEXTS:
        where = title if words[0].isupper() else head
        if all(w.lower() in where for w in words):
            return spdx_id
    return ""


# -------------------------------------------------------- CITATION.cff, codemeta

def _orcid(value) -> str:
    text = str(value or "").strip().rstrip("/")
    text = text.rsplit("/", 1)[-1]
    return text if orcid_is_valid(text) else ""


def _read_document(path: Path, parse) -> dict | None:
    """The file's mapping (YAML or JSON), or None when it cannot be read as one: a
    broken CITATION.cff is left for the user to fix, not a reason to stop."""
    try:
        doc = parse(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _take_texts(study: StudyInfo, doc: dict, fields: dict[str, str], source: str,
                found: dict) -> None:
    """Copy the document's text fields (its key -> the study's attribute) that are set."""
    for key, attribute in fields.items():
        if doc.get(key):
            setattr(study, attribute, str(doc[key]).strip())
            found[attribute] = source


def _apply_citation(study: StudyInfo, path: Path, found: dict) -> None:
    doc = _read_document(path, yaml.safe_load)
    if doc is None:
        return
    _take_texts(study, doc, {"title": "title", "abstract": "description",
                             "version": "version"}, path.name, found)
    license_value = doc.get("license")
    if isinstance(license_value, list):
        license_value = " OR ".join(map(str, license_value))
    if license_value:
        study.license, found["license"] = str(license_value), path.name
    if isinstance(doc.get("keywords"), list):
        study.keywords, found["keywords"] = [str(k) for k in doc["keywords"]], path.name
    authors = []
    for person in doc.get("authors") or []:
        if not isinstance(person, dict):
            continue
        family = str(person.get("family-names") or "").strip()
        given = str(person.get("given-names") or "").strip()
        name = "" if family else str(person.get("name") or "").strip()
        if family or name:
            authors.append(Author(name=name, given=given, family=family,
                                  orcid=_orcid(person.get("orcid")),
                                  affiliation=str(person.get("affiliation") or "").strip()))
    if authors:
        study.authors, found["authors"] = authors, path.name


def _apply_codemeta(study: StudyInfo, path: Path, found: dict) -> None:
    doc = _read_document(path, json.loads)
    if doc is None:
        return
    _take_texts(study, doc, {"name": "title", "description": "description",
                             "version": "version"}, path.name, found)
    license_value = doc.get("license")
    if isinstance(license_value, list):
        license_value = license_value[0] if license_value else ""
    if license_value:
        study.license = str(license_value).rstrip("/").rsplit("/", 1)[-1].removesuffix(".html")
        found["license"] = path.name
    keywords = doc.get("keywords")
    if isinstance(keywords, str):
        keywords = [k.strip() for k in keywords.split(",") if k.strip()]
    if isinstance(keywords, list) and keywords:
        study.keywords, found["keywords"] = [str(k) for k in keywords], path.name
    people = doc.get("author") or []
    authors = []
    for person in people if isinstance(people, list) else [people]:
        if not isinstance(person, dict):
            continue
        affiliation = person.get("affiliation")
        if isinstance(affiliation, dict):
            affiliation = affiliation.get("name") or affiliation.get("legalName")
        family = str(person.get("familyName") or "").strip()
        name = "" if family else str(person.get("name") or "").strip()
        if family or name:
            authors.append(Author(name=name, family=family,
                                  given=str(person.get("givenName") or "").strip(),
                                  orcid=_orcid(person.get("@id") or person.get("identifier")),
                                  affiliation=str(affiliation or "").strip()))
    if authors:
        study.authors, found["authors"] = authors, path.name


# ------------------------------------------------------------------ command

_RUNNERS = ("python", "python3", "bash", "sh", "make", "snakemake", "Rscript", "julia",
            "./")


def find_command(root: Path, names: set[str], readme_text: str) -> tuple[list[str], str]:
    """(command, where it came from), or ([], "") when nothing says how to run."""
    block = _readme_command(root, readme_text)
    if block:
        return block, "README"
    script = next((s for s in _RUN_SCRIPTS if s in names), None)
    if script:
        return ["bash", script], script
    if "Makefile" in names or "makefile" in names:
        return ["make"], "Makefile"
    if "Snakefile" in names:
        return ["snakemake", "--cores", "1"], "Snakefile"
    scripts = sorted(p for p in names if p.endswith(".py"))
    main = next((s for s in _MAIN_SCRIPTS if s in names),
                scripts[0] if len(scripts) == 1 else "")
    if main:
        return ["python", main], main
    return [], ""


def _readme_command(root: Path, text: str) -> list[str]:
    """The first line of a README code block that runs a file of the study (or make /
    snakemake), e.g. ``bash run.sh`` or ``python src/analysis.py --all``."""
    in_code = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if not in_code:
            continue
        stripped = stripped.removeprefix("$ ").strip()
        try:
            words = shlex.split(stripped)
        except ValueError:
            continue
        if not words or not words[0].startswith(_RUNNERS):
            continue
        if _runs_the_study(root, words):
            return words
    for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text):   # `python run.py all`
        try:
            words = shlex.split(span.strip().removeprefix("$ "))
        except ValueError:
            continue
        if words and words[0].startswith(_RUNNERS) and _runs_the_study(root, words):
            return words
    return []


def _runs_the_study(root: Path, words: list[str]) -> bool:
    """make / snakemake with their file at the study's top, or a runner naming a file of
    the study (a code block may well be `cd article && make` for the paper instead)."""
    if words[0] == "make":
        return (root / "Makefile").is_file() or (root / "makefile").is_file()
    if words[0] == "snakemake":
        return (root / "Snakefile").is_file()
    return any((root / w).is_file() for w in words[:3] if not w.startswith("-"))
