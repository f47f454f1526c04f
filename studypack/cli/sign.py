"""``studypack sign``: a detached minisign signature over the bundle's tag manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import BundleError, UsageError
from ..bundle.reader import read_info, verify
from ..signing import DEFAULT_KEY_BASE, TAGMANIFEST_NAME, sign_bundle, signature_path_for
from ._console import out_console, progress_bar
from .keygen import read_password


def register(sub) -> None:
    parser = sub.add_parser(
        "sign", help="sign a bundle (writes BUNDLE.minisig beside it)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check the bundle, then sign its tag manifest (which covers every\n"
                    "checksum in it) with an Ed25519 key in minisign's format. The bundle\n"
                    "itself is not changed; the signature goes to BUNDLE.minisig.\n\n"
                    "Check it with `studypack verify BUNDLE --pubkey KEY.pub`, or without\n"
                    "studypack:\n"
                    f"  tar --zstd -xOf B.studypack NAME/{TAGMANIFEST_NAME} > tm\n"
                    "  minisign -Vm tm -x B.studypack.minisig -p KEY.pub")
    parser.add_argument("bundle", type=Path, help="the .studypack file")
    parser.add_argument("--key", type=Path, default=Path(f"{DEFAULT_KEY_BASE}.key"),
                        help=f"secret key (default: {DEFAULT_KEY_BASE}.key)")
    parser.add_argument("--force", action="store_true", help="replace an existing signature")
    parser.set_defaults(func=run)


def _checked_tagmanifest(bundle: Path) -> tuple[str, bytes]:
    """Refuse to vouch for a bundle whose checksums do not hold; return the bag name
    and the tag manifest bytes that were just checked."""
    with progress_bar() as (report, cancel):
        result = verify(bundle, report, cancel)
    if not result.ok:
        first = result.problems[0] if result.problems else "its checksums do not hold"
        raise BundleError(f"Refusing to sign {bundle}: {first}.",
                          "Run `studypack verify` on it for the full list of problems.")
    return read_info(bundle).bag_name, result.tagmanifest


def run(args) -> int:
    if signature_path_for(args.bundle).exists() and not args.force:
        raise UsageError(f"{signature_path_for(args.bundle)} already exists.",
                         "Pass --force to replace the signature.")
    if not args.bundle.is_file():
        raise UsageError(f"The bundle {args.bundle} does not exist.")
    tagmanifest = _checked_tagmanifest(args.bundle)
    result = sign_bundle(args.bundle, args.key,
                         lambda: read_password(f"Password for {args.key}: ", confirm=False),
                         force=args.force, tagmanifest=tagmanifest)
    out_console.print(f"Signed {args.bundle} with key {result.key_id}.", soft_wrap=True)
    out_console.print(f"Signature: {result.signature_path}", soft_wrap=True)
    return 0
