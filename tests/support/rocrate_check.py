"""Run roc-validator (the RO-Crate community's validator) offline on a crate folder.

The validator resolves the crate's ``@context`` over HTTP through a requests-cache
session, and has an offline mode that serves only cached responses. The RO-Crate 1.1
context, vendored in ``tests/support/rocrate/``, is stored in a fresh cache under its
URL; every other URL is a cache miss, which fails the validation (no network).
"""

from __future__ import annotations

from pathlib import Path

CONTEXT_URL = "https://w3id.org/ro/crate/1.1/context"
CONTEXT_FILE = Path(__file__).parent / "rocrate" / "ro-crate-1.1-context.jsonld"
PROFILE = "process-run-crate"


def _cache_with_context(cache: Path) -> None:
    import io

    import requests
    import urllib3
    from requests.structures import CaseInsensitiveDict
    from requests_cache import CachedSession

    session = CachedSession(str(cache), backend="sqlite", expire_after=-1)
    response = requests.Response()
    response.status_code = 200
    response._content = CONTEXT_FILE.read_bytes()
    response.url = CONTEXT_URL
    response.encoding = "utf-8"
    response.headers = CaseInsensitiveDict({"Content-Type": "application/ld+json"})
    response.request = requests.Request("GET", CONTEXT_URL).prepare()
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(response._content), headers=dict(response.headers), status=200,
        preload_content=False, request_url=CONTEXT_URL)
    session.cache.save_response(response)
    session.close()


def validate(crate_dir: Path, severity: str = "RECOMMENDED") -> list[str]:
    """The failed checks (``"<check id>: <message>"``), empty when the crate conforms
    to the Process Run Crate profile at ``severity`` and every level above it."""
    from rocrate_validator import services
    from rocrate_validator.models import ValidationSettings

    cache = Path(crate_dir).parent / "roc-validator-cache"
    _cache_with_context(cache)
    settings = ValidationSettings(
        rocrate_uri=str(crate_dir), profile_identifier=PROFILE,
        requirement_severity=severity, offline=True, cache_path=cache,
        skip_availability_check=True, validate_profile_checks=False)
    result = services.validate(settings)
    return sorted({f"{issue.check.identifier}: {issue.message}"
                   for issue in result.get_issues()})
