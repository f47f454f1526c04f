"""A thin client for Zenodo's deposit and records REST API.

Follows the legacy deposit API as Zenodo serves it today (zenodo-rdm ``site/zenodo_rdm/
legacy/``, see docs/zenodo.md): JSON bodies with ``Content-Type: application/json``; the
token in an ``Authorization: Bearer`` header; files streamed with ``PUT
{links.bucket}/{name}`` (answer carries ``checksum: "md5:…"``). Every call retries what is
worth retrying — 429 (honouring ``Retry-After``, bounded), 5xx and dropped connections —
with exponential backoff, except publishing, which is not idempotent. The rest becomes
the typed errors of :mod:`studypack.deposit.errors`, each reading true: a 403 is checked
against the token itself (and, when known, the other Zenodo site) before it is blamed on
a scope.
"""

from __future__ import annotations

import email.utils
import hashlib
import json as _json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Optional
from urllib.parse import quote, urlsplit

import requests

from .. import __version__
from ..progress import CancelToken, Progress, Reporter, reporter, token as cancel_token
from .errors import (TOKEN_HELP, AuthError, ChecksumMismatchError, NotFoundError,
                     PublishedRecordError, RateLimitedError, ScopeError, ServerError,
                     ValidationError, ZenodoError, error_details)
from .token import Secret

WRITE, ACTIONS = "deposit:write", "deposit:actions"
CHUNK = 1 << 20
_ACTION_WORDS = {"publish": "publish the deposition", "edit": "unlock the record for editing",
                 "discard": "discard the edits", "newversion": "create a new version"}
NEW_VERSION_HINT = ("A published record's files can never change. Deposit the new bundle as "
                    "a new version of it: studypack deposit BUNDLE --new-version-of DOI")


class _Bearer(requests.auth.AuthBase):
    def __init__(self, secret: Secret):
        self._secret = secret

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self._secret.reveal()}"
        return r

    def __repr__(self) -> str:
        return "_Bearer(***)"


@dataclass
class Transfer:
    """What went over the wire: size and digests of the bytes sent or received."""

    size: int
    md5: str
    sha256: str


class _UploadBody:
    """A file read in chunks for ``requests``: hashes and reports as it goes, and
    stops between two chunks when cancelled. ``__len__`` lets requests send a
    Content-Length (Zenodo's bucket API wants the size up front)."""

    def __init__(self, path: Path, size: int, name: str, report: Reporter, cancel: CancelToken):
        self._fh = open(path, "rb")
        self._size, self._name = size, name
        self._report, self._cancel = report, cancel
        self.done = 0
        self._last = 0
        self.md5, self.sha256 = hashlib.md5(), hashlib.sha256()

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        self._cancel.check()
        data = self._fh.read(CHUNK if n is None or n < 0 else n)
        if data:
            self.md5.update(data)
            self.sha256.update(data)
            self.done += len(data)
        if self.done - self._last >= CHUNK or (not data or self.done == self._size):
            self._last = self.done
            self._report(Progress("upload", self.done, self._size, self._name))
        return data

    def close(self) -> None:
        self._fh.close()


