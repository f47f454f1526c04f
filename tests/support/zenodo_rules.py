"""What Zenodo's legacy deposit API accepts, how it stores it and how it refuses it —
the rules tests/support/zenodo_server.py plays by. Sources (zenodo/zenodo-rdm, read
for this; see docs/zenodo.md for what comes from where):

- site/zenodo_rdm/legacy/deserializers/metadata.py: ``PersonSchema.load_names`` splits a
  creator's ``name`` on its comma only when there is exactly one, else the whole name is
  the family name; ``load_rights`` answers "Invalid license provided: <id>";
  ``split_identifiers`` wants a list of objects; unknown metadata keys are dropped
  (``unknown = EXCLUDE``); ``publication_date`` defaults to today.
- site/zenodo_rdm/legacy/deserializers/schemas.py: the body itself refuses unknown keys
  (``unknown = RAISE``); "Unknown access type."; communities must be objects with an
  ``identifier``.
- site/zenodo_rdm/legacy/serializers/schemas/common.py: the relation types
  (``RELATION_TYPE_MAPPING``); a creator's ``name`` is read back from the stored person.
- inveniosoftware/invenio-records-resources errors.py + resources/errors.py: a refusal
  is ``{"status": 400, "message": "A validation error occurred.", "errors": [{"field",
  "messages": [...]}]}``; a permission failure is ``403 "Permission denied."``.
"""

from __future__ import annotations

import datetime as _dt
import re

PERMISSION_DENIED = "Permission denied."
VALIDATION_FAILED = "A validation error occurred."
PID_MISSING = "The persistent identifier does not exist."
PENDING_FILES = "Please remove all files first."
NO_FILES = ("Missing uploaded files. To disable files for this record please mark it as "
            "metadata-only.")
REQUIRED = "Missing data for required field."

RELATIONS = {r.lower() for r in (
    "isCitedBy", "cites", "isSupplementTo", "isSupplementedBy", "isContinuedBy", "continues",
    "isDescribedBy", "describes", "hasMetadata", "isMetadataFor", "hasVersion", "isVersionOf",
    "isNewVersionOf", "isPreviousVersionOf", "isPartOf", "hasPart", "isPublishedIn",
    "isReferencedBy", "references", "isDocumentedBy", "documents", "isCompiledBy", "compiles",
    "isVariantFormOf", "isOriginalFormOf", "isIdenticalTo", "isReviewedBy", "reviews",
    "isDerivedFrom", "isSourceOf", "isRequiredBy", "requires", "isObsoletedBy", "obsoletes",
    "isAlternateIdentifier")}
UPLOAD_TYPES = {"publication", "poster", "presentation", "dataset", "image", "video",
                "software", "lesson", "physicalobject", "other"}
ACCESS_RIGHTS = {"open", "embargoed", "restricted", "closed"}
# A slice of Zenodo's license vocabulary (lower-case SPDX ids) and two legacy aliases; an
# SPDX id outside it plays a license newer than Zenodo's list.
LICENSES = {"cc-by-4.0", "cc0-1.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "mit",
            "apache-2.0", "bsd-3-clause", "bsd-2-clause", "gpl-3.0-or-later", "gpl-3.0-only",
            "lgpl-3.0-or-later", "mpl-2.0", "odbl-1.0", "0bsd"}
LICENSE_ALIASES = {"cc-by": "cc-by-4.0", "cc-zero": "cc0-1.0"}
ORCID_RE = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")
IDENTIFIER_RE = re.compile(r"^(10\.\d{4,9}/\S+|https?://\S+\.\S+|arxiv:\S+|urn:\S+)$", re.I)


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def problem(field: str, *messages: str) -> dict:
    return {"field": field, "messages": list(messages)}


def person(name: str) -> dict:
    """PersonSchema.load_names."""
    if name.count(",") == 1:
        family, given = name.split(",")
        return {"family_name": family.strip(), "given_name": given.strip()}
    return {"family_name": name}


def name_of(p: dict) -> str:
    """How InvenioRDM names a person: "family, given", or the family name alone."""
    return f"{p['family_name']}, {p['given_name']}" if p.get("given_name") else p["family_name"]


