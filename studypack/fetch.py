"""Download a bundle from a Zenodo record, given its DOI, record URL or number.

The record is read from the public records API (``GET /api/records/:id``; a concept
DOI leads to the latest version). The ``.studypack`` file is streamed to a temporary
file beside its destination, checked against Zenodo's md5 and against the bundle's own
``.sha256`` sidecar from the same record, and only then renamed into place: a damaged
download never looks like a bundle. A bundle already present with the right sha256 is
reused rather than downloaded again.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from .deposit.client import ZenodoClient
from .deposit.refs import SANDBOX, ZENODO, implied_site, parse_ref
from .deposit.workflow import _SHA256_LINE
from .errors import BundleError, UsageError
from .fsutil import atomic_output
from .hashing import sha256_file
from .progress import CancelToken, Progress, Reporter, reporter, token as cancel_token

EXTENSION = ".studypack"


@dataclass
class FetchResult:
    path: Path
    record_id: int
    doi: str | None
    size: int
    sha256: str
    sidecar_checked: bool      # False when the record has no .sha256 beside the bundle
    reused: bool = False       # the file was already there, with the right checksum


def fetch_bundle(ref: str, dest_dir: str | Path, base_url: str | None = None,
                 report: Reporter | None = None, cancel: CancelToken | None = None) -> Path:
    """Download the bundle of a Zenodo record into ``dest_dir``; return its path.

    ``ref`` is a DOI (``10.5281/zenodo.N``, ``https://doi.org/…``), a record URL
    (``https://zenodo.org/records/N``) or a record number; ``base_url`` overrides the
    site (the sandbox, or a test server).
    """
    return fetch_record(ref, dest_dir, base_url=base_url, report=report, cancel=cancel).path


def fetch_record(ref: str, dest_dir: str | Path, *, base_url: str | None = None,
                 report: Reporter | None = None, cancel: CancelToken | None = None,
                 client: ZenodoClient | None = None) -> FetchResult:
    report, cancel = reporter(report), cancel_token(cancel)
    implied = implied_site(ref)
    if implied and base_url and base_url.rstrip("/") in (ZENODO, SANDBOX) \
            and implied != base_url.rstrip("/"):
        raise UsageError(f"{ref} is a record on {implied}, not on {base_url.rstrip('/')}.",
                         "Leave out --sandbox for zenodo.org DOIs (10.5281/…); use it for "
                         "sandbox DOIs (10.5072/…).")
    target_ref = parse_ref(ref, base_url)
    client = client or ZenodoClient(target_ref.base_url)
    client.report = report
    report(Progress("fetch", message=f"Reading record {target_ref.record_id}"))
    record = client.get_record(target_ref.record_id, cancel=cancel)
    files = record.get("files") or []
    bundles = [f for f in files if str(f.get("key", "")).endswith(EXTENSION)]
    names = ", ".join(str(f.get("key")) for f in files) or "no files"
    if not bundles:
        raise UsageError(f"Record {record.get('id')} holds no {EXTENSION} file ({names}).",
                         "Check the DOI: it should be the record of a studypack bundle.")
    if len(bundles) > 1:
        raise UsageError(f"Record {record.get('id')} holds several bundles ({names}).",
                         "Download the one you want from the record page and give its path.")
    entry = bundles[0]
    name = _safe_name(str(entry["key"]))
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / name

    sidecar_text = None
    sidecar_entry = next((f for f in files if f.get("key") == entry["key"] + ".sha256"), None)
    if sidecar_entry is not None:
        buffer = io.BytesIO()
        got = client.download(_file_url(sidecar_entry), buffer, name=sidecar_entry["key"],
                              cancel=cancel)
        _check_md5(got.md5, sidecar_entry, record)
        sidecar_text = buffer.getvalue().decode("utf-8", errors="replace")
    expected_sha256 = _parse_sidecar(sidecar_text) if sidecar_text is not None else None

    if target.exists():
        if expected_sha256 and sha256_file(target, cancel) == expected_sha256:
            _write_sidecar(target, sidecar_text)
            return FetchResult(target, int(record["id"]), record.get("doi"),
                               target.stat().st_size, expected_sha256, True, reused=True)
        raise UsageError(f"{target} already exists and is not this record's bundle; it was "
                         "left as it is.", "Choose another folder with -o.")

    with atomic_output(target) as out:
        got = client.download(_file_url(entry), out, name=name, size=entry.get("size"),
                              report=report, cancel=cancel)
        _check_md5(got.md5, entry, record)
        if expected_sha256 and got.sha256 != expected_sha256:
            raise BundleError(
                f"The bundle downloaded from record {record['id']} does not match its .sha256 "
                f"file (sha256 {got.sha256}, expected {expected_sha256}); nothing was kept.",
                "The record's files disagree: tell the study's authors.")
    if sidecar_text is not None:
        _write_sidecar(target, sidecar_text)
    report(Progress("fetch", got.size, got.size, f"Saved {target}"))
    return FetchResult(target, int(record["id"]), record.get("doi"), got.size, got.sha256,
                       expected_sha256 is not None)


def _file_url(entry: dict) -> str:
    links = entry.get("links") or {}
    url = links.get("self") or links.get("download") or links.get("content")
    if not url:
        raise BundleError(f"Zenodo lists {entry.get('key')} without a download link.")
    return url


def _check_md5(md5: str, entry: dict, record: dict) -> None:
    listed = str(entry.get("checksum", "")).removeprefix("md5:")
    if listed and listed != md5:
        raise BundleError(
            f"The download of {entry.get('key')} from record {record.get('id')} is damaged: "
            f"its md5 is {md5}, Zenodo lists {listed}; nothing was kept.",
            "Run the same command again; if it happens again, the network or a proxy alters "
            "the download.")


def _parse_sidecar(text: str) -> str:
    m = _SHA256_LINE.match(text.strip() + " ")
    if not m:
        raise BundleError("The record's .sha256 file is not a sha256sum line.")
    return m.group(1).lower()


def _safe_name(key: str) -> str:
    name = Path(key).name
    if name != key or name.startswith(".") or not name:
        raise BundleError(f"Zenodo lists a file named {key!r}, which is not a plain file name.")
    return name


def _write_sidecar(target: Path, text: str | None) -> None:
    if text is None:
        return
    sidecar = target.with_name(target.name + ".sha256")
    if sidecar.exists():
        return
    with atomic_output(sidecar) as fh:
        fh.write(text.encode("utf-8"))
