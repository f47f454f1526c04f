"""Data kept outside a bundle by reference (BagIt fetch.txt): fetched and checked at replay.

Each reference names a URL, a size and a sha256. The file is streamed to a temporary
name beside its destination, checked against both, and only then renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import urllib.parse
from pathlib import Path

from .errors import BundleError, RemoteError, UsageError, write_error
from .progress import CancelToken, Progress, Reporter, reporter, token

CHUNK = 1024 * 1024


def fetch_references(references: list[dict], study_dir: Path, *,
                     report: Reporter | None = None,
                     cancel: CancelToken | None = None) -> list[Path]:
    """Download every ``{"path", "url", "size", "sha256"}`` into ``study_dir/path``."""
    report, cancel = reporter(report), token(cancel)
    fetched = []
    for ref in references:
        rel = Path(ref["path"])
        if rel.is_absolute() or ".." in rel.parts:
            raise BundleError(f"The bundle references data at an unsafe path: {ref['path']!r}.")
        target = study_dir / rel
        if target.exists() and _sha256(target) == ref["sha256"]:
            fetched.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        try:
            _download(ref["url"], partial, int(ref["size"]), ref["sha256"], ref["path"],
                      report, cancel)
            partial.replace(target)
        except OSError as exc:
            raise write_error(target, exc) from None
        finally:
            with contextlib.suppress(OSError):
                partial.unlink()
        fetched.append(target)
    return fetched


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _open(url: str):
    scheme = urllib.parse.urlparse(url).scheme
    if scheme == "file":
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
        try:
            return open(path, "rb")
        except OSError as exc:
            raise UsageError(f"The referenced data {path} cannot be read: {exc.strerror}.") from None
    if scheme in ("http", "https"):
        import requests

        try:
            response = requests.get(url, stream=True, timeout=60)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise RemoteError(f"The referenced data at {url} could not be downloaded ({exc}).",
                              "Check the network, or fetch the file yourself into the study "
                              "folder and replay the unpacked bundle.") from None
        response.raw.decode_content = True
        return response.raw
    raise UsageError(f"The referenced data has an unsupported URL: {url}.")


def _download(url: str, dest: Path, size: int, digest: str, name: str, report, cancel) -> None:
    sha = hashlib.sha256()
    done = 0
    with contextlib.closing(_open(url)) as src, open(dest, "wb") as out:
        while chunk := src.read(CHUNK):
            done += len(chunk)
            if done > size:
                raise BundleError(f"The referenced data {name} is larger than the "
                                  f"{size} bytes the bundle declares.")
            sha.update(chunk)
            out.write(chunk)
            report(Progress("fetch", done, size, name))
            cancel.check()
    if done != size or sha.hexdigest() != digest:
        raise BundleError(f"The referenced data {name} from {url} does not match the size "
                          "and checksum the bundle declares.",
                          "The file at that address has changed or is damaged.")
