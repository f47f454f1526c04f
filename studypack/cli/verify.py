"""studypack verify BUNDLE: check every checksum."""

from __future__ import annotations

import json

from ..storeonce import verify_bundle
from ..errors import EXIT_DAMAGED
from ..signing import load_public_key, verify_signature
from ._console import err_console, out_console, progress_bar, shown


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
    p.add_argument("--pubkey", metavar="KEY",
                   help="also check BUNDLE.minisig against this public key (a .pub file "
                        "or the RW... line); exit 1 unless it is signed by that key")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.pubkey:
        load_public_key(args.pubkey)  # a wrong key path fails before the long check
    with progress_bar(quiet=args.quiet or args.json) as (report, cancel):
        result = verify_bundle(args.bundle, report, cancel)
    signature = verify_signature(args.bundle, args.pubkey, result.tagmanifest)
    signed_ok = args.pubkey is None or signature.state == "signed"
    if args.json:
        out_console.print_json(json.dumps({**result.to_json(), "signature": {
            "state": signature.state, "key_id": signature.key_id,
            "trusted_key": signature.trusted_key, "message": signature.message}}))
    elif result.ok:
        out_console.print(f"[green]intact[/]: {result.checked} checksums match"
                          + (", and the .sha256 file" if result.sidecar == "ok" else ""))
    else:
        err_console.print(f"[red]damaged[/]: {len(result.problems)} problem(s)")
        for problem in result.problems:
            err_console.print(f"  - {shown(problem)}")
    if not args.json and (args.pubkey or signature.state != "unsigned"):
        (out_console if signed_ok else err_console).print(shown(signature.message))
    return 0 if result.ok and signed_ok else EXIT_DAMAGED
