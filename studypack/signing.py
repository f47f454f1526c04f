"""Ed25519 signatures over a bundle's tag manifest, in minisign's format.

Why the tag manifest: ``<name>/tagmanifest-sha256.txt`` holds the sha256 of
``bagit.txt``, ``bag-info.txt``, ``studypack.json`` and ``manifest-sha256.txt``,
and the manifest holds the sha256 of every payload file. Signing those few bytes
therefore vouches for the whole bundle, once ``studypack verify`` has checked the
checksums; and the signature can be detached (``BUNDLE.minisig``) so the bundle
itself and its ``.sha256`` sidecar stay byte-identical.

Why minisign: keys and signatures are the files of the ``minisign`` tool (Debian,
Homebrew, Windows builds), so anyone can check a bundle without studypack::

    tar --zstd -xOf B.studypack NAME/tagmanifest-sha256.txt > tm
    minisign -Vm tm -x B.studypack.minisig -p key.pub

The format itself is read and written by the ``py-minisign`` library.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import minisign

from .errors import BundleError, UsageError, write_error
from .fsutil import atomic_output

SIGNATURE_SUFFIX = ".minisig"
TAGMANIFEST_NAME = "tagmanifest-sha256.txt"
# A tag manifest lists a handful of tag files; anything bigger is not one.
# Four short lines; the trusted comment is at most 8 KB.
SIGNATURE_MAX_BYTES = 64 * 1024
# What ``studypack keygen`` writes when no -o is given.
DEFAULT_KEY_BASE = Path("~/.config/studypack/signing").expanduser()

SignatureState = Literal["signed", "unsigned", "mismatch", "unchecked"]


class SigningError(UsageError):
    """A key file cannot be read, or the password is wrong (bad input: exit 2)."""


@dataclass(frozen=True)
class KeyFiles:
    secret_key: Path
    public_key: Path
    key_id: str          # 16 upper-case hex digits, as minisign prints it
    public_key_b64: str  # the one-line form ``minisign -P`` accepts


@dataclass(frozen=True)
class SignResult:
    signature_path: Path
    key_id: str
    trusted_comment: str


@dataclass(frozen=True)
class SignatureStatus:
    """What a bundle's detached signature says.

    ``state``:
      * ``"signed"``    the signature is valid for this tag manifest under ``key_id``;
                        ``trusted_key`` tells whether it was checked against a public key
                        the user supplied (True) or only against the key the signer
                        announced in the signature itself (False: proves integrity and who
                        claims to have signed, not that you trust that key).
      * ``"unsigned"``  there is no ``BUNDLE.minisig`` beside the bundle.
      * ``"mismatch"``  there is a signature but it does not match (other key, altered
                        tag manifest, altered or unreadable signature file).
      * ``"unchecked"`` a signature exists but no public key was given and the signature
                        does not announce one (e.g. made by the ``minisign`` tool).
    """

    state: SignatureState
    key_id: Optional[str]
    message: str
    trusted_key: bool = False
    signature_path: Optional[Path] = None
    trusted_comment: Optional[str] = None

    @property
    def label(self) -> str:
        """The few words the GUI shows beside the bundle."""
        if self.state == "signed":
            return f"signed by {self.key_id}"
        if self.state == "unsigned":
            return "unsigned"
        if self.state == "mismatch":
            return "signature does not match"
        return f"signed by {self.key_id} (not checked: no public key)"


def signature_path_for(bundle_path: os.PathLike | str) -> Path:
    return Path(os.fspath(bundle_path) + SIGNATURE_SUFFIX)


# --------------------------------------------------------------------------- keys

def generate_keypair(key_base: os.PathLike | str | None = None, password: str | None = None,
                     *, force: bool = False) -> KeyFiles:
    """Write ``KEYBASE.key`` (mode 0600, scrypt-encrypted when ``password`` is given)
    and ``KEYBASE.pub``. Existing files are never overwritten unless ``force``."""
    base = Path(key_base).expanduser() if key_base is not None else DEFAULT_KEY_BASE
    if base.suffix in (".key", ".pub"):
        base = base.with_suffix("")
    secret_path, public_path = Path(f"{base}.key"), Path(f"{base}.pub")
    if not force:
        for path in (secret_path, public_path):
            if path.exists():
                raise UsageError(f"{path} already exists; studypack never overwrites a key.",
                                 "Choose another name with -o, or pass --force to replace it.")
    if password is not None and not password:
        raise UsageError("The password is empty.",
                         "Type a password, or pass --no-password for an unencrypted key.")

    pair = minisign.KeyPair.generate()
    with pair.secret_key as secret_key:
        if password is not None:
            secret_key.encrypt(password)
        secret_bytes = bytes(secret_key) + b"\n"
    public_key = pair.public_key
    key_id = _key_id_hex(public_key)
    public_key.untrusted_comment = f"minisign public key {key_id}"
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(base.parent, exc) from exc
    _write_atomically(secret_path, secret_bytes, mode=0o600)
    _write_atomically(public_path, bytes(public_key) + b"\n", mode=0o644)
    return KeyFiles(secret_path, public_path, key_id, public_key.to_base64().decode())


def load_public_key(pubkey: os.PathLike | str) -> minisign.PublicKey:
    """A public key file (``minisign.pub``) or the one-line base64 form (``RWQ...``)."""
    text = os.fspath(pubkey)
    path = Path(text).expanduser()
    if path.is_file():
        try:
            return minisign.PublicKey.from_bytes(path.read_bytes())
        except minisign.Error as exc:
            raise SigningError(f"{path} is not a minisign public key ({exc}).",
                               "Pass the .pub file written by `studypack keygen` or `minisign -G`.")
        except OSError as exc:
            raise SigningError(f"Cannot read the public key {path}: {exc.strerror}.") from exc
    if re.fullmatch(r"RW[A-Za-z0-9+/=]{40,80}", text.strip()):
        try:
            return minisign.PublicKey.from_base64(text.strip())
        except minisign.Error as exc:
            raise SigningError(f"The public key {text!r} is not valid ({exc}).") from exc
    raise UsageError(f"The public key {text} does not exist.",
                     "Pass a .pub file or the key itself (the line starting with RW).")


def load_secret_key(path: os.PathLike | str, password_source=None) -> minisign.SecretKey:
    """Read a minisign secret key; when it is encrypted, ask ``password_source()``
    for the password (it is called only then). The caller wipes the key."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"The secret key {path} does not exist.",
                         "Create one with `studypack keygen`, or pass --key PATH.") from None
    except OSError as exc:
        raise SigningError(f"Cannot read the secret key {path}: {exc.strerror}.") from exc
    try:
        secret_key = minisign.SecretKey.from_bytes(data)
    except minisign.Error as exc:
        raise SigningError(f"{path} is not a minisign secret key ({exc}).",
                           "Pass the .key file written by `studypack keygen` or `minisign -G`.")
    if secret_key.is_encrypted():
        if password_source is None:
            secret_key.wipe()
            raise SigningError(f"The secret key {path} is protected by a password.",
                               "Run the command in a terminal, or pipe the password on stdin.")
        try:
            secret_key.decrypt(password_source())
        except minisign.Error:
            secret_key.wipe()
            raise SigningError(f"Wrong password for the secret key {path}.") from None
    return secret_key


