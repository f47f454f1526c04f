"""Data kept outside a bundle by reference (BagIt fetch.txt): the one downloader.

Each reference names a path, a URL, a size and a sha256. The file is streamed to a
temporary name beside its destination; its size is checked while it streams (a file
larger than declared is stopped at the first byte too many) and its sha256 once it is
complete; only then is it renamed into place. A file already in place with the right
checksum is not fetched again. Replay reads the references from the bag's fetch.txt and
manifest (:func:`studypack.replay.study.fetch_references`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import BundleError, RemoteError, UsageError, write_error
from .hashing import CHUNK, sha256_file
from .progress import CancelToken, Progress, Reporter, reporter, token

HINT = ("Check the network (a replay fetches referenced data before it runs), or give "
        "the file with --input.")


@dataclass(frozen=True)
class Reference:
    path: str                # relative to the folder the data is fetched into
    url: str                 # http(s):// or file://
    size: int | None         # bytes; None when the record does not say
    sha256: str


def fetch_references(references: list[Reference], dest_dir: Path, *,
                     report: Reporter | None = None,
                     cancel: CancelToken | None = None) -> list[Reference]:
    """Fetch every reference into ``dest_dir/path``; return the ones downloaded (a file
    already there with the right sha256 is kept)."""
    report, cancel = reporter(report), token(cancel)
    fetched = []
    for ref in references:
        rel = PurePosixPath(ref.path)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise BundleError(f"The bundle references data at an unsafe path: {ref.path!r}.")
        target = dest_dir / rel
        if target.is_file() and sha256_file(target, cancel) == ref.sha256:
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(target.parent, exc) from None
        partial = target.with_name(target.name + ".partial")
        try:
            _download(ref, partial, report, cancel)
            os.replace(partial, target)
        except OSError as exc:
            raise write_error(target, exc) from None
        finally:
            with contextlib.suppress(OSError):
                partial.unlink()
        fetched.append(ref)
    return fetched


def _chunks(url: str):
    """The bytes at ``url``, in chunks; network failures as one RemoteError."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.parse.unquote(parsed.path))
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise UsageError(f"The referenced data {path} cannot be read: "
                             f"{exc.strerror}.") from None
        with fh:
            while chunk := fh.read(CHUNK):
                yield chunk
        return
    if parsed.scheme not in ("http", "https"):
        raise BundleError(f"The bundle references data at {url!r}, which is not an "
                          "http(s) or file URL.")
    import requests

    try:
        with requests.get(url, stream=True, timeout=60) as response:
            response.raise_for_status()
            yield from response.iter_content(CHUNK)
    except requests.RequestException as exc:
        raise RemoteError(f"The referenced data at {url} could not be downloaded ({exc}).",
                          HINT) from None


def _download(ref: Reference, dest: Path, report: Reporter, cancel: CancelToken) -> None:
    sha, done = hashlib.sha256(), 0
    report(Progress("fetch", 0, ref.size, f"fetching {ref.path} from {ref.url}"))
    with contextlib.closing(_chunks(ref.url)) as chunks, open(dest, "wb") as out:
        for chunk in chunks:
            cancel.check()
            done += len(chunk)
            if ref.size is not None and done > ref.size:
                break
            sha.update(chunk)
            out.write(chunk)
            report(Progress("fetch", done, ref.size, f"fetching {ref.path}"))
    if (ref.size is not None and done != ref.size) or sha.hexdigest() != ref.sha256:
        raise BundleError(f"The referenced data {ref.path} fetched from {ref.url} is not the "
                          "file the bundle recorded (its size or sha256 differs).",
                          "The copy at that address has changed or is damaged; nothing "
                          "was kept.")