def deserialize(body: dict) -> dict:
    """A deposition body to the metadata Zenodo keeps, or ApiError(400) as Zenodo
    refuses it at once. Rules checked only when publishing are in :func:`publish_problems`."""
    errors = [problem(key, "Unknown field.") for key in body if key != "metadata"]
    md = body.get("metadata", {})
    if not isinstance(md, dict):
        errors.append(problem("metadata", "Not a valid mapping type."))
        md = {}
    kept = {k: v for k, v in md.items() if k in {
        "upload_type", "publication_type", "image_type", "publication_date", "title",
        "creators", "description", "access_right", "license", "embargo_date", "doi",
        "keywords", "notes", "related_identifiers", "contributors", "references",
        "communities", "grants", "version", "language", "subjects", "method"}}
    if "license" in kept:
        lic = kept["license"]
        lic_id = lic.get("id") if isinstance(lic, dict) else lic
        if not isinstance(lic_id, str):
            errors.append(problem("metadata.license", "Invalid license value provided "
                                  f"(expected string, or object with 'id' key): {lic}"))
        else:
            normal = LICENSE_ALIASES.get(lic_id.strip().lower(), lic_id.strip().lower())
            if normal not in LICENSES:
                errors.append(problem("metadata.license", f"Invalid license provided: {lic_id}"))
            kept["license"] = normal
    related = kept.get("related_identifiers", [])
    if not isinstance(related, list):
        errors.append(problem("metadata.related_identifiers",
                              "related_identifiers must be a list"))
    else:
        for i, item in enumerate(related):
            if not isinstance(item, dict):
                errors.append(problem(f"metadata.related_identifiers.{i}",
                                      "Each related identifier must be an object"))
            elif not IDENTIFIER_RE.match(str(item.get("identifier", ""))):
                errors.append(problem(f"metadata.related_identifiers.{i}.identifier",
                                      "Invalid value."))
    if kept.get("access_right", "open") not in ACCESS_RIGHTS:
        errors.append(problem("_schema", "Unknown access type."))
    communities = kept.get("communities", [])
    if communities and not (isinstance(communities, list) and all(
            isinstance(c, dict) and "identifier" in c for c in communities)):
        errors.append(problem("communities", "Communities must be an array of objects with "
                                             "an 'identifier' key."))
    if errors:
        raise ApiError(400, VALIDATION_FAILED, errors)
    if isinstance(kept.get("creators"), list):
        kept["creators"] = [_creator(c) for c in kept["creators"] if isinstance(c, dict)]
    kept.setdefault("publication_date", _dt.date.today().isoformat())
    return kept


def _creator(c: dict) -> dict:
    stored = {"person": person(str(c.get("name") or ""))}
    for key in ("orcid", "affiliation", "gnd"):
        if c.get(key):
            stored[key] = c[key]
    return stored


def serialize_creators(creators: list[dict]) -> list[dict]:
    out = []
    for c in creators:
        item = {"name": name_of(c["person"])}
        item.update({k: v for k, v in c.items() if k != "person"})
        out.append(item)
    return out


def publish_problems(md: dict, has_files: bool) -> list[dict]:
    """What InvenioRDM checks before publishing a draft (field names as it reports them;
    see docs/zenodo.md for the messages that are approximations)."""
    errors = []
    if not str(md.get("title") or "").strip():
        errors.append(problem("metadata.title", REQUIRED))
    if not md.get("creators"):
        errors.append(problem("metadata.creators", REQUIRED))
    for i, c in enumerate(md.get("creators") or []):
        if not c["person"].get("family_name"):
            errors.append(problem(f"metadata.creators.{i}.person_or_org.family_name", REQUIRED))
        if c.get("orcid") and not ORCID_RE.match(str(c["orcid"])):
            errors.append(problem(f"metadata.creators.{i}.person_or_org.identifiers.0."
                                  "identifier", f"Invalid ORCID identifier: {c['orcid']}."))
    upload_type = md.get("upload_type")
    if not upload_type:
        errors.append(problem("metadata.resource_type", REQUIRED))
    elif upload_type not in UPLOAD_TYPES or upload_type in ("publication", "image") and not \
            md.get(f"{upload_type}_type"):
        errors.append(problem("metadata.resource_type.id", f"Invalid value {upload_type}."))
    for i, rel in enumerate(md.get("related_identifiers") or []):
        if str(rel.get("relation", "")).lower() not in RELATIONS:
            errors.append(problem(f"metadata.related_identifiers.{i}.relation_type",
                                  f"Invalid value {rel.get('relation')}."))
    try:
        _dt.date.fromisoformat(str(md.get("publication_date")))
    except ValueError:
        errors.append(problem("metadata.publication_date",
                              "Please provide a valid date or interval."))
    if not has_files:
        errors.append(problem("files.enabled", NO_FILES))
    return errors