def _key_id_hex(key: minisign.PublicKey) -> str:
    """The 8-byte key id that follows the 2-byte algorithm in the key's base64 form.
    Stored little-endian; minisign prints it most significant byte first."""
    return base64.b64decode(key.to_base64())[2:10][::-1].hex().upper()


def _signature_key_id_hex(signature: minisign.Signature) -> str:
    """Likewise from the signature's second line (algorithm, key id, signature)."""
    second_line = bytes(signature).splitlines()[1]
    return base64.b64decode(second_line)[2:10][::-1].hex().upper()


# --------------------------------------------------------------------------- bundle

def read_tagmanifest(bundle_path: os.PathLike | str) -> tuple[str, bytes]:
    """Return ``(bag_name, bytes of <bag>/tagmanifest-sha256.txt)`` by streaming the
    bundle once, through the reader's checks and bounds. Only that small member is
    read into memory."""
    from .bundle.reader import open_stream

    path = Path(bundle_path)
    if not path.is_file():
        raise UsageError(f"The bundle {path} does not exist.")
    found: Optional[bytes] = None
    with open_stream(path) as stream:
        for rel, member in stream.members():
            if rel == TAGMANIFEST_NAME and member.isfile():
                found = stream.read_small(member)   # a second one is refused as a duplicate
        bag = stream.bag
    if found is None:
        raise BundleError(f"The bundle {path} has no {TAGMANIFEST_NAME}; it is not a studypack bundle.")
    return bag, found