class ZenodoClient:
    """One Zenodo site (``https://zenodo.org``, the sandbox, or a test server).

    ``other_site`` is the site a token that fails here may belong to (production for the
    sandbox and back); it is asked only to explain a refused token.
    """

    def __init__(self, base_url: str, token: Optional[Secret] = None, *,
                 attempts: int = 6, backoff: float = 1.0, max_backoff: float = 30.0,
                 max_retry_after: float = 300.0, timeout: tuple[float, float] = (15, 600),
                 sleep: Optional[Callable[[float], None]] = None,
                 other_site: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.other_site = other_site.rstrip("/") if other_site else None
        self._token = token
        self._token_accepted: bool | None = None
        self.api = f"{self.base_url}/api"
        self.attempts, self.backoff, self.max_backoff = attempts, backoff, max_backoff
        self.max_retry_after, self.timeout, self._sleep = max_retry_after, timeout, sleep
        self._auth = _Bearer(token) if token else None
        self.report: Reporter = reporter(None)   # told about each wait before a retry
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"studypack/{__version__}"
        self.session.headers["Accept"] = "application/json"
        # trust_env stays on: HTTPS_PROXY and REQUESTS_CA_BUNDLE matter on institutional
        # networks; an explicit auth always wins over ~/.netrc.

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ core request
    def request(self, method: str, url: str, *, json=None, body: Callable[[], object] = None,
                headers: dict | None = None, expect=(200,), scope: str = WRITE,
                what: str = "answer", auth: bool = True, stream: bool = False,
                retry: bool = True, cancel: CancelToken | None = None) -> requests.Response:
        """Send with retries. ``body`` makes a fresh request body for each attempt.
        ``retry=False``: a 5xx or a dropped connection is raised at once (as
        :class:`ServerError` with ``uncertain=True``): the request may have been done."""
        cancel = cancel_token(cancel)
        headers = dict(headers or {})
        data = None
        if json is not None:
            data = _json.dumps(json).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(1, self.attempts + 1):
            cancel.check()
            payload = body() if body is not None else data
            try:
                resp = self.session.request(
                    method, url, data=payload, headers=headers, timeout=self.timeout,
                    auth=self._auth if auth else None, stream=stream)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                if not retry:
                    raise ServerError(
                        f"The connection to {self._host()} broke off while trying to {what} "
                        f"({type(exc).__name__}).", uncertain=True) from None
                if attempt == self.attempts:
                    raise ServerError(
                        f"The connection to {self._host()} failed while trying to {what} "
                        f"({type(exc).__name__}), {attempt} times.",
                        "Check your network and run the same command again: an interrupted "
                        "deposit resumes from its draft.") from None
                self._wait(self._backoff(attempt), cancel,
                           f"the connection failed while trying to {what}")
                continue
            finally:
                if hasattr(payload, "close"):
                    payload.close()
            if resp.status_code == 429:
                delay = _retry_after(resp)
                if delay is None:
                    delay = self._backoff(attempt)
                if attempt == self.attempts or delay > self.max_retry_after:
                    raise RateLimitedError(
                        f"Zenodo is rate-limiting requests (429 Too Many Requests) while "
                        f"trying to {what}.",
                        f"Wait {_human_wait(delay)} and run the same command again.",
                        status=429)
                resp.close()
                self._wait(delay, cancel, "Zenodo asks to slow down (429)")
                continue
            if resp.status_code >= 500:
                if not retry:
                    resp.close()
                    raise ServerError(f"Zenodo had a server error ({resp.status_code}) while "
                                      f"trying to {what}.", status=resp.status_code,
                                      uncertain=True)
                if attempt == self.attempts:
                    raise ServerError(
                        f"Zenodo had a server error ({resp.status_code}) while trying to "
                        f"{what}, {attempt} times.",
                        "Zenodo may be down or busy; check https://status.zenodo.org and run "
                        "the same command again later: it resumes from the draft.",
                        status=resp.status_code)
                resp.close()
                self._wait(self._backoff(attempt), cancel,
                           f"Zenodo had a server error ({resp.status_code})")
                continue
            if resp.status_code in expect:
                return resp
            raise self._error(resp, scope, what, authenticated=auth and self._auth is not None)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)

    def _wait(self, seconds: float, cancel: CancelToken, why: str = "") -> None:
        """Sleep ``seconds`` in short steps, so a cancel is honoured at once."""
        self.report(Progress("wait", 0, None, f"{why}; retrying in {_human_wait(seconds)}"))
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                cancel.check()
                time.sleep(min(0.2, left))
        cancel.check()

    def _host(self) -> str:
        return urlsplit(self.base_url).netloc

    def _error(self, resp: requests.Response, scope: str, what: str, *,
               authenticated: bool) -> ZenodoError:
        status = resp.status_code
        try:
            body = resp.json()
        except ValueError:
            body = {}
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        errors = body.get("errors") if isinstance(body, dict) else None
        said = f'{status} "{message}"' if message else f"{status} {resp.reason}"
        if status == 401 or (status == 403 and authenticated and not self.token_accepted()):
            return self.token_error(said)
        if status == 403:
            if "locked" in message.lower() or message == "Invalid action":
                return PublishedRecordError(
                    f"Zenodo refused to {what}: the record is already published.",
                    NEW_VERSION_HINT, status=403)
            published = ", the record is already published (its files can never change)," \
                if scope == WRITE else ""
            return ScopeError(
                f"Zenodo refused to {what} ({said}): the access token works on "
                f"{self._host()}, so it lacks the `{scope}` scope{published} or the "
                "deposition belongs to another account.",
                TOKEN_HELP.format(site=self.base_url), scope=scope)
        if status == 400 and isinstance(errors, list) and errors:
            return ValidationError(
                f"Zenodo refused to {what}: {error_details(errors)}.",
                "Fix this in [study] of studypack.toml, create the bundle again, and run the "
                "same command: it reuses the same draft.", errors=errors)
        if status == 404:
            return NotFoundError(f"Zenodo has nothing at {resp.url.split('?')[0]} (404).",
                                 "Check the record ID or DOI.", status=404)
        if status == 409:
            return ZenodoError(f"Zenodo is still processing this deposition (409 Conflict) "
                               f"and cannot {what} yet.", "Wait five minutes and try again.",
                               status=409)
        return ZenodoError(f"Zenodo refused to {what}: {message or resp.reason} ({status}).",
                           status=status)

    # ------------------------------------------------------------------ the token itself
    def token_accepted(self) -> bool:
        """Does this site take the token at all? Asked once (a listing of one's own
        depositions needs a valid token and no particular scope)."""
        if self._token_accepted is None:
            if self._auth is None:
                return False
            resp = self.request("GET", f"{self.api}/deposit/depositions?size=1",
                                expect=(200, 401, 403), what="check the access token")
            resp.close()
            self._token_accepted = resp.status_code == 200
        return self._token_accepted

    def token_error(self, said: str) -> AuthError:
        """The token was refused here: say so, and where it does work, if anywhere."""
        host = self._host()
        belongs_elsewhere = False
        if self.other_site and self._token:
            other = ZenodoClient(self.other_site, self._token, attempts=2, backoff=self.backoff,
                                 sleep=self._sleep, timeout=self.timeout)
            try:
                belongs_elsewhere = other.token_accepted()
            except ZenodoError:  # the other site is down: say nothing about it
                belongs_elsewhere = None
            finally:
                other.close()
        other_host = urlsplit(self.other_site).netloc if self.other_site else ""
        if belongs_elsewhere:
            sandbox_here = "sandbox" in host
            fix = ("Leave out --sandbox to deposit on zenodo.org with it (as ZENODO_TOKEN), "
                   "or create a sandbox token and put it in ZENODO_SANDBOX_TOKEN. "
                   if sandbox_here else
                   "Run with --sandbox to deposit on the sandbox with it (as "
                   "ZENODO_SANDBOX_TOKEN), or create a token on zenodo.org. ")
            return AuthError(
                f"Zenodo ({host}) did not accept the access token ({said}): it is a token "
                f"for {other_host}, which works there but not here.",
                fix + TOKEN_HELP.format(site=self.base_url), status=403)
        elsewhere = (f"; {other_host} does not take it either" if belongs_elsewhere is False
                     and other_host else "")
        maybe = (", or it was made on another Zenodo site" if not self.other_site else
                 f", or it was made on {other_host}, which could not be asked"
                 if belongs_elsewhere is None else "")
        return AuthError(
            f"Zenodo ({host}) did not accept the access token ({said}): it is wrong, "
            f"expired or revoked{maybe}{elsewhere}.",
            TOKEN_HELP.format(site=self.base_url), status=403)

    # ------------------------------------------------------------------ depositions
    def deposition_url(self, dep_id: int | str) -> str:
        return f"{self.api}/deposit/depositions/{dep_id}"

    def create_deposition(self, metadata: dict | None = None, cancel=None) -> dict:
        body = {"metadata": metadata} if metadata else {}
        return _json_of(self.request("POST", f"{self.api}/deposit/depositions", json=body,
                                     expect=(201,), what="create a deposition", cancel=cancel))

    def get_deposition(self, dep_id: int | str, cancel=None) -> dict:
        return _json_of(self.request("GET", self.deposition_url(dep_id),
                                     what="read the deposition", cancel=cancel))

    def get_deposition_url(self, url: str, cancel=None) -> dict:
        return _json_of(self.request("GET", url, what="read the deposition", cancel=cancel))

    def update_metadata(self, dep_id: int | str, metadata: dict, cancel=None) -> dict:
        return _json_of(self.request("PUT", self.deposition_url(dep_id),
                                     json={"metadata": metadata}, what="set the metadata",
                                     cancel=cancel))

    def delete_deposition(self, dep_id: int | str, cancel=None) -> None:
        """Only drafts can be deleted (403 once published)."""
        self.request("DELETE", self.deposition_url(dep_id), expect=(201, 202, 204),
                     what="delete the draft", cancel=cancel)

    def delete_deposition_file(self, dep_id: int | str, file_id: str, cancel=None) -> None:
        self.request("DELETE", f"{self.deposition_url(dep_id)}/files/{file_id}", expect=(204,),
                     what="remove a file of the previous version", cancel=cancel)

    def list_depositions(self, cancel=None) -> list[dict]:
        """One's own depositions, drafts first (one page of 100)."""
        resp = self.request("GET", f"{self.api}/deposit/depositions?size=100&sort=mostrecent",
                            what="list your depositions", cancel=cancel)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, list):
            raise ZenodoError(f"{self._host()} listed the depositions as something that is "
                              "not a JSON list.")
        return [d for d in data if isinstance(d, dict)]

    def delete_bucket_file(self, bucket_url: str, name: str, cancel=None) -> None:
        self.request("DELETE", f"{bucket_url.rstrip('/')}/{quote(name)}", expect=(204,),
                     what=f"remove {name} from the draft", cancel=cancel)

    def action(self, dep_id: int | str, name: str, cancel=None) -> dict:
        """publish (202), edit, discard, newversion (201). Publishing is sent once: a 5xx
        or a broken connection raises ``ServerError(uncertain=True)`` — read the
        deposition back before doing anything else."""
        return _json_of(self.request("POST", f"{self.deposition_url(dep_id)}/actions/{name}",
                                     expect=(200, 201, 202), scope=ACTIONS,
                                     what=_ACTION_WORDS[name], retry=name != "publish",
                                     cancel=cancel))

    # ------------------------------------------------------------------ files
    def upload(self, bucket_url: str, name: str, path: Path, report=None, cancel=None,
               attempts: int = 3) -> Transfer:
        """Stream ``path`` into the bucket as ``name``; check Zenodo's md5 against ours."""
        report, cancel = reporter(report), cancel_token(cancel)
        size = path.stat().st_size
        sent: list[_UploadBody] = []

        def make_body():
            sent.append(_UploadBody(path, size, name, report, cancel))
            return sent[-1]

        url = f"{bucket_url.rstrip('/')}/{quote(name)}"
        for attempt in range(1, attempts + 1):
            resp = self.request("PUT", url, body=make_body, expect=(200, 201),
                                headers={"Content-Type": "application/octet-stream"},
                                what=f"upload {name}", cancel=cancel)
            body = sent[-1]
            if body.done != size:  # the file changed under us while it was read
                raise ZenodoError(f"{path} changed while it was being uploaded.",
                                  "Do not modify the bundle during a deposit; run it again.")
            ours = body.md5.hexdigest()
            theirs = str(_json_of(resp).get("checksum", "")).removeprefix("md5:")
            if theirs == ours:
                return Transfer(size, ours, body.sha256.hexdigest())
            if attempt == attempts:
                raise ChecksumMismatchError(
                    f"Zenodo stored {name} with md5 {theirs}, but the file sent has md5 "
                    f"{ours}: it was damaged on the way, {attempts} times.",
                    "Check your network (a proxy altering uploads?) and run the same command "
                    "again.")
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ records
    def get_record(self, record_id: int | str, cancel=None) -> dict:
        """A published record (public). A concept id leads to the latest version: Zenodo
        redirects it, and InvenioRDM's ``/versions/latest`` is asked when it does not."""
        url = f"{self.api}/records/{record_id}"
        try:
            return _json_of(self.request("GET", url, auth=False,
                                         what=f"read record {record_id}", cancel=cancel))
        except NotFoundError:
            pass
        return _json_of(self.request("GET", f"{url}/versions/latest", auth=False,
                                     what=f"read record {record_id}", cancel=cancel))

    def download(self, url: str, out: BinaryIO, *, name: str, size: int | None = None,
                 report=None, cancel=None) -> Transfer:
        """Stream ``url`` into ``out`` (rewound on a retry); digests of what arrived."""
        report, cancel = reporter(report), cancel_token(cancel)
        for attempt in range(1, self.attempts + 1):
            out.seek(0)
            out.truncate()
            md5, sha256, done, last = hashlib.md5(), hashlib.sha256(), 0, 0
            resp = self.request("GET", url, auth=False, stream=True,
                                what=f"download {name}", cancel=cancel)
            total = size or int(resp.headers.get("Content-Length") or 0) or None
            try:
                for chunk in resp.iter_content(CHUNK):
                    cancel.check()
                    if size and done + len(chunk) > size:  # never fill a disk for a liar
                        raise ZenodoError(f"{name} is longer than the {size} bytes the record "
                                          "lists; the download was stopped.")
                    out.write(chunk)
                    md5.update(chunk)
                    sha256.update(chunk)
                    done += len(chunk)
                    if done - last >= CHUNK or done == total:
                        last = done
                        report(Progress("download", done, total, name))
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.Timeout):
                if attempt == self.attempts:
                    raise ServerError(f"The download of {name} broke off {attempt} times.",
                                      "Check your network and run the same command again.")
                self._wait(self._backoff(attempt), cancel, f"the download of {name} broke off")
                continue
            finally:
                resp.close()
            report(Progress("download", done, total or done, name))
            return Transfer(done, md5.hexdigest(), sha256.hexdigest())
        raise AssertionError("unreachable")  # pragma: no cover


def _json_of(resp: requests.Response) -> dict:
    try:
        data = resp.json()
    except ValueError:
        raise ZenodoError(f"{resp.url.split('?')[0]} answered with something that is not "
                          f"JSON (HTTP {resp.status_code}).",
                          "Is the address a Zenodo server? A proxy or captive portal may be "
                          "in the way.") from None
    if not isinstance(data, dict):
        raise ZenodoError(f"{resp.url.split('?')[0]} answered with unexpected JSON.")
    return data


def _retry_after(resp: requests.Response) -> float | None:
    """Seconds to wait: ``Retry-After`` (seconds or a date), else Zenodo's documented
    ``X-RateLimit-Reset`` (the Unix time the window resets)."""
    value = resp.headers.get("Retry-After")
    if not value:
        reset = resp.headers.get("X-RateLimit-Reset", "")
        try:
            return max(0.0, float(reset) - time.time()) if reset else None
        except ValueError:
            return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _human_wait(seconds: float) -> str:
    if seconds < 90:
        whole = max(1, round(seconds))
        return "1 second" if whole == 1 else f"{whole} seconds"
    return f"{round(seconds / 60)} minutes"
