"""Where the Zenodo access token comes from, and how it is kept out of sight.

The token is read from the environment (``ZENODO_TOKEN``; for the sandbox
``ZENODO_SANDBOX_TOKEN`` only — a production token never goes to the sandbox, nor
the reverse) or from the system keyring (service
``studypack-zenodo``, user = the site's host name, e.g. ``zenodo.org``). It is held in
a :class:`Secret` whose ``repr``/``str`` never show it, sent only in the
``Authorization`` header (never in a URL, which could end up in an error message),
and never written anywhere.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ..errors import UsageError
from .errors import TOKEN_HELP

KEYRING_SERVICE = "studypack-zenodo"


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def env_names(sandbox: bool) -> list[str]:
    return ["ZENODO_SANDBOX_TOKEN"] if sandbox else ["ZENODO_TOKEN"]


def find_token(base_url: str, sandbox: bool = False) -> Secret:
    """The token for ``base_url``, or a UsageError saying how to provide one."""
    for name in env_names(sandbox):
        value = os.environ.get(name, "").strip()
        if value:
            return Secret(value)
    host = urlsplit(base_url).hostname or base_url
    value = _from_keyring(host)
    if value:
        return Secret(value)
    names = " or ".join(env_names(sandbox))
    other = env_names(not sandbox)[0]
    aside = ""
    if os.environ.get(other, "").strip():
        aside = (f" {other} is set, but it holds a token for "
                 f"{'zenodo.org' if sandbox else 'sandbox.zenodo.org'}, which {host} does "
                 "not accept" + ("." if sandbox else "; did you mean --sandbox?"))
    raise UsageError(
        f"No Zenodo access token was found for {host}.{aside}",
        f"Set {names}, or store it with `keyring set {KEYRING_SERVICE} {host}`. "
        + TOKEN_HELP.format(site=base_url.rstrip("/")))


def _from_keyring(host: str) -> str | None:
    try:
        import keyring
        return keyring.get_password(KEYRING_SERVICE, host)
    except Exception:  # no backend, locked keyring, D-Bus missing: treat as "not there"
        return None