def sign_bundle(bundle_path: os.PathLike | str, secret_key_path: os.PathLike | str,
                password_source=None, *, force: bool = False,
                tagmanifest: tuple[str, bytes] | None = None) -> SignResult:
    """Sign the bundle's tag manifest and write ``BUNDLE.minisig`` beside it.

    The trusted comment names the bundle and carries the signer's public key, so a
    receiver without the key can still see who claims to have signed it."""
    bundle_path = Path(bundle_path)
    sig_path = signature_path_for(bundle_path)
    if sig_path.exists() and not force:
        raise UsageError(f"{sig_path} already exists.",
                         "Pass --force to replace the signature.")
    bag_name, tm_bytes = tagmanifest if tagmanifest is not None else read_tagmanifest(bundle_path)
    secret_key = load_secret_key(secret_key_path, password_source)
    try:
        public_key = secret_key.get_public_key()
        key_id = _key_id_hex(public_key)
        comment = (f"timestamp:{int(time.time())}\tfile:{bag_name}/{TAGMANIFEST_NAME}"
                   f"\tbundle:{_printable(bundle_path.name)}"
                   f"\tpubkey:{public_key.to_base64().decode()}\thashed")
        signature = secret_key.sign(
            tm_bytes, prehash=True, trusted_comment=comment,
            untrusted_comment=f"studypack signature of {_printable(bundle_path.name)}"
                              f" by key {key_id}")
    finally:
        secret_key.wipe()
    _write_atomically(sig_path, bytes(signature) + b"\n", mode=0o644)
    return SignResult(sig_path, key_id, comment)


def verify_signature(bundle_path: os.PathLike | str, pubkey: os.PathLike | str | None,
                     tagmanifest_bytes: bytes) -> SignatureStatus:
    """Check ``BUNDLE.minisig`` against the tag manifest bytes read from the bundle.

    ``pubkey`` is a .pub file or the base64 key; ``None`` checks the signature
    against the key it announces (state "signed" with ``trusted_key=False``).
    Never raises for a bad signature: that is the "mismatch" state. Raises
    UsageError/SigningError only when the given public key itself cannot be read."""
    sig_path = signature_path_for(bundle_path)
    if not sig_path.is_file():
        return SignatureStatus("unsigned", None, "The bundle is not signed.")
    try:
        if sig_path.stat().st_size > SIGNATURE_MAX_BYTES:
            raise minisign.ParseError("far too large for a signature")
        signature = minisign.Signature.from_bytes(sig_path.read_bytes())
    except (minisign.Error, OSError) as exc:
        return SignatureStatus("mismatch", None,
                               f"The signature {sig_path.name} cannot be read ({exc}).",
                               signature_path=sig_path)
    sig_key_id = _signature_key_id_hex(signature)
    comment = signature.trusted_comment
    trusted = pubkey is not None
    if trusted:
        key = load_public_key(pubkey)
    else:
        key = _announced_key(comment)
        if key is None:
            return SignatureStatus(
                "unchecked", sig_key_id,
                f"The bundle is signed by key {sig_key_id}, but no public key was given to check it.",
                signature_path=sig_path, trusted_comment=comment)
    key_id = _key_id_hex(key)
    if key_id != sig_key_id:
        return SignatureStatus(
            "mismatch", sig_key_id,
            f"The signature was made by key {sig_key_id}, not by the given key {key_id}.",
            trusted_key=trusted, signature_path=sig_path, trusted_comment=comment)
    try:
        key.verify(tagmanifest_bytes, signature)
    except minisign.Error:
        return SignatureStatus(
            "mismatch", sig_key_id,
            f"The signature by key {sig_key_id} does not match this bundle's tag manifest "
            "(the bundle or its signature was altered).",
            trusted_key=trusted, signature_path=sig_path, trusted_comment=comment)
    how = "" if trusted else " (checked with the key named in the signature, not a key you supplied)"
    return SignatureStatus("signed", sig_key_id, f"The bundle is signed by key {sig_key_id}{how}.",
                           trusted_key=trusted, signature_path=sig_path, trusted_comment=comment)


def _announced_key(trusted_comment: str) -> Optional[minisign.PublicKey]:
    for field in trusted_comment.split("\t"):
        if field.startswith("pubkey:"):
            try:
                return minisign.PublicKey.from_base64(field[len("pubkey:"):])
            except (minisign.Error, binascii.Error, ValueError):
                return None
    return None


def _printable(name: str) -> str:
    """minisign comments allow printable ASCII only."""
    return "".join(c if " " <= c < "\x7f" and c != "\t" else "?" for c in name)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    with atomic_output(path, overwrite=True) as fh:
        os.fchmod(fh.fileno(), mode)  # before the first byte: a secret key is never readable
        fh.write(data)


__all__ = [
    "KeyFiles", "SignResult", "SignatureStatus", "SigningError", "generate_keypair",
    "load_public_key", "load_secret_key", "read_tagmanifest", "sign_bundle",
    "signature_path_for", "verify_signature", "DEFAULT_KEY_BASE",
]
