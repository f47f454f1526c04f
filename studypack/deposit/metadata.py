"""Zenodo deposit metadata built from a bundle's study description — pure functions.

The ``[study]`` table of studypack.toml (as stored in the bundle's studypack.json) and
the run records' git facts map onto Zenodo's legacy deposit metadata:

==============================  ==============================================
studypack                       Zenodo (legacy deposit API)
==============================  ==============================================
title (or name)                 title
description (plain text)        description (HTML: escaped, paragraphs kept)
authors[] given/family (or      creators[].name "Family, Given" — the only
name "Family, Given"), orcid,   form Zenodo splits right; orcid; affiliation
affiliation
license (SPDX id)               license (lower-case SPDX: cc-by-4.0)
keywords, version               keywords, version
related (DOIs, URLs)            related_identifiers (default isSupplementTo)
doi (this study's earlier DOI)  related_identifiers isNewVersionOf. Never
                                ``doi``: that would claim the new upload
                                already has the old DOI
runs[].git remote + commit      related_identifiers: the code repository at
                                that commit, isSupplementTo (isDerivedFrom
                                when the code had uncommitted changes)
upload_type                     upload_type, default "dataset"
communities                     communities [{"identifier": …}]
publication_date                publication_date (default: the day published)
==============================  ==============================================

Everything Zenodo would refuse, or would store wrongly (a name it cannot split), is
found by :func:`check_study` before any byte leaves the machine.
"""

from __future__ import annotations

import html
import json
import re
from urllib.parse import urlsplit

from .. import __version__
from ..citation import (COMMUNITY_RE, DEFAULT_RELATION, DEFAULT_UPLOAD_TYPE, UPLOAD_TYPES,
                        date_problem, identifier_is_known, license_problem, name_fix_hint,
                        relation_of)
from ..errors import UsageError
from ..spec import Author, orcid_is_valid

# Forges whose web pages show a tree at a commit, and where.
_TREE_PATHS = {"github.com": "/tree/{commit}", "gitlab.com": "/-/tree/{commit}",
               "codeberg.org": "/src/commit/{commit}", "bitbucket.org": "/src/{commit}"}


class MetadataError(UsageError):
    """The study description lacks what Zenodo requires, or holds what it would refuse."""


def license_id(spdx: str) -> str:
    """Zenodo's license vocabulary uses lower-case SPDX identifiers."""
    return spdx.strip().lower()


def description_html(text: str) -> str:
    """Plain text to the small HTML subset Zenodo accepts (``p``, ``br``)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(f"<p>{'<br>'.join(html.escape(line) for line in p.splitlines())}</p>"
                   for p in paragraphs)


def _author(raw) -> Author:
    if isinstance(raw, str):
        return Author(name=raw)
    raw = raw if isinstance(raw, dict) else {}
    return Author(**{k: str(raw.get(k) or "") for k in ("name", "orcid", "affiliation",
                                                          "given", "family")})


def _related_entries(study: dict) -> list[dict]:
    items = study.get("related") or study.get("related_identifiers") or []
    return [{"identifier": i} if isinstance(i, str) else dict(i) for i in items
            if isinstance(i, (str, dict))]


def check_study(study: dict) -> list[str]:
    """Every reason Zenodo would refuse this study description or cite it wrongly."""
    problems = []
    if not str(study.get("title") or study.get("name") or "").strip():
        problems.append("`title` is missing")
    if not str(study.get("description") or "").strip():
        problems.append("`description` is missing (Zenodo requires one)")
    authors = [_author(a) for a in study.get("authors") or []]
    if not authors:
        problems.append("there is no author ([[study.authors]])")
    for a in authors:
        if a.family_given() is None:
            problems.append(f"the author name {a.name!r} does not say which part is the "
                            f"family name; Zenodo would cite all of it as a family name. "
                            f"{name_fix_hint(a.name)}")
        if a.orcid and not orcid_is_valid(a.orcid.removeprefix("https://orcid.org/")):
            problems.append(f"{a.orcid!r} ({a.display_name}) is not a valid ORCID iD")
    problem = license_problem(str(study.get("license") or "CC-BY-4.0"))
    if problem:
        problems.append(f"the license {problem}")
    upload_type = str(study.get("upload_type") or DEFAULT_UPLOAD_TYPE)
    if upload_type not in UPLOAD_TYPES:
        problems.append(f"`upload_type = \"{upload_type}\"` is not one studypack can send "
                        f"(use one of: {', '.join(UPLOAD_TYPES)})")
    for item in _related_entries(study):
        identifier = str(item.get("identifier") or "").strip()
        if not identifier_is_known(identifier):
            problems.append(f"the related identifier {identifier!r} is neither a DOI nor a URL")
        relation = item.get("relation")
        if relation and relation_of(str(relation)) is None:
            problems.append(f"{relation!r} (for {identifier}) is not a DataCite relation type")
    for community in study.get("communities") or []:
        if not COMMUNITY_RE.match(str(community)):
            problems.append(f"{community!r} is not a Zenodo community id")
    if study.get("publication_date"):
        problem = date_problem(str(study["publication_date"]))
        if problem:
            problems.append(f"the publication date {problem}")
    return problems


def repository_url(remote: str) -> str | None:
    """A git remote as a public https address: ``git@github.com:o/r.git`` ->
    ``https://github.com/o/r``; None for local paths and unknown forms."""
    text = remote.strip()
    m = re.match(r"^(?:ssh://)?[\w.-]+@([\w.-]+)(?::\d+)?[:/](.+)$", text)
    if m:
        host, path = m.groups()
    else:
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http", "git") or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    path = path.strip("/").removesuffix(".git")
    if not path or "." not in host:
        return None
    return f"https://{host}/{path}"


