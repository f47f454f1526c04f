"""The study description, ``studypack.toml``: load, validate, detect, write.

Both the wizard and the CLI read and write this file; the wizard is a guided editor
of it. Every problem is reported as one sentence naming the key and the file:line.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from .citation import (COMMUNITY_RE, UPLOAD_TYPES, date_problem, identifier_is_known,
                       name_fix_hint, relation_of, split_name)
from .errors import SpecError, UsageError

SPEC_NAME = "studypack.toml"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ORCID_RE = re.compile(r"^(\d{4})-(\d{4})-(\d{4})-(\d{3}[\dX])$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

# Files and folders that are never part of a study's code.
DEFAULT_EXCLUDES = [
    ".git", ".hg", ".svn", "__pycache__", "*.pyc", ".ipynb_checkpoints", ".venv", "venv",
    ".env", ".tox", ".mypy_cache", ".pytest_cache", "*.studypack", "*.studypack.sha256",
    "*.studypack.minisig", ".DS_Store", ".studypack-trace",
]

COMMON_LICENSES = [
    "CC-BY-4.0", "CC0-1.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "MIT", "Apache-2.0",
    "BSD-3-Clause", "GPL-3.0-or-later", "LGPL-3.0-or-later", "MPL-2.0", "ODbL-1.0",
]


@dataclass
class Author:
    """A person as cited: ``given`` and ``family`` names, or ``name`` = "Family, Given"."""

    name: str = ""
    orcid: str = ""
    affiliation: str = ""
    given: str = ""
    family: str = ""
    affiliation_url: str = ""   # the organisation's web page or ROR id (RO-Crate)

    def family_given(self) -> tuple[str, str] | None:
        """(family, given) — given may be "" for a person with one name — or None when
        the names are not known apart (a ``name`` without exactly one comma)."""
        if self.family.strip():
            return self.family.strip(), self.given.strip()
        return split_name(self.name)

    @property
    def display_name(self) -> str:
        """"Ada Lovelace" for people and lists; ``name`` as written when not split."""
        parts = self.family_given()
        if parts is None:
            return self.name.strip()
        family, given = parts
        return f"{given} {family}".strip()

    @property
    def citation_name(self) -> str | None:
        """"Lovelace, Ada", as Zenodo and DataCite want it; None when not known apart."""
        parts = self.family_given()
        if parts is None:
            return None
        family, given = parts
        return f"{family}, {given}" if given else family


@dataclass
class StudyInfo:
    name: str
    title: str
    description: str = ""
    license: str = "CC-BY-4.0"
    keywords: list[str] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    version: str = ""
    doi: str = ""                      # written back after a Zenodo deposit
    related: list[dict] = field(default_factory=list)   # e.g. the paper's DOI (+ relation)
    upload_type: str = ""              # Zenodo upload type; "" = dataset
    communities: list[str] = field(default_factory=list)   # Zenodo community ids
    publication_date: str = ""         # YYYY-MM-DD; "" = the day it is published

    def unsplit_authors(self) -> list[Author]:
        """Authors whose given and family names are not known apart: Zenodo would cite
        each whole name as a family name. Asked about, never guessed."""
        return [a for a in self.authors if a.family_given() is None]

    def name_warnings(self) -> list[str]:
        """One sentence (with the fix) per author whose names are not known apart."""
        return [f"The author name {a.name!r} does not say which part is the family name, "
                f"so a citation would get it wrong. {name_fix_hint(a.name)}"
                for a in self.unsplit_authors()]


@dataclass
class RunStep:
    command: list[str]
    workdir: str = "."


@dataclass
class DataReference:
    """Input data kept outside the bundle (BagIt fetch.txt) and fetched at replay."""

    path: str
    url: str
    size: int
    sha256: str


@dataclass
class CompareRule:
    path: str                          # glob relative to the study root
    rel_tol: float | None = None
    abs_tol: float | None = None
    ignore: bool = False               # e.g. a log file with a timestamp
    columns: list[str] = field(default_factory=list)


@dataclass
class EnvironmentSpec:
    kind: str = "auto"                 # auto | venv | conda | system
    python: str = ""                   # interpreter to trace with, if not found on PATH
    base_image: str = ""               # e.g. "python:3.11-slim"; pinned by digest at create
    allow_env: list[str] = field(default_factory=list)   # variables kept though they look secret
    keep_env: list[str] = field(default_factory=list)    # extra variables to record
    find_links: list[str] = field(default_factory=list)  # wheelhouses to vendor from first
    lock: str = "used"                 # used: what the traced run used | all: everything


@dataclass
class StudySpec:
    study: StudyInfo
    runs: list[RunStep]
    data_paths: list[str] = field(default_factory=list)
    data_references: list[DataReference] = field(default_factory=list)
    output_paths: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    environment: EnvironmentSpec = field(default_factory=EnvironmentSpec)
    compare_rel_tol: float | None = None
    compare_abs_tol: float | None = None
    compare_rules: list[CompareRule] = field(default_factory=list)
    path: Path | None = None           # the spec file; its folder is the study root

    @property
    def root(self) -> Path:
        if self.path is None:
            raise UsageError("This study has not been saved to a studypack.toml yet.")
        return self.path.parent

    @property
    def excludes(self) -> list[str]:
        return DEFAULT_EXCLUDES + self.exclude

    def to_dict(self) -> dict[str, Any]:
        """The TOML document, without empty optional keys."""
        study = _prune(asdict(self.study))
        if self.study.authors:
            study["authors"] = [_prune(a) for a in study["authors"]]
        if study.get("related"):
            study["related"] = [_prune(r) for r in study["related"]]
        doc: dict[str, Any] = {"study": study}
        if len(self.runs) == 1:
            doc["run"] = _prune(asdict(self.runs[0]))
        else:
            doc["runs"] = [_prune(asdict(r)) for r in self.runs]
        data: dict[str, Any] = {"paths": list(self.data_paths)}
        if self.data_references:
            data["references"] = [asdict(r) for r in self.data_references]
        doc["data"] = data
        doc["outputs"] = {"paths": list(self.output_paths)}
        if self.exclude:
            doc["exclude"] = {"paths": list(self.exclude)}
        env = _prune(asdict(self.environment))
        if env.get("lock") == "used":
            env.pop("lock")    # the default
        if env and env != {"kind": "auto"}:
            doc["environment"] = env
        compare = _prune({"rel_tol": self.compare_rel_tol, "abs_tol": self.compare_abs_tol})
        if self.compare_rules:
            compare["rules"] = [_prune(asdict(r)) for r in self.compare_rules]
        if compare:
            doc["compare"] = compare
        return doc


def _prune(d: dict) -> dict:
    return {k: v for k, v in d.items() if v not in ("", None, [], {})}


# --------------------------------------------------------------------------- load

_KNOWN = {
    "": {"study", "run", "runs", "data", "outputs", "exclude", "environment", "compare"},
    "study": {"name", "title", "description", "license", "keywords", "authors", "version",
              "doi", "related", "related_identifiers", "upload_type", "communities",
              "publication_date"},
    "study.authors": {"name", "given", "family", "orcid", "affiliation", "affiliation_url"},
    "study.related": {"identifier", "relation", "resource_type"},
    "run": {"command", "workdir"},
    "runs": {"command", "workdir"},
    "data": {"paths", "references"},
    "data.references": {"path", "url", "size", "sha256"},
    "outputs": {"paths"},
    "exclude": {"paths"},
    "environment": {"kind", "python", "base_image", "allow_env", "keep_env", "find_links",
                    "lock"},
    "compare": {"rel_tol", "abs_tol", "rules"},
    "compare.rules": {"path", "rel_tol", "abs_tol", "ignore", "columns"},
}


def find_spec(path: str | os.PathLike) -> Path:
    """``path`` is a spec file or a folder holding ``studypack.toml``."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / SPEC_NAME
        if not p.exists():
            raise UsageError(f"There is no {SPEC_NAME} in {p.parent}.",
                             f"Run `studypack init {p.parent}` to write one.")
    elif not p.exists():
        raise UsageError(f"{p} does not exist.")
    return p.resolve()


