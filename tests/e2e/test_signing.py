"""Signatures: studypack and the `minisign` tool read each other's keys and signatures,
the bundle stays byte-identical, and an altered bundle or a foreign key is reported."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from studypack import signing
from studypack.cli import main as cli_main

from tests.support.hostile.corpus import BAG, valid_bundle

MINISIGN = shutil.which("minisign")
needs_minisign = pytest.mark.skipif(MINISIGN is None, reason="the minisign tool is not installed")
TAGMANIFEST = "tagmanifest-sha256.txt"


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def studypack_cli(capsys, monkeypatch):
    """Run the `studypack` command line in this process (as `python -m studypack` does),
    with ``stdin`` as what a script would pipe in."""
    def run(*args: str, stdin: str | None = None) -> Done:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        code = cli_main(list(args))
        out = capsys.readouterr()
        return Done(code, out.out, out.err)
    return run


@pytest.fixture
def bundle(tmp_path) -> Path:
    path = tmp_path / "study.studypack"
    path.write_bytes(valid_bundle())  # a small bundle in the real format (bag "study")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "study.studypack.sha256").write_text(f"{digest}  study.studypack\n")
    return path


@pytest.fixture
def keys(tmp_path) -> signing.KeyFiles:
    return signing.generate_keypair(tmp_path / "keys" / "me", password=None)


def tagmanifest_of(bundle: Path) -> bytes:
    return signing.read_tagmanifest(bundle)[1]



def check_without_studypack(bundle, bag, public_key, tmp_path):
    """The documented check: tar pulls out the tag manifest, minisign verifies it."""
    tm = tmp_path / "tm"
    with tm.open("wb") as out:
        subprocess.run(["tar", "--zstd", "-xOf", str(bundle), f"{bag}/{TAGMANIFEST}"],
                       stdout=out, check=True)
    return subprocess.run([MINISIGN, "-Vm", str(tm), "-x", f"{bundle}.minisig",
                           "-p", str(public_key)], capture_output=True, text=True)


def test_keygen_cli_writes_private_key_and_public_key(tmp_path, studypack_cli):
    done = studypack_cli("keygen", "-o", str(tmp_path / "me"), "--no-password")
    assert done.returncode == 0, done.stderr
    secret, public = tmp_path / "me.key", tmp_path / "me.pub"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert public.read_text().startswith("untrusted comment: minisign public key ")
    again = studypack_cli("keygen", "-o", str(tmp_path / "me"), "--no-password")
    assert again.returncode == 2
    assert "already exists" in again.stderr and "Traceback" not in again.stderr


def test_sign_leaves_bundle_identical_and_writes_detached_signature(bundle, keys, studypack_cli):
    before = bundle.read_bytes()
    done = studypack_cli("sign", str(bundle), "--key", str(keys.secret_key))
    assert done.returncode == 0, done.stderr
    assert bundle.read_bytes() == before
    sidecar = bundle.with_name(bundle.name + ".sha256").read_text().split()[0]
    assert sidecar == hashlib.sha256(before).hexdigest()
    status = signing.verify_signature(bundle, keys.public_key, tagmanifest_of(bundle))
    assert (status.state, status.key_id, status.trusted_key) == ("signed", keys.key_id, True)
    assert status.label == f"signed by {keys.key_id}"


def test_sign_never_replaces_a_signature_without_force(bundle, keys, studypack_cli):
    assert studypack_cli("sign", str(bundle), "--key", str(keys.secret_key)).returncode == 0
    first = signing.signature_path_for(bundle).read_bytes()
    again = studypack_cli("sign", str(bundle), "--key", str(keys.secret_key))
    assert again.returncode == 2 and "--force" in again.stderr
    assert signing.signature_path_for(bundle).read_bytes() == first
    forced = studypack_cli("sign", str(bundle), "--key", str(keys.secret_key), "--force")
    assert forced.returncode == 0, forced.stderr


@needs_minisign
def test_minisign_tool_checks_a_studypack_signature(bundle, keys, tmp_path):
    """The documented way to check a bundle without studypack."""
    signing.sign_bundle(bundle, keys.secret_key)
    checked = check_without_studypack(bundle, BAG, keys.public_key, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "Signature and comment signature verified" in checked.stdout
    assert f"bundle:{bundle.name}" in checked.stdout
    assert f"pubkey:{keys.public_key_b64}" in checked.stdout

    tm = tmp_path / "tm"  # the tag manifest the check just extracted
    tm.write_bytes(tm.read_bytes().replace(b"  bagit.txt", b"  bagit.txt "))
    altered = subprocess.run([MINISIGN, "-Vm", str(tm), "-x", f"{bundle}.minisig",
                              "-p", str(keys.public_key)], capture_output=True, text=True)
    assert altered.returncode != 0


@needs_minisign
def test_studypack_checks_a_minisign_tool_signature(bundle, tmp_path):
    pub, sec = tmp_path / "tool.pub", tmp_path / "tool.key"
    subprocess.run([MINISIGN, "-G", "-W", "-p", str(pub), "-s", str(sec)],
                   check=True, capture_output=True)
    tm = tmp_path / "tm"
    tm.write_bytes(tagmanifest_of(bundle))
    subprocess.run([MINISIGN, "-S", "-s", str(sec), "-m", str(tm), "-x", f"{bundle}.minisig",
                    "-t", "signed with the minisign tool"], check=True, capture_output=True)
    key_id = pub.read_text().split()[-2]  # "untrusted comment: minisign public key <ID>"

    status = signing.verify_signature(bundle, pub, tagmanifest_of(bundle))
    assert (status.state, status.key_id) == ("signed", key_id)
    assert status.trusted_comment == "signed with the minisign tool"
    base64_key = pub.read_text().splitlines()[1]
    assert signing.verify_signature(bundle, base64_key, tagmanifest_of(bundle)).state == "signed"
    # Without a key: the tool's signature names no key, so nothing can be claimed.
    unchecked = signing.verify_signature(bundle, None, tagmanifest_of(bundle))
    assert (unchecked.state, unchecked.key_id) == ("unchecked", key_id)


@needs_minisign
def test_password_protected_keys_work_in_both_tools(bundle, tmp_path, studypack_cli):
    done = studypack_cli("keygen", "-o", str(tmp_path / "locked"), stdin="s3cret pass\n")
    assert done.returncode == 0, done.stderr
    assert "encrypted" in (tmp_path / "locked.key").read_text()
    # the minisign tool decrypts a studypack key (same scrypt parameters)
    sample = tmp_path / "sample"
    sample.write_text("x")
    by_tool = subprocess.run([MINISIGN, "-S", "-s", str(tmp_path / "locked.key"), "-m", str(sample)],
                             input="s3cret pass\n", capture_output=True, text=True)
    assert by_tool.returncode == 0, by_tool.stderr

    wrong = studypack_cli("sign", str(bundle), "--key", str(tmp_path / "locked.key"),
                          stdin="not it\n")
    assert wrong.returncode == 2
    assert "Wrong password" in wrong.stderr and "Traceback" not in wrong.stderr
    assert not signing.signature_path_for(bundle).exists()

    right = studypack_cli("sign", str(bundle), "--key", str(tmp_path / "locked.key"),
                          stdin="s3cret pass\n")
    assert right.returncode == 0, right.stderr
    status = signing.verify_signature(bundle, tmp_path / "locked.pub", tagmanifest_of(bundle))
    assert status.state == "signed"


def test_unsigned_bundle_is_reported_unsigned(bundle, keys):
    status = signing.verify_signature(bundle, keys.public_key, tagmanifest_of(bundle))
    assert (status.state, status.key_id, status.label) == ("unsigned", None, "unsigned")


def test_altered_tag_manifest_does_not_match(bundle, keys):
    signing.sign_bundle(bundle, keys.secret_key)
    altered = tagmanifest_of(bundle).replace(b"bagit.txt", b"bagit.txT")
    status = signing.verify_signature(bundle, keys.public_key, altered)
    assert status.state == "mismatch"
    assert status.label == "signature does not match"
    assert "altered" in status.message


def test_signature_by_another_key_does_not_match(bundle, keys, tmp_path):
    signing.sign_bundle(bundle, keys.secret_key)
    other = signing.generate_keypair(tmp_path / "other", password=None)
    status = signing.verify_signature(bundle, other.public_key, tagmanifest_of(bundle))
    assert status.state == "mismatch"
    assert keys.key_id in status.message and other.key_id in status.message


def test_damaged_signature_file_does_not_match(bundle, keys):
    signing.sign_bundle(bundle, keys.secret_key)
    sig = signing.signature_path_for(bundle)
    lines = sig.read_text().splitlines()
    lines[2] = lines[2] + " (edited)"  # the trusted comment is covered by the global signature
    sig.write_text("\n".join(lines) + "\n")
    status = signing.verify_signature(bundle, keys.public_key, tagmanifest_of(bundle))
    assert status.state == "mismatch"
    sig.write_bytes(b"not a signature at all\n")
    assert signing.verify_signature(bundle, keys.public_key, tagmanifest_of(bundle)).state == "mismatch"
    with sig.open("wb") as fh:   # a stranger's 100 MB "signature" is not read into memory
        fh.truncate(100 * 1024 * 1024)
    status = signing.verify_signature(bundle, keys.public_key, tagmanifest_of(bundle))
    assert status.state == "mismatch" and "too large" in status.message


def test_without_a_key_the_announced_signer_is_shown_but_not_trusted(bundle, keys, tmp_path):
    signing.sign_bundle(bundle, keys.secret_key)
    status = signing.verify_signature(bundle, None, tagmanifest_of(bundle))
    assert (status.state, status.key_id, status.trusted_key) == ("signed", keys.key_id, False)
    altered = tagmanifest_of(bundle) + b"\n"
    assert signing.verify_signature(bundle, None, altered).state == "mismatch"


def test_missing_key_and_missing_bundle_are_one_sentence_errors(bundle, tmp_path, studypack_cli):
    no_key = studypack_cli("sign", str(bundle), "--key", str(tmp_path / "absent.key"))
    assert no_key.returncode == 2 and "does not exist" in no_key.stderr
    assert "Traceback" not in no_key.stderr
    no_bundle = studypack_cli("sign", str(tmp_path / "absent.studypack"),
                              "--key", str(tmp_path / "absent.key"))
    assert no_bundle.returncode == 2 and "absent.studypack does not exist" in no_bundle.stderr


def test_verify_cli_checks_the_signature_with_pubkey(bundle, keys, tmp_path, studypack_cli):
    assert studypack_cli("sign", str(bundle), "--key", str(keys.secret_key)).returncode == 0
    good = studypack_cli("verify", "-q", str(bundle), "--pubkey", str(keys.public_key))
    assert good.returncode == 0, good.stderr
    assert f"signed by key {keys.key_id}" in good.stdout
    as_line = studypack_cli("verify", "-q", str(bundle), "--pubkey", keys.public_key_b64,
                            "--json")
    signature = json.loads(as_line.stdout)["signature"]
    assert (signature["state"], signature["key_id"]) == ("signed", keys.key_id)

    other = signing.generate_keypair(tmp_path / "other", password=None)
    wrong = studypack_cli("verify", "-q", str(bundle), "--pubkey", str(other.public_key))
    assert wrong.returncode == 1
    assert f"made by key {keys.key_id}, not by the given key {other.key_id}" in wrong.stderr


def test_verify_cli_with_pubkey_refuses_an_unsigned_bundle(bundle, keys, studypack_cli):
    done = studypack_cli("verify", "-q", str(bundle), "--pubkey", str(keys.public_key))
    assert done.returncode == 1
    assert "not signed" in done.stderr


def test_sign_refuses_a_damaged_bundle(bundle, keys, studypack_cli):
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    done = studypack_cli("sign", str(bundle), "--key", str(keys.secret_key))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert not signing.signature_path_for(bundle).exists()


@needs_minisign
def test_a_real_bundle_signed_by_studypack_is_checked_by_minisign(example_bundle, keys, tmp_path,
                                                                 studypack_cli):
    """The documented check without studypack, on a bundle of a real traced run."""
    bundle = tmp_path / example_bundle.name
    shutil.copy(example_bundle, bundle)
    shutil.copy(f"{example_bundle}.sha256", f"{bundle}.sha256")
    done = studypack_cli("sign", str(bundle), "--key", str(keys.secret_key))
    assert done.returncode == 0, done.stderr
    bag = signing.read_tagmanifest(bundle)[0]
    checked = check_without_studypack(bundle, bag, keys.public_key, tmp_path)
    assert checked.returncode == 0, checked.stderr
    verified = studypack_cli("verify", "-q", str(bundle), "--pubkey", str(keys.public_key))
    assert verified.returncode == 0 and f"signed by key {keys.key_id}" in verified.stdout
