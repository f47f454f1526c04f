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
    """400 with field errors: ``self.errors`` is Zenodo's list of {field, message}."""

    def __init__(self, message: str, hint: str | None = None, *, errors: list[dict]):
        super().__init__(message, hint, status=400)
        self.errors = errors


class NotFoundError(ZenodoError):
    pass


class RateLimitedError(ZenodoError):
    pass


class ServerError(ZenodoError):
    """5xx, or the connection dropped, more times than we retry."""


class ChecksumMismatchError(ZenodoError):
    """Zenodo's md5 of an uploaded file differs from ours, after every retry."""


class DepositLimitError(UsageError):
    """The bundle is over Zenodo's per-record limits (checked before any upload)."""
