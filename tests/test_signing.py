"""Signatures: studypack and the `minisign` tool read each other's keys and signatures,
the bundle stays byte-identical, and an altered bundle or a foreign key is reported."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from studypack import signing

MINISIGN = shutil.which("minisign")
needs_minisign = pytest.mark.skipif(MINISIGN is None, reason="the minisign tool is not installed")
TAGMANIFEST = "tagmanifest-sha256.txt"


def studypack_cli(*args: str, stdin: str | None = None, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "studypack", *args], input=stdin,
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def _bag_bytes(name: str, payload: dict[str, bytes]) -> bytes:
    """A small but complete bag: tag files, payload, manifest, tag manifest."""
    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    tags = {
        "bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
        "bag-info.txt": (f"Payload-Oxum: {sum(map(len, payload.values()))}.{len(payload)}\n"
                         ).encode(),
        "studypack.json": b'{"format_version": 1, "name": "signed study"}\n',
    }
    manifest = "".join(f"{sha(d)}  data/{p}\n" for p, d in payload.items()).encode()
    tagmanifest = "".join(f"{sha(d)}  {p}\n" for p, d in
                          [*tags.items(), ("manifest-sha256.txt", manifest)]).encode()
    members = [*tags.items(), *((f"data/{p}", d) for p, d in payload.items()),
               ("manifest-sha256.txt", manifest), (TAGMANIFEST, tagmanifest)]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in members:
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return zstandard.ZstdCompressor().compress(buf.getvalue())


@pytest.fixture
def bundle(tmp_path) -> Path:
    path = tmp_path / "study.studypack"
    path.write_bytes(_bag_bytes("study", {"hello.txt": b"hello\n", "numbers.csv": b"1,2\n"}))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "study.studypack.sha256").write_text(f"{digest}  study.studypack\n")
    return path


@pytest.fixture
def keys(tmp_path) -> signing.KeyFiles:
    return signing.generate_keypair(tmp_path / "keys" / "me", password=None)


def tagmanifest_of(bundle: Path) -> bytes:
    return signing.read_tagmanifest(bundle)[1]


def test_keygen_cli_writes_private_key_and_public_key(tmp_path):
    done = studypack_cli("keygen", "-o", str(tmp_path / "me"), "--no-password")
    assert done.returncode == 0, done.stderr
    secret, public = tmp_path / "me.key", tmp_path / "me.pub"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert public.read_text().startswith("untrusted comment: minisign public key ")
    again = studypack_cli("keygen", "-o", str(tmp_path / "me"), "--no-password")
    assert again.returncode == 2
    assert "already exists" in again.stderr and "Traceback" not in again.stderr


def test_sign_leaves_bundle_identical_and_writes_detached_signature(bundle, keys):
    before = bundle.read_bytes()
    done = studypack_cli("sign", str(bundle), "--key", str(keys.secret_key))
    assert done.returncode == 0, done.stderr
    assert bundle.read_bytes() == before
    sidecar = bundle.with_name(bundle.name + ".sha256").read_text().split()[0]
    assert sidecar == hashlib.sha256(before).hexdigest()
    status = signing.verify_signature(bundle, keys.public_key, tagmanifest_of(bundle))
    assert (status.state, status.key_id, status.trusted_key) == ("signed", keys.key_id, True)
    assert status.label == f"signed by {keys.key_id}"


def test_sign_never_replaces_a_signature_without_force(bundle, keys):
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
    tm = tmp_path / "tm"
    with tm.open("wb") as out:
        subprocess.run(["tar", "--zstd", "-xOf", str(bundle), f"study/{TAGMANIFEST}"],
                       stdout=out, check=True)
    checked = subprocess.run([MINISIGN, "-Vm", str(tm), "-x", f"{bundle}.minisig",
                              "-p", str(keys.public_key)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "Signature and comment signature verified" in checked.stdout
    assert f"bundle:{bundle.name}" in checked.stdout
    assert f"pubkey:{keys.public_key_b64}" in checked.stdout

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
def test_password_protected_keys_work_in_both_tools(bundle, tmp_path):
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


def test_without_a_key_the_announced_signer_is_shown_but_not_trusted(bundle, keys, tmp_path):
    signing.sign_bundle(bundle, keys.secret_key)
    status = signing.verify_signature(bundle, None, tagmanifest_of(bundle))
    assert (status.state, status.key_id, status.trusted_key) == ("signed", keys.key_id, False)
    altered = tagmanifest_of(bundle) + b"\n"
    assert signing.verify_signature(bundle, None, altered).state == "mismatch"


def test_missing_key_and_missing_bundle_are_one_sentence_errors(bundle, tmp_path):
    no_key = studypack_cli("sign", str(bundle), "--key", str(tmp_path / "absent.key"))
    assert no_key.returncode == 2 and "does not exist" in no_key.stderr
    assert "Traceback" not in no_key.stderr
    no_bundle = studypack_cli("sign", str(tmp_path / "absent.studypack"),
                              "--key", str(tmp_path / "absent.key"))
    assert no_bundle.returncode == 2 and "absent.studypack does not exist" in no_bundle.stderr