def load_spec(path: str | os.PathLike) -> StudySpec:
    spec_path = find_spec(path)
    try:
        text = spec_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{spec_path} is not UTF-8 text.") from None
    except OSError as exc:
        raise UsageError(f"Cannot read {spec_path}: {exc.strerror}.") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{spec_path} is not valid TOML: {exc}.") from None
    spec = parse_spec(doc, _Locator(spec_path, text))
    spec.path = spec_path
    return spec


class _Locator:
    """Finds the line of a key, so errors can say file:line."""

    def __init__(self, path: Path | None, text: str = ""):
        self.path = path
        self.lines = text.splitlines()

    def where(self, section: str, key: str | None = None) -> str:
        name = str(self.path) if self.path else SPEC_NAME
        last = section.split(".")[-1] if section else ""
        current = ""
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", stripped)
            if header:
                current = header.group(1)
                if key is None and current in (section, last):
                    return f"{name}:{number}"
                continue
            if key and re.match(rf"^{re.escape(key)}\s*=", stripped) and (
                    current == section or current.endswith("." + last) or not section):
                return f"{name}:{number}"
        return name


def parse_spec(doc: dict[str, Any], where: _Locator | None = None) -> StudySpec:
    where = where or _Locator(None)

    def fail(section: str, key: str | None, problem: str, hint: str | None = None):
        label = f"{section}.{key}" if section and key else (key or section)
        raise SpecError(f"{where.where(section, key)}: `{label}` {problem}", hint)

    def check_keys(table: Any, section: str) -> dict:
        if not isinstance(table, dict):
            fail(section, None, "must be a table.")
        allowed = _KNOWN[section]
        for key in table:
            if key not in allowed:
                fail(section, key, "is not a known key.",
                     f"Known keys here: {', '.join(sorted(allowed))}.")
        return table

    def text(table: dict, section: str, key: str, required: bool = False, default: str = "") -> str:
        value = table.get(key, default)
        if required and (key not in table or not str(value).strip()):
            fail(section, key, "is missing.", f"Add `{key} = \"…\"` under [{section}].")
        if not isinstance(value, str):
            fail(section, key, "must be a text string.")
        return value

    def str_list(table: dict, section: str, key: str) -> list[str]:
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(section, key, "must be a list of text strings.")
        return value

    def number(table: dict, section: str, key: str) -> float | None:
        value = table.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value < 0):
            fail(section, key, "must be a non-negative number.")
        return None if value is None else float(value)

    def relative_path(value: str, section: str, key: str) -> str:
        p = Path(value)
        if p.is_absolute() or ".." in p.parts:
            fail(section, key, f"must be a path inside the study folder, not {value!r}.")
        return value

    check_keys(doc, "")
    if "study" not in doc:
        fail("study", None, "is missing.", "Every studypack.toml starts with a [study] table.")
    s = check_keys(doc["study"], "study")
    name = text(s, "study", "name", required=True)
    if not NAME_RE.match(name):
        fail("study", "name", f"must be file-name safe (letters, digits, . _ -), not {name!r}.")
    authors = []
    raw_authors = s.get("authors", [])
    if not isinstance(raw_authors, list):
        fail("study", "authors", "must be a list of [[study.authors]] tables.")
    for a in raw_authors:
        check_keys(a, "study.authors")
        author = Author(name=text(a, "study.authors", "name"),
                        orcid=text(a, "study.authors", "orcid"),
                        affiliation=text(a, "study.authors", "affiliation"),
                        given=text(a, "study.authors", "given"),
                        family=text(a, "study.authors", "family"),
                        affiliation_url=text(a, "study.authors", "affiliation_url"))
        if author.affiliation_url and not re.match(r"^https?://", author.affiliation_url):
            fail("study.authors", "affiliation_url", "must be an http:// or https:// URL.")
        if author.given.strip() and not author.family.strip():
            fail("study.authors", "given", f"{author.given!r} has no family name beside it.",
                 'Add family = "…" to the same [[study.authors]].')
        if not author.name.strip() and not author.family.strip():
            fail("study.authors", None, "has an author without a name.",
                 'Give given = "…" and family = "…" (or name = "Family, Given").')
        if author.orcid and not orcid_is_valid(author.orcid):
            fail("study.authors", "orcid",
                 f"{author.orcid!r} is not a valid ORCID iD (its check digit does not match).",
                 "An ORCID iD looks like 0000-0002-1825-0097.")
        authors.append(author)
    if "related" in s and "related_identifiers" in s:
        fail("study", "related_identifiers", "cannot be used together with `related`.",
             "Move its entries into `related`.")
    related_key = "related_identifiers" if "related_identifiers" in s else "related"
    related = []
    raw_related = s.get(related_key, [])
    if not isinstance(raw_related, list):
        fail("study", related_key, "must be a list of identifiers or [[study.related]] tables.")
    for r in raw_related:
        entry = {"identifier": r} if isinstance(r, str) else check_keys(r, "study.related")
        identifier = text(entry, "study.related", "identifier", required=True).strip()
        if not identifier_is_known(identifier):
            fail("study", related_key, f"{identifier!r} is neither a DOI nor a URL (nor "
                 "another identifier Zenodo recognises).",
                 'Example: related = ["10.1234/journal.paper.42"].')
        item = {"identifier": identifier}
        relation = text(entry, "study.related", "relation")
        if relation:
            if relation_of(relation) is None:
                fail("study.related", "relation", f"{relation!r} is not a DataCite relation "
                     "type.", "Common ones: isSupplementTo (the default: this study supports "
                     "a paper), isDerivedFrom, references, isNewVersionOf.")
            item["relation"] = relation_of(relation)
        if text(entry, "study.related", "resource_type"):
            item["resource_type"] = entry["resource_type"]
        related.append(item)
    upload_type = text(s, "study", "upload_type")
    if upload_type and upload_type not in UPLOAD_TYPES:
        fail("study", "upload_type", f"{upload_type!r} is not a Zenodo upload type studypack "
             "can send.", f"Use one of: {', '.join(UPLOAD_TYPES)}.")
    communities = str_list(s, "study", "communities")
    for community in communities:
        if not COMMUNITY_RE.match(community):
            fail("study", "communities", f"{community!r} is not a Zenodo community id.",
                 "Use the id from the community's address, e.g. zenodo.org/communities/my-lab "
                 "-> \"my-lab\".")
    publication_date = text(s, "study", "publication_date")
    if publication_date and date_problem(publication_date):
        fail("study", "publication_date", date_problem(publication_date) + ".")
    study = StudyInfo(
        name=name, title=text(s, "study", "title", required=True),
        description=text(s, "study", "description"),
        license=text(s, "study", "license", default="CC-BY-4.0"),
        keywords=str_list(s, "study", "keywords"), authors=authors,
        version=text(s, "study", "version"), doi=text(s, "study", "doi"),
        related=related, upload_type=upload_type, communities=communities,
        publication_date=publication_date)

    if "run" in doc and "runs" in doc:
        fail("runs", None, "cannot be used together with [run].",
             "Use [run] for one command, or [[runs]] for a pipeline of several.")
    raw_runs = doc.get("runs") if "runs" in doc else [doc.get("run")] if "run" in doc else None
    if not raw_runs:
        fail("run", None, "is missing.", 'Add [run] with command = ["python", "analysis.py"].')
    section = "runs" if "runs" in doc else "run"
    runs = []
    for r in raw_runs:
        check_keys(r, section)
        command = r.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        if not command or not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            fail(section, "command", "must be a non-empty list of words, e.g. "
                 '["python", "analysis.py"].')
        runs.append(RunStep(command=command,
                            workdir=relative_path(text(r, section, "workdir", default="."),
                                                  section, "workdir")))

    data = check_keys(doc.get("data", {}), "data")
    references = []
    for ref in data.get("references", []):
        check_keys(ref, "data.references")
        digest = text(ref, "data.references", "sha256", required=True).lower()
        if not SHA256_RE.match(digest):
            fail("data.references", "sha256", "must be 64 hexadecimal digits.")
        size = ref.get("size")
        if not isinstance(size, int) or size < 0:
            fail("data.references", "size", "must be the file size in bytes.")
        url = text(ref, "data.references", "url", required=True)
        if not re.match(r"^https?://", url):   # what a reader of the bundle fetches
            fail("data.references", "url", "must be an http:// or https:// URL.")
        references.append(DataReference(
            path=relative_path(text(ref, "data.references", "path", required=True),
                               "data.references", "path"),
            url=url, size=size, sha256=digest))
    outputs = check_keys(doc.get("outputs", {}), "outputs")
    exclude = check_keys(doc.get("exclude", {}), "exclude")
    env = check_keys(doc.get("environment", {}), "environment")
    kind = text(env, "environment", "kind", default="auto")
    if kind not in ("auto", "venv", "conda", "system"):
        fail("environment", "kind", f"must be auto, venv, conda or system, not {kind!r}.")
    lock = text(env, "environment", "lock", default="used")
    if lock not in ("used", "all"):
        fail("environment", "lock", f"must be \"used\" or \"all\", not {lock!r}.")
    compare = check_keys(doc.get("compare", {}), "compare")
    rules = []
    for rule in compare.get("rules", []):
        check_keys(rule, "compare.rules")
        rules.append(CompareRule(
            path=text(rule, "compare.rules", "path", required=True),
            rel_tol=number(rule, "compare.rules", "rel_tol"),
            abs_tol=number(rule, "compare.rules", "abs_tol"),
            ignore=bool(rule.get("ignore", False)),
            columns=str_list(rule, "compare.rules", "columns")))
    return StudySpec(
        study=study, runs=runs,
        data_paths=[relative_path(p, "data", "paths") for p in str_list(data, "data", "paths")],
        data_references=references,
        output_paths=[relative_path(p, "outputs", "paths")
                      for p in str_list(outputs, "outputs", "paths")],
        exclude=str_list(exclude, "exclude", "paths"),
        environment=EnvironmentSpec(
            kind=kind, python=text(env, "environment", "python"),
            base_image=text(env, "environment", "base_image"),
            allow_env=str_list(env, "environment", "allow_env"),
            keep_env=str_list(env, "environment", "keep_env"),
            find_links=str_list(env, "environment", "find_links"), lock=lock),
        compare_rel_tol=number(compare, "compare", "rel_tol"),
        compare_abs_tol=number(compare, "compare", "abs_tol"),
        compare_rules=rules)


