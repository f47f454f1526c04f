"""Zenodo deposit metadata built from a bundle's study description — a pure function.

The ``[study]`` table of studypack.toml (as stored in the bundle's studypack.json)
maps onto Zenodo's deposit metadata (developers.zenodo.org, "Deposit metadata"):

==========================  ================================================
studypack                   Zenodo
==========================  ================================================
title (or name)             title
description (plain text)    description (HTML: escaped, paragraphs kept)
authors[].name/orcid/affil  creators[].name/orcid/affiliation
license (SPDX id)           license (Zenodo ids are lower-case SPDX: cc-by-4.0)
keywords                    keywords
version                     version
related_identifiers         related_identifiers (relation defaults to
                            isSupplementTo, e.g. the paper the study supports)
upload_type (optional)      upload_type, default "dataset"
doi                         NOT sent: it is this study's previous Zenodo DOI,
                            written back by an earlier deposit; Zenodo's
                            ``doi`` field would claim the new upload already
                            has that DOI. Use --new-version-of instead.
==========================  ================================================
"""

from __future__ import annotations

import html
import json
import re

from .. import __version__
from ..errors import UsageError

UPLOAD_TYPES = ("dataset", "software", "publication", "poster", "presentation", "image",
                "video", "lesson", "physicalobject", "other")
DEFAULT_RELATION = "isSupplementTo"


class MetadataError(UsageError):
    """The study description lacks what Zenodo requires."""


def license_id(spdx: str) -> str:
    """Zenodo's license vocabulary uses lower-case SPDX identifiers."""
    return spdx.strip().lower()


def description_html(text: str) -> str:
    """Plain text to the small HTML subset Zenodo accepts (``p``, ``br``)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(f"<p>{'<br>'.join(html.escape(line) for line in p.splitlines())}</p>"
                   for p in paragraphs)


def build_metadata(study: dict, *, format_version: str | int | None = None) -> dict:
    """The ``metadata`` object for ``PUT /api/deposit/depositions/:id``.

    Raises :class:`MetadataError` naming every required field that is missing.
    """
    missing = []
    title = str(study.get("title") or study.get("name") or "").strip()
    if not title:
        missing.append("title")
    description = str(study.get("description") or "").strip()
    if not description:
        missing.append("description")
    creators = []
    for author in study.get("authors") or []:
        if isinstance(author, str):
            author = {"name": author}
        family, given = str(author.get("family") or "").strip(), str(author.get("given") or "")
        name = (f"{family}, {given.strip()}" if given.strip() else family) if family else \
            str(author.get("name") or "").strip()
        if not name:
            continue
        creator = {"name": name}
        if author.get("affiliation"):
            creator["affiliation"] = str(author["affiliation"])
        if author.get("orcid"):
            creator["orcid"] = str(author["orcid"]).removeprefix("https://orcid.org/")
        creators.append(creator)
    if not creators:
        missing.append("authors")
    if missing:
        keys = ", ".join(f"`{k}`" for k in missing)
        raise MetadataError(
            f"Zenodo requires {keys} in [study], and this bundle's study description lacks "
            f"{'it' if len(missing) == 1 else 'them'}.",
            "Add them to studypack.toml (authors as [[study.authors]] with name = \"Family, "
            "Given\"), create the bundle again, then deposit it.")
    upload_type = str(study.get("upload_type") or "dataset")
    if upload_type not in UPLOAD_TYPES:
        raise MetadataError(f"`upload_type = \"{upload_type}\"` is not a Zenodo upload type.",
                            f"Use one of: {', '.join(UPLOAD_TYPES)}.")

    metadata: dict = {
        "upload_type": upload_type,
        "title": title,
        "creators": creators,
        "description": description_html(description),
        "access_right": "open",
        "license": license_id(str(study.get("license") or "CC-BY-4.0")),
    }
    keywords = [str(k) for k in study.get("keywords") or [] if str(k).strip()]
    if keywords:
        metadata["keywords"] = keywords
    if study.get("version"):
        metadata["version"] = str(study["version"])
    related = []
    for item in study.get("related") or study.get("related_identifiers") or []:
        if isinstance(item, str):
            item = {"identifier": item}
        if not item.get("identifier"):
            continue
        entry = {"identifier": str(item["identifier"]),
                 "relation": str(item.get("relation") or DEFAULT_RELATION)}
        if item.get("resource_type"):
            entry["resource_type"] = str(item["resource_type"])
        related.append(entry)
    if related:
        metadata["related_identifiers"] = related
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
