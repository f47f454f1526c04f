"""Every checksum of a bag against its manifests, read line by line: the tag manifest
must cover every tag file (so a signature of it covers them all), the manifest every
payload file and every fetched file; and the .sha256 sidecar beside the bundle."""

from __future__ import annotations

from pathlib import Path

from ..safetext import printable
from . import format as fmt
from .tagfiles import manifest_entries, manifest_lines


def compare(path: Path, digests: dict[str, bytes], small: dict[str, bytes],
            fetch: dict[str, tuple[str, int]],
            bundle_sha256: str) -> tuple[list[str], int, str]:
    """(problems, checksums checked, sidecar state). Every tag file must be in the tag
    manifest (so a signature of it covers them all), every payload file in the
    manifest, every fetched file too. The manifests are read line by line against the
    digests, which shrink as they are matched."""
    problems: list[str] = []
    checked = 0
    tag_bytes = small.get(fmt.TAGMANIFEST)
    tag_listed: set[str] = set()
    if tag_bytes is None:
        problems.append(f"{fmt.TAGMANIFEST} is missing")
    else:
        for name, expected in manifest_entries(tag_bytes, fmt.TAGMANIFEST):
            checked += 1
            tag_listed.add(name)
            actual = digests.get(name)
            if actual is None:
                problems.append(f"{printable(name)} is listed in the tag manifest but missing")
            elif actual.hex() != expected:
                problems.append(f"{printable(name)} does not match its checksum")
    for name in sorted(n for n in digests if not n.startswith(fmt.PAYLOAD + "/")
                       and not _is_tag_manifest(n) and n not in tag_listed):
        problems.append(f"the tag file {printable(name)} is not listed in {fmt.TAGMANIFEST}, so no "
                        "checksum (nor a signature) covers it")
    manifest_bytes = small.get(fmt.MANIFEST)
    if manifest_bytes is None:
        problems.append(f"{fmt.MANIFEST} is missing")
    else:
        for name, expected, written in manifest_lines(manifest_bytes, fmt.MANIFEST):
            if not name.startswith(fmt.PAYLOAD + "/"):
                problems.append(f"{fmt.MANIFEST} lists {printable(name)}, which is not in data/")
                continue
            actual = digests.pop(name, None)
            if actual is None and written != name and written in digests:
                name = written        # a '%' its writer did not encode
                actual = digests.pop(name)
            if actual is None:
                if fetch.pop(name, None) is None:
                    problems.append(f"{printable(name)} is listed in the manifest but missing")
                continue
            checked += 1
            if actual.hex() != expected:
                problems.append(f"{printable(name)} does not match its checksum")
    for name in sorted(n for n in digests if n.startswith(fmt.PAYLOAD + "/")):
        problems.append(f"{printable(name)} is not listed in the manifest")
    for name in sorted(fetch):
        problems.append(f"fetch.txt names {printable(name)}, which the manifest gives no sha256 for")
    sidecar_state = check_sidecar(path, bundle_sha256)
    if sidecar_state == "mismatch":
        problems.append(f"{path.name}{fmt.SIDECAR_SUFFIX} does not match the bundle")
    return problems, checked, sidecar_state


def check_sidecar(path: Path, bundle_sha256: str) -> str:
    sidecar = Path(fmt.sidecar_path(path))
    if not sidecar.exists():
        return "absent"
    if not sidecar.is_file():  # a FIFO would block the read forever
        return "mismatch"
    try:
        with open(sidecar, "rb") as fh:  # one line; a stranger's 10 GB file is not read
            expected = fh.read(4096).decode("utf-8").split()[0].lower()
    except (OSError, UnicodeDecodeError, IndexError):
        return "mismatch"
    return "ok" if expected == bundle_sha256 else "mismatch"


def _is_tag_manifest(name: str) -> bool:
    """RFC 8493 2.2.1: a tag manifest lists no tag manifest (of any algorithm)."""
    return name.startswith("tagmanifest-") and name.endswith(".txt") and "/" not in name
