"""``studypack keygen``: make a minisign key pair for signing bundles."""

from __future__ import annotations

import getpass
import sys

from ..errors import UsageError
from ..signing import DEFAULT_KEY_BASE, generate_keypair
from ._console import out_console


def register(sub) -> None:
    parser = sub.add_parser(
        "keygen", help="create a key pair for signing bundles",
        description="Create an Ed25519 key pair in minisign's format: KEYBASE.key (secret, "
                    "password-protected unless --no-password) and KEYBASE.pub (give it to "
                    "the people who check your bundles). The `minisign` tool reads both. "
                    f"Default KEYBASE: {DEFAULT_KEY_BASE}. In a terminal the password is "
                    "asked twice; otherwise it is read from the first line of stdin.")
    parser.add_argument("-o", "--output", metavar="KEYBASE", default=None,
                        help=f"where to write KEYBASE.key and KEYBASE.pub (default: {DEFAULT_KEY_BASE})")
    parser.add_argument("--no-password", action="store_true",
                        help="leave the secret key unencrypted (like `minisign -G -W`)")
    parser.add_argument("--force", action="store_true", help="replace an existing key pair")
    parser.set_defaults(func=run)


def read_password(prompt: str, *, confirm: bool) -> str:
    """Ask on the terminal (twice when ``confirm``); without a terminal take the
    first line of stdin, as minisign does, so scripts can pipe it in."""
    if sys.stdin.isatty():
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Password (again): ") != password:
            raise UsageError("The two passwords differ.", "Run the command again.")
        return password
    line = sys.stdin.readline()
    if not line:
        raise UsageError("No password was given on stdin.",
                         "Pipe the password in, run in a terminal, or pass --no-password.")
    return line.rstrip("\r\n")


def run(args) -> int:
    password = None if args.no_password else read_password("Password for the new key: ",
                                                           confirm=True)
    keys = generate_keypair(args.output, password, force=args.force)
    out_console.print(f"Secret key: {keys.secret_key}  (keep it secret)", soft_wrap=True)
    out_console.print(f"Public key: {keys.public_key}  (key id {keys.key_id})", soft_wrap=True)
    out_console.print(f"Sign a bundle:  studypack sign BUNDLE --key {keys.secret_key}",
                      soft_wrap=True)
    out_console.print(f"Check it:       studypack verify BUNDLE --pubkey {keys.public_key_b64}",
                      soft_wrap=True)
    return 0