def code_link(git: dict | None) -> dict | None:
    """The code repository the bundle's code came from, as a related identifier: the tree
    at the recorded commit when the forge shows one, ``isSupplementTo`` (as Zenodo's own
    GitHub integration links a release), or ``isDerivedFrom`` when the run's code had
    uncommitted changes, so the bundle holds more than that commit."""
    if not isinstance(git, dict) or not git.get("remote"):
        return None
    url = repository_url(str(git["remote"]))
    if url is None:
        return None
    commit = str(git.get("commit") or "")
    tree = _TREE_PATHS.get(urlsplit(url).hostname or "")
    if tree and re.fullmatch(r"[0-9a-f]{7,64}", commit):
        url += tree.format(commit=commit)
    relation = "isDerivedFrom" if git.get("dirty") else "isSupplementTo"
    return {"identifier": url, "relation": relation, "resource_type": "software"}


def related_identifiers(study: dict, git: dict | None = None) -> list[dict]:
    """The study's own links, its earlier version's DOI and its code repository."""
    related, seen = [], set()

    def add(entry: dict) -> None:
        key = entry["identifier"].lower()
        if key not in seen:
            seen.add(key)
            related.append(entry)

    for item in _related_entries(study):
        entry = {"identifier": str(item["identifier"]).strip(),
                 "relation": relation_of(str(item.get("relation") or DEFAULT_RELATION))
                 or DEFAULT_RELATION}
        if item.get("resource_type"):
            entry["resource_type"] = str(item["resource_type"])
        add(entry)
    if study.get("doi"):
        add({"identifier": str(study["doi"]), "relation": "isNewVersionOf"})
    link = code_link(git)
    if link:
        add(link)
    return related


def build_metadata(study: dict, *, format_version: str | int | None = None,
                   git: dict | None = None) -> dict:
    """The ``metadata`` object for ``PUT /api/deposit/depositions/:id``.

    Raises :class:`MetadataError` naming every problem :func:`check_study` finds.
    """
    problems = check_study(study)
    if problems:
        raise MetadataError(
            "Zenodo would refuse this bundle's study description or cite it wrongly, so "
            "nothing was sent:\n" + "\n".join(f"  - {p}" for p in problems),
            "Fix these in [study] of studypack.toml, create the bundle again, then deposit "
            "it (an earlier draft of the same study version is reused).")
    creators = []
    for author in (_author(a) for a in study.get("authors") or []):
        creator = {"name": author.citation_name}
        if author.affiliation:
            creator["affiliation"] = author.affiliation
        if author.orcid:
            creator["orcid"] = author.orcid.removeprefix("https://orcid.org/")
        creators.append(creator)
    metadata: dict = {
        "upload_type": str(study.get("upload_type") or DEFAULT_UPLOAD_TYPE),
        "title": str(study.get("title") or study.get("name")).strip(),
        "creators": creators,
        "description": description_html(str(study["description"])),
        "access_right": "open",
        "license": license_id(str(study.get("license") or "CC-BY-4.0")),
    }
    keywords = [str(k) for k in study.get("keywords") or [] if str(k).strip()]
    if keywords:
        metadata["keywords"] = keywords
    if study.get("version"):
        metadata["version"] = str(study["version"])
    if study.get("publication_date"):
        metadata["publication_date"] = str(study["publication_date"])
    related = related_identifiers(study, git)
    if related:
        metadata["related_identifiers"] = related
    if study.get("communities"):
        metadata["communities"] = [{"identifier": str(c)} for c in study["communities"]]
    fmt = f" (bundle format {format_version})" if format_version else ""
    metadata["notes"] = (
        f"This record holds a studypack bundle{fmt}, made with studypack {__version__}: the "
        "study's code, data, software environment and a traced run, as a BagIt bag with an "
        "RO-Crate in a zstd-compressed tar. Replay it with <code>studypack replay</code> "
        "followed by this record's DOI, or unpack it with <code>tar --zstd -xf</code> and "
        "follow data/REPLAY.md.")
    return metadata


def merge_for_new_version(inherited: dict, ours: dict) -> dict:
    """A new version keeps the previous version's metadata unless the bundle changes it.

    Zenodo-managed keys (the old DOI, its publication date) are dropped so that Zenodo
    assigns fresh ones.
    """
    merged = {k: v for k, v in inherited.items()
              if k not in ("doi", "publication_date", "prereserve_doi")}
    merged.update(ours)
    return merged


def render(metadata: dict) -> str:
    """What will be sent, as readable JSON (shown before sending)."""
    return json.dumps(metadata, indent=2, ensure_ascii=False)
