"""studypack verify BUNDLE: check every checksum."""

from __future__ import annotations

import json

from ..bundle.reader import verify
from ..errors import EXIT_DAMAGED
from ._console import err_console, out_console, progress_bar


def register(sub) -> None:
    p = sub.add_parser(
        "verify", help="check every checksum of a bundle",
        description="Decompress the bundle in one stream and check the sha256 of every file "
                    "against the BagIt manifests, the declared payload size, and the .sha256 "
                    "file beside the bundle. Exit 0 when intact, 1 when not (each bad or "
                    "missing member is named).")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--json", action="store_true",
                   help='print {"ok": bool, "checked": N, "problems": [...]}')
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    with progress_bar(quiet=args.quiet or args.json) as (report, cancel):
        result = verify(args.bundle, report, cancel)
    if args.json:
        out_console.print_json(json.dumps(result.to_json()))
    elif result.ok:
        out_console.print(f"[green]intact[/]: {result.checked} checksums match"
                          + (", and the .sha256 file" if result.sidecar == "ok" else ""))
    else:
        err_console.print(f"[red]damaged[/]: {len(result.problems)} problem(s)")
        for problem in result.problems:
            err_console.print(f"  - {problem}", markup=False)
    return 0 if result.ok else EXIT_DAMAGED
