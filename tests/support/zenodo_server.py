"""A local stand-in for Zenodo's deposit and records REST API, for tests.

A real HTTP server on 127.0.0.1 (random port) in a thread; the studypack client talks
to it over loopback exactly as it would to https://zenodo.org. It answers as Zenodo's
legacy deposit layer does today (zenodo/zenodo-rdm ``site/zenodo_rdm/legacy/``, running
on InvenioRDM since October 2023); docs/zenodo.md lists what was checked against which
file. In short:

- any request a token does not allow — a wrong, expired or other-site token, or one
  without the scope — is ``403 {"status": 403, "message": "Permission denied."}``
  (invenio-records-resources resources/errors.py), never 401; listing one's own
  depositions needs a valid token and no scope;
- refusals are ``400 {"message": "A validation error occurred.", "errors": [{"field",
  "messages": [...]}]}``; what the legacy deserializer refuses comes back at once (a
  license outside the vocabulary, related identifiers that are not objects, unknown body
  keys), what InvenioRDM checks on publishing only then (tests/support/zenodo_rules.py);
- a creator's ``name`` is split into family and given names only on exactly one comma,
  else all of it is the family name (``PersonSchema.load_names``), and is read back as
  "family, given";
- ``newversion`` may be asked of any version, answers 201 with the *new draft* (its
  files copied from the latest version), hands back the pending draft when there is one,
  and refuses with ``files.enabled: "Please remove all files first."`` when that draft
  holds files (invenio-drafts-resources ``new_version`` + ``import_files``);
- once published, ``PUT``/``DELETE``/``publish`` on the deposition are 404 (zenodo-rdm
  site/tests/legacy/deposits/test_rest_api_simpleflow.py) and its files 403;
- ``GET /api/records/<concept id>`` is 404; ``/api/records/<id>/versions/latest`` redirects
  to the latest version (a concept DOI resolves through it);
- the bucket API: ``PUT {links.bucket}/{filename}``, 201 with ``checksum: "md5:…"``.

Faults are injected on purpose: :meth:`FakeZenodo.fail` (any status, e.g. 429 with
Retry-After or 500; ``after_handling`` does the work, then answers with the fault — a
gateway timing out on a publish that happened), :meth:`drop_upload` (close the
connection in the middle of a file upload), :meth:`corrupt_upload` /
:meth:`corrupt_download` (flip a byte).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import socket
import struct
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.support.zenodo_rules import (PENDING_FILES, PERMISSION_DENIED, PID_MISSING,
                                        VALIDATION_FAILED, ApiError, deserialize, problem,
                                        publish_problems, serialize_creators)

WRITE, ACTIONS = "deposit:write", "deposit:actions"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


@dataclass
class StoredFile:
    key: str
    path: Path
    size: int
    md5: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=_now)


@dataclass
class Bucket:
    id: str
    files: dict[str, StoredFile] = field(default_factory=dict)
    locked: bool = False


@dataclass
class Deposition:
    id: int
    conceptrecid: int
    owner: str
    bucket: Bucket
    metadata: dict
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)
    submitted: bool = False      # published at least once
    editing: bool = False        # published, then unlocked with the edit action
    doi: str | None = None
    saved_metadata: dict | None = None   # the published metadata, restored by discard
    communities: list = field(default_factory=list)   # joined when published

    @property
    def state(self) -> str:
        if not self.submitted:
            return "unsubmitted"
        return "inprogress" if self.editing else "done"


@dataclass
class Fault:
    method: str
    path: re.Pattern
    status: int
    times: int
    retry_after: int | None = None
    message: str | None = None
    only_reset_header: bool = False
    after_handling: bool = False


class FakeZenodo:
    """Start with ``with FakeZenodo() as server:``; ``server.url`` is the base URL."""

    def __init__(self, doi_prefix: str = "10.5281", first_id: int = 1000,
                 quota_bytes: int = 50 * 10**9, max_files: int = 100,
                 concept_redirect: bool = False):
        self.doi_prefix = doi_prefix
        # Today's Zenodo answers 404 at /api/records/<concept id> and serves the latest
        # version at /api/records/<id>/versions/latest; the older one redirected.
        self.concept_redirect = concept_redirect
        self.quota_bytes, self.max_files = quota_bytes, max_files
        self.tokens: dict[str, tuple[str, set[str]]] = {}
        self.depositions: dict[int, Deposition] = {}
        self.buckets: dict[str, Bucket] = {}
        self.records: dict[int, dict] = {}            # published snapshots
        self.concepts: dict[int, list[int]] = {}      # conceptrecid -> published version ids
        self.log: list[tuple[str, str, int]] = []     # (method, path, status) per request
        self.unlisted: set[int] = set()   # not in the listing yet (the search index lags)
        self.bodies_seen: list[bytes] = []            # every JSON body received
        self.headers_seen: list[dict] = []
        self._faults: list[Fault] = []
        self._drops: list[int] = []
        self._corrupt_uploads = 0
        self._corrupt_downloads: set[str] = set()
        self._drop_downloads: dict[str, list[int]] = {}
        self._next_id = first_id
        self._lock = threading.RLock()
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-zenodo-")
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.app = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "FakeZenodo":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._tmp.cleanup()

    # ------------------------------------------------------------------ test controls
    def add_token(self, token: str, scopes=(WRITE, ACTIONS), user: str = "alice") -> str:
        self.tokens[token] = (user, set(scopes))
        return token

    def fail(self, method: str, path_regex: str, status: int, times: int = 1,
             retry_after: int | None = None, message: str | None = None,
             only_reset_header: bool = False, after_handling: bool = False) -> None:
        """Answer the next ``times`` matching requests with ``status``. A 429 carries
        ``Retry-After`` and ``X-RateLimit-*``, or only the latter. ``after_handling``:
        carry the request out first, then answer with the fault anyway."""
        self._faults.append(Fault(method.upper(), re.compile(path_regex), status, times,
                                  retry_after, message, only_reset_header, after_handling))

    def drop_upload(self, after_bytes: int, times: int = 1) -> None:
        """Close the connection abruptly after reading ``after_bytes`` of an upload."""
        self._drops.extend([after_bytes] * times)

    def corrupt_upload(self, times: int = 1) -> None:
        """Store the next upload(s) with one byte changed, as a damaged transfer would."""
        self._corrupt_uploads += times

    def corrupt_download(self, key: str) -> None:
        self._corrupt_downloads.add(key)

    def drop_download(self, key: str, after_bytes: int, times: int = 1) -> None:
        """Break the next ``times`` downloads of ``key`` off after ``after_bytes``."""
        self._drop_downloads[key] = [after_bytes] * times

    def count(self, method: str, path_regex: str) -> int:
        pattern = re.compile(path_regex)
        return sum(1 for m, p, _ in self.log if m == method and pattern.fullmatch(p))

    def publish_directly(self, dep_id: int) -> dict:
        """Publish as a user would in the web interface (outside the client)."""
        with self._lock:
            return self._publish(self.depositions[dep_id])

    def stored_bytes(self, record_or_dep_id: int, key: str) -> bytes:
        return self.depositions[record_or_dep_id].bucket.files[key].path.read_bytes()

    def cited_names(self, dep_id: int) -> list[tuple[str, str]]:
        """(family name, given name) of each creator, as Zenodo stored them."""
        return [(c["person"]["family_name"], c["person"].get("given_name", ""))
                for c in self.depositions[dep_id].metadata.get("creators") or []]

    def open_new_version(self, dep_id: int) -> Deposition:
        """Open a new version on the website (outside the client)."""
        with self._lock:
            self._action(self.depositions[dep_id], "newversion")
            return self._draft_of_concept(self.depositions[dep_id].conceptrecid)

    def add_draft_file(self, dep_id: int, key: str, data: bytes) -> None:
        """A file added to a draft on the website."""
        with self._lock:
            path = self._file_path()
            path.write_bytes(data)
            self.depositions[dep_id].bucket.files[key] = StoredFile(
                key, path, len(data), hashlib.md5(data).hexdigest())

    # ------------------------------------------------------------------ helpers
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _new_bucket(self) -> Bucket:
        bucket = Bucket(str(uuid.uuid4()))
        self.buckets[bucket.id] = bucket
        return bucket

    def _doi(self, n: int) -> str:
        return f"{self.doi_prefix}/zenodo.{n}"

    def _file_path(self) -> Path:
        return Path(self._tmp.name) / uuid.uuid4().hex

    def deposition_json(self, d: Deposition) -> dict:
        base, api = self.url, f"{self.url}/api/deposit/depositions/{d.id}"
        links = {
            "self": api, "html": f"{base}/deposit/{d.id}",
            "bucket": f"{base}/api/files/{d.bucket.id}", "files": f"{api}/files",
            "publish": f"{api}/actions/publish", "edit": f"{api}/actions/edit",
            "discard": f"{api}/actions/discard",
        }
        # legacy services.py: latest_draft is the deposition's own read_draft endpoint
        links["latest_draft"] = api
        links["latest_draft_html"] = f"{base}/deposit/{d.id}"
        body = {
            "id": d.id, "conceptrecid": str(d.conceptrecid), "created": d.created,
            "modified": d.modified, "owner": d.owner, "state": d.state,
            "submitted": d.submitted, "title": d.metadata.get("title", ""),
            "metadata": self.metadata_json(d.metadata),
            "files": [self._deposit_file_json(d, f) for f in d.bucket.files.values()],
            "links": links,
        }
        if d.submitted:
            latest = self.concepts[d.conceptrecid][-1]
            links.update({
                "newversion": f"{api}/actions/newversion",
                "record": f"{base}/api/records/{d.id}", "record_html": f"{base}/records/{d.id}",
                "latest": f"{base}/api/records/{latest}",
                "latest_html": f"{base}/records/{latest}",
                "doi": f"https://doi.org/{d.doi}",
            })
            body.update({"doi": d.doi, "doi_url": f"https://doi.org/{d.doi}",
                         "record_id": d.id, "record_url": f"{base}/records/{d.id}",
                         "conceptdoi": self._doi(d.conceptrecid)})
        return body

    @staticmethod
    def metadata_json(md: dict) -> dict:
        out = json.loads(json.dumps(md))
        if isinstance(out.get("creators"), list):
            out["creators"] = serialize_creators(out["creators"])
        return out

    def _deposit_file_json(self, d: Deposition, f: StoredFile) -> dict:
        return {"id": f.id, "filename": f.key, "filesize": f.size, "checksum": f.md5,
                "links": {"self": f"{self.url}/api/deposit/depositions/{d.id}/files/{f.id}",
                          "download": f"{self.url}/api/files/{d.bucket.id}/{quote(f.key)}"}}

    def _bucket_file_json(self, bucket: Bucket, f: StoredFile) -> dict:
        link = f"{self.url}/api/files/{bucket.id}/{quote(f.key)}"
        return {"key": f.key, "size": f.size, "checksum": f"md5:{f.md5}",
                "mimetype": "application/octet-stream", "created": f.created,
                "updated": f.created, "version_id": f.version_id, "is_head": True,
                "delete_marker": False,
                "links": {"self": link, "version": f"{link}?versionId={f.version_id}",
                          "uploads": f"{link}?uploads"}}

    def _draft_of_concept(self, conceptrecid: int) -> Deposition | None:
        for d in self.depositions.values():
            if d.conceptrecid == conceptrecid and not d.submitted:
                return d
        return None

    # ------------------------------------------------------------------ publishing
    def _publish(self, d: Deposition) -> dict:
        if d.submitted and not d.editing:
            raise ApiError(404, PID_MISSING)
        errors = publish_problems(d.metadata, bool(d.bucket.files))
        if errors:
            raise ApiError(400, VALIDATION_FAILED, errors)
        d.metadata.setdefault("access_right", "open")
        if not d.submitted:
            d.doi = self._doi(d.id)
            d.metadata["doi"] = d.doi
            self.concepts.setdefault(d.conceptrecid, []).append(d.id)
        d.communities = [c["identifier"] for c in d.metadata.get("communities") or []]
        d.submitted, d.editing, d.saved_metadata = True, False, None
        d.bucket.locked = True
        d.modified = _now()
        self.records[d.id] = {"metadata": json.loads(json.dumps(d.metadata))}
        return self.deposition_json(d)

    # ------------------------------------------------------------------ routes
    def handle(self, h: "_Handler", method: str, path: str, query: dict, body: bytes | None):
        """Return (status, json_or_bytes, headers). ``body`` is None for uploads."""
        for fault in self._faults:
            if fault.times > 0 and fault.method == method and fault.path.fullmatch(path):
                fault.times -= 1
                if fault.after_handling:
                    self._route(h, method, path, query, body)
                if fault.status >= 500:
                    return fault.status, b"<h1>Internal Server Error</h1>", {
                        "Content-Type": "text/html"}
                headers = {}
                if fault.status == 429:
                    wait = fault.retry_after or 1
                    headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset": str(int(_dt.datetime.now().timestamp())
                                                        + wait)}
                    if not fault.only_reset_header:
                        headers["Retry-After"] = str(wait)
                message = fault.message or {429: "Too Many Requests"}.get(fault.status, "Error")
                return fault.status, {"status": fault.status, "message": message}, headers
        return self._route(h, method, path, query, body)

    def _route(self, h: "_Handler", method: str, path: str, query: dict, body: bytes | None):
        m = re.fullmatch(r"/api/records/(\d+)", path)
        if m and method == "GET":
            return self._get_record(int(m.group(1)))
        m = re.fullmatch(r"/api/records/(\d+)/versions/latest", path)
        if m and method == "GET":
            rec_id = int(m.group(1))
            concept = rec_id if rec_id in self.concepts else getattr(
                self.depositions.get(rec_id), "conceptrecid", None)
            if not self.concepts.get(concept):
                raise ApiError(404, PID_MISSING)
            return 302, b"", {"Location": f"{self.url}/api/records/{self.concepts[concept][-1]}"}
        m = re.fullmatch(r"/api/records/(\d+)/files/([^/]+)/content", path)
        if m and method == "GET":
            return self._get_record_file(int(m.group(1)), unquote(m.group(2)))
        m = re.fullmatch(r"/records?/(\d+)", path)
        if m and method == "GET":
            return 200, f"<html><title>Record {m.group(1)}</title></html>".encode(), {
                "Content-Type": "text/html"}

        user = self._authenticate(h, query)
        m = re.fullmatch(r"/api/files/([0-9a-f-]+)/(.+)", path)
        if m:
            bucket = self._bucket(m.group(1), user, WRITE)
            return self._bucket_object(h, method, bucket, unquote(m.group(2)))
        if path.rstrip("/") == "/api/deposit/depositions":
            if method == "GET":   # one's own depositions: any valid token, no scope
                size = int((query.get("size") or ["10"])[0])
                mine = [d for d in self.depositions.values()
                        if d.owner == user[0] and d.id not in self.unlisted]
                mine.sort(key=lambda d: (d.submitted, -d.id))
                return 200, [self.deposition_json(d) for d in mine[:size]], {}
            self._scope(user, WRITE)
            if method == "POST":
                return self._create(user[0], self._json(h, body))
        m = re.fullmatch(r"/api/deposit/depositions/(\d+)(/.*)?", path)
        if m:
            d = self._deposition(int(m.group(1)), user)
            rest = m.group(2) or ""
            act = re.fullmatch(r"/actions/(publish|edit|discard|newversion)", rest)
            if act and method == "POST":
                self._scope(user, ACTIONS)
                return self._action(d, act.group(1))
            self._scope(user, WRITE)
            if rest == "" and method == "GET":
                return 200, self.deposition_json(d), {}
            if rest == "" and method == "PUT":
                data = self._json(h, body)
                if d.submitted and not d.editing:
                    raise ApiError(404, PID_MISSING)
                md = deserialize(data)
                keep = {k: d.metadata[k] for k in ("prereserve_doi", "doi") if k in d.metadata}
                d.metadata = {**md, **keep}
                d.modified = _now()
                return 200, self.deposition_json(d), {}
            if rest == "" and method == "DELETE":
                if d.submitted:
                    raise ApiError(404, PID_MISSING)
                del self.depositions[d.id]
                return 204, b"", {}
            if rest == "/files" and method == "GET":
                return 200, [self._deposit_file_json(d, f) for f in d.bucket.files.values()], {}
            fm = re.fullmatch(r"/files/([0-9a-f-]+)", rest)
            if fm and method == "DELETE":
                if d.bucket.locked:
                    raise ApiError(403, PERMISSION_DENIED)
                for key, f in list(d.bucket.files.items()):
                    if f.id == fm.group(1):
                        del d.bucket.files[key]
                        return 204, b"", {}
                raise ApiError(404, "File does not exist")
        if re.fullmatch(r"/api/(deposit|files|records).*", path):
            raise ApiError(405 if path.startswith("/api/deposit") else 404,
                           "The method is not allowed for the requested URL.")
        raise ApiError(404, "The requested URL was not found on the server.")

    def _authenticate(self, h, query) -> tuple[str, set[str]]:
        """An unknown token leaves the request anonymous, and anonymous may do nothing
        here: 403, as for a token without the scope."""
        auth = h.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else (query.get("access_token") or [""])[0]
        if token not in self.tokens:
            raise ApiError(403, PERMISSION_DENIED)
        return self.tokens[token]

    @staticmethod
    def _scope(user, scope: str) -> None:
        if scope not in user[1]:
            raise ApiError(403, PERMISSION_DENIED)

    def _json(self, h, body: bytes | None) -> dict:
        if not h.headers.get("Content-Type", "").startswith("application/json"):
            raise ApiError(415, "The server does not support the media type transmitted "
                                "in the request.")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "The browser (or proxy) sent a request that this server "
                                "could not understand.") from None
        self.bodies_seen.append(body or b"")
        if not isinstance(data, dict):
            raise ApiError(400, VALIDATION_FAILED, [problem("_schema", "Invalid input type.")])
        return data

    def _deposition(self, dep_id: int, user) -> Deposition:
        d = self.depositions.get(dep_id)
        if d is None:
            raise ApiError(404, PID_MISSING)
        if d.owner != user[0]:
            raise ApiError(403, PERMISSION_DENIED)
        return d

    def _bucket(self, bucket_id: str, user, scope: str) -> Bucket:
        self._scope(user, scope)
        bucket = self.buckets.get(bucket_id)
        if bucket is None:
            raise ApiError(404, "Bucket does not exist.")
        owner = next((d.owner for d in self.depositions.values() if d.bucket is bucket), None)
        if owner != user[0]:
            raise ApiError(403, PERMISSION_DENIED)
        return bucket

    def _create(self, owner: str, data: dict):
        md = deserialize(data)
        dep_id = self._new_id()
        concept = self._new_id()
        d = Deposition(dep_id, concept, owner, self._new_bucket(), {})
        d.metadata = {**md, "prereserve_doi": {"doi": self._doi(dep_id), "recid": dep_id}}
        self.depositions[dep_id] = d
        return 201, self.deposition_json(d), {}

    def _action(self, d: Deposition, action: str):
        if action == "publish":
            return 202, self._publish(d), {}
        if action == "edit":
            if not d.submitted or d.editing:
                raise ApiError(400, "Deposition state does not allow for editing.")
            d.editing, d.saved_metadata = True, json.loads(json.dumps(d.metadata))
            return 201, self.deposition_json(d), {}
        if action == "discard":
            if not d.editing:
                raise ApiError(400, "Deposition is not being edited.")
            d.metadata, d.editing, d.saved_metadata = d.saved_metadata, False, None
            return 201, self.deposition_json(d), {}
        # newversion: of any published version; the draft follows the latest one
        if not d.submitted:
            raise ApiError(404, PID_MISSING)
        latest = self.depositions[self.concepts[d.conceptrecid][-1]]
        draft = self._draft_of_concept(d.conceptrecid)
        if draft is None:
            new_id = self._new_id()
            md = {k: v for k, v in json.loads(json.dumps(latest.metadata)).items()
                  if k not in ("doi", "publication_date")}
            md["prereserve_doi"] = {"doi": self._doi(new_id), "recid": new_id}
            draft = Deposition(new_id, d.conceptrecid, d.owner, self._new_bucket(), md)
            self.depositions[new_id] = draft
        elif draft.bucket.files:   # import_files wants an empty draft
            raise ApiError(400, VALIDATION_FAILED, [problem("files.enabled", PENDING_FILES)])
        for key, f in latest.bucket.files.items():   # import_files: a modifiable copy
            copy = self._file_path()
            copy.write_bytes(f.path.read_bytes())
            draft.bucket.files[key] = StoredFile(key, copy, f.size, f.md5)
        return 201, self.deposition_json(draft), {}

    def _bucket_object(self, h: "_Handler", method: str, bucket: Bucket, key: str):
        if method == "PUT":
            return self._upload(h, bucket, key)
        h.drain_body()
        f = bucket.files.get(key)
        if method == "DELETE":
            if bucket.locked:
                raise ApiError(403, PERMISSION_DENIED)
            if f is None:
                raise ApiError(404, "Object does not exists.")
            del bucket.files[key]
            return 204, b"", {}
        if method == "GET":
            if f is None:
                raise ApiError(404, "Object does not exists.")
            return 200, f.path, {"Content-Type": "application/octet-stream"}
        raise ApiError(405, "The method is not allowed for the requested URL.")

    def _upload(self, h: "_Handler", bucket: Bucket, key: str):
        length = h.headers.get("Content-Length")
        chunked = "chunked" in h.headers.get("Transfer-Encoding", "")
        if length is None and not chunked:
            raise ApiError(411, "Length Required")
        if bucket.locked:
            h.drain_body()
            raise ApiError(403, PERMISSION_DENIED)
        others = {k: f for k, f in bucket.files.items() if k != key}
        used = sum(f.size for f in others.values())
        if length is not None and used + int(length) > self.quota_bytes or (
                key not in bucket.files and len(others) >= self.max_files):
            h.drain_body()
            raise ApiError(400, "Bucket quota exceeded.")
        drop_after = self._drops.pop(0) if self._drops else None
        target = self._file_path()
        md5 = hashlib.md5()
        size = 0
        with open(target, "wb") as out:
            for chunk in h.body_chunks():
                if drop_after is not None and size + len(chunk) >= drop_after:
                    h.drop_connection()
                    target.unlink()
                    return None
                md5.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if self._corrupt_uploads and size:
            self._corrupt_uploads -= 1
            data = bytearray(target.read_bytes())
            data[size // 2] ^= 0xFF
            target.write_bytes(bytes(data))
            md5 = hashlib.md5(data)
        if used + size > self.quota_bytes:
            target.unlink()
            raise ApiError(400, "Bucket quota exceeded.")
        old = bucket.files.get(key)
        stored = StoredFile(key, target, size, md5.hexdigest())
        if old is not None:
            stored.id = old.id
        bucket.files[key] = stored
        return 201, self._bucket_file_json(bucket, stored), {}

    def _get_record(self, rec_id: int):
        if rec_id in self.concepts and self.concepts[rec_id] and self.concept_redirect:
            latest = self.concepts[rec_id][-1]
            return 302, b"", {"Location": f"{self.url}/api/records/{latest}"}
        d = self.depositions.get(rec_id)
        if d is None or not d.submitted or rec_id not in self.records:
            raise ApiError(404, PID_MISSING)
        latest = self.concepts[d.conceptrecid][-1]
        md = self.metadata_json(self.records[rec_id]["metadata"])
        files = [{"id": f.id, "key": f.key, "size": f.size, "checksum": f"md5:{f.md5}",
                  "links": {"self": f"{self.url}/api/records/{rec_id}/files/"
                                    f"{quote(f.key)}/content"}}
                 for f in d.bucket.files.values()]
        return 200, {
            "id": rec_id, "recid": str(rec_id), "conceptrecid": str(d.conceptrecid),
            "doi": d.doi, "conceptdoi": self._doi(d.conceptrecid),
            "doi_url": f"https://doi.org/{d.doi}", "title": md.get("title", ""),
            "metadata": md, "files": files, "created": d.created, "updated": d.modified,
            "state": "done", "submitted": True,
            "links": {"self": f"{self.url}/api/records/{rec_id}",
                      "html": f"{self.url}/records/{rec_id}", "doi": f"https://doi.org/{d.doi}",
                      "latest": f"{self.url}/api/records/{latest}",
                      "latest_html": f"{self.url}/records/{latest}",
                      "files": f"{self.url}/api/records/{rec_id}/files"},
        }, {}

    def _get_record_file(self, rec_id: int, key: str):
        d = self.depositions.get(rec_id)
        if d is None or not d.submitted or key not in d.bucket.files:
            raise ApiError(404, PID_MISSING)
        f = d.bucket.files[key]
        if self._drop_downloads.get(key):
            return 200, _Truncated(f.path, self._drop_downloads[key].pop(0)), {
                "Content-Type": "application/octet-stream"}
        if key in self._corrupt_downloads:
            data = bytearray(f.path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            return 200, bytes(data), {"Content-Type": "application/octet-stream"}
        return 200, f.path, {"Content-Type": "application/octet-stream"}


@dataclass
class _Truncated:
    """A file answer announced whole but broken off after ``after`` bytes."""

    path: Path
    after: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: FakeZenodo

    def handle_error(self, request, client_address):  # dropped connections are on purpose
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args):  # keep test output clean
        pass

    # --- body reading (Content-Length or chunked) ---------------------------
    def body_chunks(self, size: int = 1 << 20):
        if self._body_done:
            return
        self._body_done = True
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(n)
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(size, remaining))
            if not chunk:
                raise ConnectionError("client went away")
            remaining -= len(chunk)
            yield chunk

    def drain_body(self) -> None:
        for _ in self.body_chunks():
            pass

    def read_body(self) -> bytes:
        return b"".join(self.body_chunks())

    def drop_connection(self) -> None:
        """Reset the TCP connection, as a proxy timing out mid-upload would."""
        self.close_connection = True
        self._dropped = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    # --- dispatch ---------------------------------------------------------------
    def _dispatch(self, method: str):
        self._body_done = False
        self._dropped = False
        app = self.server.app
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        is_upload = method == "PUT" and path.startswith("/api/files/")
        body = None if is_upload else self.read_body()
        with app._lock:
            app.headers_seen.append(dict(self.headers))
            try:
                result = app.handle(self, method, path, query, body)
            except ApiError as exc:
                self.drain_body()
                payload = {"status": exc.status, "message": exc.message}
                if exc.errors:
                    payload["errors"] = exc.errors
                result = (exc.status, payload, {})
            if result is None or self._dropped:
                app.log.append((method, path, 0))
                return
            status, payload, headers = result
            app.log.append((method, path, status))
        self.send_response(status)
        if isinstance(payload, _Truncated):
            self.send_header("Content-Length", str(payload.path.stat().st_size))
            self.end_headers()
            with open(payload.path, "rb") as fh:
                self.wfile.write(fh.read(payload.after))
            self.wfile.flush()
            self.drop_connection()
            return
        if isinstance(payload, Path):
            self.send_header("Content-Length", str(payload.stat().st_size))
        else:
            if isinstance(payload, (dict, list)):
                payload = json.dumps(payload).encode()
                headers = {"Content-Type": "application/json", **headers}
            self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if isinstance(payload, Path):
            with open(payload, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    self.wfile.write(chunk)
        else:
            self.wfile.write(payload)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")
