"""``studypack fetch``: download a bundle from Zenodo by DOI or record URL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..fetch import fetch_record
from ..fsutil import human_size
from ._console import out_console, progress_bar, shown


def register(sub) -> None:
    parser = sub.add_parser(
        "fetch", help="download a bundle from Zenodo by DOI or record URL",
        description="Download the .studypack file of a Zenodo record and check it against "
                    "Zenodo's md5 and the bundle's own .sha256. REF is a DOI "
                    "(10.5281/zenodo.N, https://doi.org/10.5281/zenodo.N — Zenodo DOIs map "
                    "to records/N, so doi.org is not asked), a record URL "
                    "(https://zenodo.org/records/N) or a record number. A concept DOI gives "
                    "the latest version.")
    parser.add_argument("ref", metavar="DOI_OR_URL", help="DOI, record URL or record number")
    parser.add_argument("-o", "--output", type=Path, default=Path("."), metavar="DIR",
                        help="folder to save the bundle in (default: the current folder)")
    site = parser.add_mutually_exclusive_group()
    site.add_argument("--sandbox", action="store_true",
                      help="fetch from sandbox.zenodo.org (sandbox DOIs and record numbers)")
    site.add_argument("--url", metavar="BASE_URL",
                      help="another Zenodo-compatible server, e.g. a local test server")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..deposit.refs import SANDBOX

    base_url = args.url or (SANDBOX if args.sandbox else None)
    with progress_bar(quiet=args.json) as (report, cancel):
        result = fetch_record(args.ref, args.output, base_url=base_url, report=report,
                              cancel=cancel)
    if args.json:
        sys.stdout.write(json.dumps({
            "path": str(result.path), "record_id": result.record_id, "doi": result.doi,
            "size": result.size, "sha256": result.sha256,
            "sidecar_checked": result.sidecar_checked, "reused": result.reused}) + "\n")
        return 0
    what = "Already here" if result.reused else "Downloaded"
    out_console.print(f"{what}: {shown(result.path)} ({human_size(result.size)}), record "
                      f"{result.record_id}, DOI {shown(result.doi)}.", soft_wrap=True)
    checks = "Zenodo's md5 and the bundle's .sha256" if result.sidecar_checked else \
        "Zenodo's md5 (the record has no .sha256 file)"
    out_console.print(f"Checked against {checks}.", soft_wrap=True)
    out_console.print(f"Replay it: studypack replay {shown(result.path)}", soft_wrap=True)
    return 0
