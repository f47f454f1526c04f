"""The bag's tag files as bagit.py reads them (RFC 8493), with bounds.

bagit.txt must say a BagIt version bagit.py knows, in UTF-8; manifest and fetch.txt
paths are percent-encoded for CR, LF and ``%`` (``%0D``, ``%0A``, ``%25``); fetch.txt
entries name an http(s) URL, a size and a payload path (whose sha256 the manifest
holds). JSON read from a bundle is bounded in size, depth and number of values before
it is parsed, so a few kilobytes cannot become gigabytes of Python objects.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Iterator

from ..errors import BundleError, UnsafeBundleError
from . import format as fmt

_PERCENT = re.compile(r"%(0[AaDd]|25)")
_DECODED = {"0a": "\n", "0d": "\r", "25": "%"}
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.S)


def decode_path(text: str) -> str:
    return _PERCENT.sub(lambda m: _DECODED[m.group(1).lower()], text)


def encode_path(name: str) -> str:
    return name.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")


def text_of(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"The bundle's {name} is not UTF-8.") from None


def parse_tag_lines(data: bytes, name: str) -> dict[str, str]:
    """``Label: value`` lines; continuation lines (indented) are joined, as bagit.py does."""
    out: dict[str, str] = {}
    last = None
    for line in text_of(data, name).splitlines():
        if line[:1] in (" ", "\t") and last is not None:
            out[last] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            out[last] = value.strip()
    return out


def check_bagit_txt(data: bytes | None, bundle: str) -> None:
    if data is None:
        raise BundleError(f"{bundle} is not a BagIt bag: it has no bagit.txt at its start.")
    labels = parse_tag_lines(data, fmt.BAGIT_TXT)
    version = labels.get("BagIt-Version")
    if version not in fmt.KNOWN_BAGIT_VERSIONS:
        raise BundleError(
            f"{bundle}'s bagit.txt declares BagIt version {version!r}, which is not one of "
            f"the versions a reader knows ({', '.join(fmt.KNOWN_BAGIT_VERSIONS)}).")
    encoding = labels.get("Tag-File-Character-Encoding", "")
    if encoding.replace("-", "").lower() != "utf8":
        raise BundleError(f"{bundle}'s bagit.txt declares tag files in {encoding!r}; "
                          "studypack reads UTF-8 bags only.")


def manifest_entries(data: bytes, name: str) -> Iterator[tuple[str, str]]:
    """(path, sha256) per line, paths percent-decoded, one line at a time."""
    for path, digest, _ in manifest_lines(data, name):
        yield path, digest


def manifest_lines(data: bytes, name: str) -> Iterator[tuple[str, str, str]]:
    """(decoded path, sha256, path as written) per line. The path as written lets a
    reader accept bags of tools that do not encode ``%`` (bagit.py, bagit-python#157)."""
    for number, raw in enumerate(data.splitlines(), 1):
        line = text_of(raw, name)
        if not line.strip():
            continue
        digest, sep, path = line.partition(" ")
        path = path.lstrip(" *")   # sha256sum's text/binary marks
        if len(digest) != 64 or not sep or not path or not all(
                c in "0123456789abcdefABCDEF" for c in digest):
            raise BundleError(f"The bundle's {name} is malformed at line {number}.")
        yield decode_path(path), digest.lower(), path


def parse_manifest(data: bytes, name: str) -> dict[str, str]:
    return dict(manifest_entries(data, name))


def parse_fetch(data: bytes) -> dict[str, tuple[str, int]]:
    """fetch.txt lines are ``URL LENGTH PATH``: return {path: (url, length)}. Only
    http(s) URLs with a size are accepted; the sha256 comes from the manifest."""
    entries: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text_of(data, fmt.FETCH_TXT).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 2)
        where = f"The bundle's fetch.txt, line {number}"
        if len(parts) != 3:
            raise UnsafeBundleError(f"{where}, is not 'URL LENGTH PATH'.")
        url, length, path = parts[0], parts[1], decode_path(parts[2].strip())
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise UnsafeBundleError(
                f"{where}, names a {urllib.parse.urlsplit(url).scheme or 'schemeless'} URL; "
                "data kept by reference must be fetched over http or https.")
        if not length.isdigit():
            raise UnsafeBundleError(f"{where}, gives no size for {path!r}; a size is required.")
        parts_of = path.split("/")
        if parts_of[0] != fmt.PAYLOAD or len(parts_of) < 2 or any(
                p in ("", ".", "..") for p in parts_of):
            raise UnsafeBundleError(f"{where}, names an unsafe path {path!r}.")
        entries[path] = (url, int(length))
    return entries


def read_json_file(path, what: str | None = None) -> object:
    """:func:`load_json` of a file of an unpacked bag, its size checked before it is
    read. OSError is left to the caller (a missing file is its own sentence)."""
    import os

    what = what or str(path)
    limit = fmt.TAG_FILE_LIMITS[fmt.METADATA]
    if os.stat(path).st_size > limit:
        raise BundleError(f"{what} is over the bound of {fmt.kib(limit)} for JSON in a bundle.")
    with open(path, "rb") as fh:
        return load_json(fh.read(limit + 1), what)


def load_json(data: bytes, what: str) -> object:
    """Parse JSON from a bundle after checking its size, nesting and value count.
    Raises BundleError naming the bound (``what`` names the file)."""
    limit = fmt.TAG_FILE_LIMITS.get(fmt.METADATA)
    if len(data) > limit:
        raise BundleError(f"{what} is {len(data):,} bytes, over the bound of {fmt.kib(limit)}.")
    depth = values = 0
    for token in _JSON_TOKENS.finditer(data):
        first = token.group()[:1]
        if first in (b"[", b"{"):
            depth += 1
            if depth > fmt.MAX_JSON_DEPTH:
                raise BundleError(f"{what} is nested more than {fmt.MAX_JSON_DEPTH} levels "
                                  "deep, over the bound for JSON in a bundle.")
        elif first in (b"]", b"}"):
            depth -= 1
        values += 1
        if values > fmt.MAX_JSON_VALUES:
            raise BundleError(f"{what} holds more than {fmt.MAX_JSON_VALUES:,} values, over "
                              "the bound for JSON in a bundle.")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BundleError(f"{what} is not valid JSON.") from None
