"""How a study is cited: people's names, relation types, upload types, license ids.

Pure functions and vocabularies shared by the spec (checked when studypack.toml is
read), the bundle metadata and the Zenodo deposit (checked again before any byte is
sent). The vocabularies follow what Zenodo's legacy deposit API accepts today
(zenodo-rdm ``site/zenodo_rdm/legacy/``, see docs/zenodo.md).
"""

from __future__ import annotations

import datetime as _dt
import re

# Zenodo's legacy deserializer (legacy/deserializers/metadata.py, PersonSchema) splits a
# creator's ``name`` on its comma only when there is exactly one; otherwise the whole
# name becomes the family name. So a name is only safe to send as "Family, Given".


def split_name(name: str) -> tuple[str, str] | None:
    """``"Lovelace, Ada"`` -> ``("Lovelace", "Ada")``; None when it cannot be told apart.

    A name without exactly one comma, or with an empty side, is not guessed at: "Ada
    Lovelace" could be (Lovelace, Ada) or, for many names, something else entirely.
    """
    if name.count(",") != 1:
        return None
    family, given = (part.strip() for part in name.split(","))
    if not family or not given:
        return None
    return family, given


def name_fix_hint(name: str) -> str:
    """The sentence that tells how to write ``name`` so that it is cited right."""
    words = name.split()
    if len(words) >= 2 and "," not in name:
        family, given = words[-1], " ".join(words[:-1])
        example = (f'given = "{given}" and family = "{family}" (or name = "{family}, '
                   f'{given}")')
    else:
        example = 'given = "…" and family = "…" (or name = "Family, Given")'
    return (f"Write it as {example} under its [[study.authors]] in studypack.toml (a "
            "person known by one name only gets family = \"…\" alone).")


# DataCite relation types as Zenodo's legacy API spells them (legacy/serializers/schemas/
# common.py, RELATION_TYPE_MAPPING); the deserializer lower-cases what it receives.
RELATIONS = (
    "isCitedBy", "cites", "isSupplementTo", "isSupplementedBy", "isContinuedBy", "continues",
    "isDescribedBy", "describes", "hasMetadata", "isMetadataFor", "hasVersion", "isVersionOf",
    "isNewVersionOf", "isPreviousVersionOf", "isPartOf", "hasPart", "isPublishedIn",
    "isReferencedBy", "references", "isDocumentedBy", "documents", "isCompiledBy", "compiles",
    "isVariantFormOf", "isOriginalFormOf", "isIdenticalTo", "isReviewedBy", "reviews",
    "isDerivedFrom", "isSourceOf", "isRequiredBy", "requires", "isObsoletedBy", "obsoletes",
    "isAlternateIdentifier",
)
_RELATION_BY_LOWER = {r.lower(): r for r in RELATIONS}
DEFAULT_RELATION = "isSupplementTo"

# Zenodo upload types that need no sub-type (publication and image need one, which
# studypack does not ask for).
UPLOAD_TYPES = ("dataset", "software", "poster", "presentation", "video", "lesson",
                "physicalobject", "other")
DEFAULT_UPLOAD_TYPE = "dataset"

COMMUNITY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")

# Identifiers Zenodo can tell the scheme of (it detects it, nothing says it).
_IDENTIFIER_RES = (
    re.compile(r"^10\.\d{4,9}/\S+$"),                                  # DOI
    re.compile(r"^https?://[^\s/]+\.[^\s/]+(/\S*)?$", re.I),          # URL
    re.compile(r"^(arxiv:)?\d{4}\.\d{4,5}(v\d+)?$", re.I),            # arXiv
    re.compile(r"^(hdl:|https?://hdl\.handle\.net/)\S+$", re.I),       # Handle
    re.compile(r"^urn:[a-z0-9][a-z0-9-]{0,31}:\S+$", re.I),           # URN
    re.compile(r"^(pmid:)?\d{1,9}$", re.I),                            # PubMed
    re.compile(r"^(isbn:)?(97[89])?[\d-]{9,13}[\dX]$", re.I),          # ISBN
    re.compile(r"^swh:1:(cnt|dir|rev|rel|snp):[0-9a-f]{40}$"),         # Software Heritage
)


def relation_of(text: str) -> str | None:
    """The canonical spelling of a relation type, whatever its case; None if unknown."""
    return _RELATION_BY_LOWER.get(str(text).strip().lower())


def identifier_is_known(identifier: str) -> bool:
    text = identifier.strip()
    if text.lower().startswith(("https://doi.org/", "http://doi.org/", "doi:")):
        text = text.split("doi.org/", 1)[-1].removeprefix("doi:")
    return any(rx.match(text) for rx in _IDENTIFIER_RES)


def date_problem(text: str) -> str | None:
    """None for a calendar date written YYYY-MM-DD, else what is wrong with it."""
    try:
        _dt.date.fromisoformat(text)
    except ValueError:
        return f"{text!r} is not a real date written YYYY-MM-DD"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return f"{text!r} is not a date written YYYY-MM-DD"
    return None


def license_problem(spdx: str) -> str | None:
    """None when ``spdx`` is one SPDX license id (Zenodo's vocabulary is SPDX, in lower
    case), else the problem. The SPDX list comes from ``packaging.licenses``."""
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    text = spdx.strip()
    if not text:
        return "is empty"
    if re.search(r"[\s()+]", text):
        return (f"{text!r} is a license expression; Zenodo records take one license id "
                "(e.g. MIT or CC-BY-4.0)")
    try:
        canonicalize_license_expression(text)
    except InvalidLicenseExpression:
        return f"{text!r} is not an SPDX license id (see https://spdx.org/licenses/)"
    if text.lower().startswith("licenseref-"):
        return f"{text!r} is a private license reference, which Zenodo does not know"
    return None
