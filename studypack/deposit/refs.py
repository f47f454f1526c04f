"""Turn what a user types — a DOI, a record URL, a number — into (site, record id).

Zenodo mints DOIs of the form ``10.5281/zenodo.N`` (the sandbox: ``10.5072/zenodo.N``),
and https://doi.org resolves them to the record page ``https://zenodo.org/records/N``.
studypack does that mapping itself (no request to doi.org), so a Zenodo DOI works
offline of the resolver; DOIs of other repositories are not supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import UsageError

ZENODO = "https://zenodo.org"
SANDBOX = "https://sandbox.zenodo.org"
SITE_OF_PREFIX = {"10.5281": ZENODO, "10.5072": SANDBOX}


def other_site_of(base_url: str) -> str | None:
    """The Zenodo site a token refused by ``base_url`` may have been made on."""
    return {ZENODO: SANDBOX, SANDBOX: ZENODO}.get(base_url.rstrip("/"))


def implied_site(ref: str) -> str | None:
    """The site a Zenodo DOI belongs to, by its prefix (None for numbers and URLs)."""
    m = re.search(r"(10\.\d{4,9})/zenodo\.\d+", ref)
    return SITE_OF_PREFIX.get(m.group(1)) if m else None

_DOI_RE = re.compile(r"^(10\.\d{4,9})/zenodo\.(\d+)$", re.IGNORECASE)
_ANY_DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
_PATH_RE = re.compile(r"^/(?:api/)?(?:records?|deposit|deposit/depositions)/(\d+)(?:/.*)?$")


@dataclass(frozen=True)
class RecordRef:
    base_url: str      # e.g. https://zenodo.org
    record_id: int

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/records/{self.record_id}"


def parse_ref(ref: str, base_url: str | None = None) -> RecordRef:
    """``base_url`` (``--url``/``--sandbox``) wins over the site a DOI implies."""
    text = ref.strip()
    lowered = text.lower()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/",
                   "http://dx.doi.org/", "doi:"):
        if lowered.startswith(prefix):
            text = text[len(prefix):]
            break
    if text.isdigit():
        return RecordRef((base_url or ZENODO).rstrip("/"), int(text))
    m = _DOI_RE.match(text)
    if m:
        site = base_url or SITE_OF_PREFIX.get(m.group(1))
        if site is None:
            raise UsageError(f"{ref} has the prefix {m.group(1)}, which is not Zenodo's.",
                             "Zenodo DOIs start with 10.5281/zenodo. (sandbox: 10.5072/zenodo.).")
        return RecordRef(site.rstrip("/"), int(m.group(2)))
    if _ANY_DOI_RE.match(text):
        raise UsageError(f"{ref} is not a Zenodo DOI; studypack works with Zenodo records "
                         "only.",
                         "Download the bundle yourself and give studypack the file.")
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.netloc:
        m = _PATH_RE.match(parts.path)
        if m:
            return RecordRef(f"{parts.scheme}://{parts.netloc}", int(m.group(1)))
    raise UsageError(f"{ref!r} is neither a Zenodo DOI, a record URL, nor a record number.",
                     "Examples: 10.5281/zenodo.1234567, https://zenodo.org/records/1234567.")
