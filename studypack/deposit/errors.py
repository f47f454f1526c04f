"""The ways a Zenodo deposit or fetch fails, each with a sentence and a hint.

All are :class:`~studypack.errors.RemoteError` (exit code 6) except a bundle over
Zenodo's limits, which is bad input (exit code 2).
"""

from __future__ import annotations

from ..errors import RemoteError, UsageError

TOKEN_HELP = ("Create a personal access token with the scopes deposit:write and "
              "deposit:actions at {site}/account/settings/applications/tokens/new/ and put it "
              "in ZENODO_TOKEN (or ZENODO_SANDBOX_TOKEN for --sandbox).")


class ZenodoError(RemoteError):
    """Zenodo answered with an error, or could not be reached."""

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None):
        super().__init__(message, hint)
        self.status = status


class AuthError(ZenodoError):
    """401: the token is missing, wrong, expired, or for the other site."""


class ScopeError(ZenodoError):
    """403: the token lacks a scope (``self.scope`` names it)."""

    def __init__(self, message: str, hint: str | None = None, *, scope: str):
        super().__init__(message, hint, status=403)
        self.scope = scope


class PublishedRecordError(ZenodoError):
    """The record is published: its files can never change, only a new version can."""


class ValidationError(ZenodoError):
    """400 with field errors: ``self.errors`` is Zenodo's list of ``{field, messages}``
    (InvenioRDM; the older API sent one ``message`` per field)."""

    def __init__(self, message: str, hint: str | None = None, *, errors: list[dict]):
        super().__init__(message, hint, status=400)
        self.errors = errors


class NotFoundError(ZenodoError):
    pass


class PendingVersionError(ZenodoError):
    """A new version of the record is already being edited, and cannot be taken over
    without losing something (or cannot be found)."""


class RateLimitedError(ZenodoError):
    pass


class ServerError(ZenodoError):
    """5xx, or the connection dropped, more times than we retry — or once, for a request
    that is not repeated blindly (``uncertain``: it may have been carried out)."""

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None,
                 uncertain: bool = False):
        super().__init__(message, hint, status=status)
        self.uncertain = uncertain


class ChecksumMismatchError(ZenodoError):
    """Zenodo's md5 of an uploaded file differs from ours, after every retry."""


class DepositLimitError(UsageError):
    """The bundle is over Zenodo's per-record limits (checked before any upload)."""


def error_messages(error: dict) -> list[str]:
    """The texts of one entry of Zenodo's ``errors``: ``messages`` (a list, today) or
    ``message`` (a string, or a nested mapping, from the older API)."""
    raw = error.get("messages", error.get("message", ""))
    if isinstance(raw, dict):
        return [f"{k}: {m}" for k, v in raw.items() for m in (v if isinstance(v, list) else [v])]
    if isinstance(raw, list):
        return [str(m) for m in raw if str(m).strip()]
    return [str(raw)] if str(raw).strip() else []


def error_details(errors: list) -> str:
    """``license: Invalid license provided: x; creators: Missing data for required field``."""
    parts = []
    for e in errors:
        if not isinstance(e, dict):
            continue
        field = str(e.get("field") or "").removeprefix("metadata.") or "record"
        texts = [t.rstrip(".") for t in error_messages(e)] or ["(no reason given)"]
        parts.append(f"{field}: {'; '.join(texts)}")
    return "; ".join(parts) or "(no reason given)"