def orcid_is_valid(orcid: str) -> bool:
    """ISO 7064 MOD 11-2 check digit, as ORCID specifies."""
    m = ORCID_RE.match(orcid.strip())
    if not m:
        return False
    digits = "".join(m.groups())
    total = 0
    for ch in digits[:-1]:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


# -------------------------------------------------------------------------- write

def spec_to_toml(spec: StudySpec) -> str:
    return ("# studypack study description — edit freely; `studypack create` reads it.\n"
            + tomli_w.dumps(spec.to_dict()))


def write_spec(spec: StudySpec, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write atomically; refuse to replace an existing file unless ``overwrite``."""
    from .fsutil import atomic_write_text

    target = Path(path)
    if target.is_dir():
        target = target / SPEC_NAME
    if target.exists() and not overwrite:
        raise UsageError(f"{target} already exists; it was left as it is.",
                         "Edit it, or pass --force to replace it.")
    atomic_write_text(target, spec_to_toml(spec))
    spec.path = target.resolve()
    return target


# ------------------------------------------------------------------------- detect

def slugify(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-._").lower()
    return (slug or "study")[:64]


def detect_spec(folder: str | os.PathLike) -> StudySpec:
    """A first draft of the spec for ``folder``: the defaults the wizard shows (see
    :mod:`studypack.discover` for what is read, and the questions left open)."""
    from .discover import discover_study
    return discover_study(folder).spec
