"""Trust, second round (issue 18, and #19's portable names): staging folders matched by
exact name, RFC 8493 percent-encoding and tag files as bagit.py reads them, names that
macOS or Windows cannot hold, a terminal that never obeys a bundle, and a signature
that covers every tag file. The bounds themselves are cases of the hostile corpus
(tests/support/hostile/corpus.py, run by test_hostile.py)."""

from __future__ import annotations

import json
import os
import unicodedata

import bagit
import pytest

from studypack.bundle import reader
from studypack.bundle.portable import PlatformNames, portability_warnings
from studypack.bundle.writer import Member as PackMember, PackPlan, pack
from studypack.cli import main as studypack_main
from studypack.errors import EXIT_DAMAGED, UnsafeBundleError
from studypack.fsutil import TEMP_MARK, remove_stale_partials
from studypack.safetext import printable
from studypack.signing import generate_keypair, sign_bundle
from tests.support.hostile.corpus import (BAG, CASES_BY_NAME, PAYLOAD, Member, base_members,
                                          bundle_bytes, metadata, sha256)


def bundle_with(tmp_path, extra: dict[str, bytes], *, meta: dict | None = None,
                name: str = "b.studypack", listed: dict[str, str] | None = None):
    """The corpus's valid base plus ``extra`` payload files, all listed in the manifest
    (under ``listed[name]`` when given, e.g. percent-encoded)."""
    payload = {**PAYLOAD, **extra}
    lines = [f"{sha256(d)}  {(listed or {}).get(p, p)}\n" for p, d in payload.items()]
    members = base_members({}, meta=meta, oxum=f"{sum(map(len, payload.values()))}."
                           f"{len(payload)}", extra_manifest=lines)
    at = next(i for i, m in enumerate(members) if m.name.endswith("/manifest-sha256.txt"))
    members[at:at] = [Member(f"{BAG}/{p}", d) for p, d in payload.items()]
    path = tmp_path / name
    path.write_bytes(bundle_bytes(members))
    return path


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = studypack_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# ------------------------------------------------------------ staging folders

def test_unpack_leaves_other_processes_staging_folders_alone(tmp_path):
    """A bag named ``*`` once matched every staging folder in the destination,
    a running process's included."""
    dest = tmp_path / "dest"
    dest.mkdir()
    live = dest / f"{TEMP_MARK}{os.getppid()}-other"        # a running unpack
    dead_other = dest / f"{TEMP_MARK}999999999-other"       # someone else's leftover
    dead_mine = dest / f"{TEMP_MARK}999999999-{BAG}"        # ours: removed
    for folder in (live, dead_other, dead_mine):
        folder.mkdir()
        (folder / "file").write_text("x")
    star = tmp_path / "star.studypack"
    star.write_bytes(CASES_BY_NAME["bag-named-star"].build())
    with pytest.raises(UnsafeBundleError, match="not a plain file name"):
        reader.unpack(star, dest)
    remove_stale_partials(dest, "*")       # by exact name: "*" is no pattern
    remove_stale_partials(dest, "[o]ther")
    assert live.is_dir() and dead_other.is_dir() and dead_mine.is_dir()

    valid = bundle_with(tmp_path, {})
    reader.unpack(valid, dest)
    assert live.is_dir() and dead_other.is_dir() and not dead_mine.exists()
    assert (dest / BAG / "data" / "outputs" / "result.txt").is_file()


# ----------------------------------------------------------------- BagIt

def test_percent_encoded_paths_are_decoded_as_bagit_py_does(tmp_path):
    """RFC 8493: CR, LF and % in a manifest path are %0D, %0A, %25."""
    odd = {"data/study/two\nlines.txt": b"a\n", "data/study/100%.csv": b"b\n",
           "data/study/50%25.txt": b"c\n"}
    listed = {"data/study/two\nlines.txt": "data/study/two%0Alines.txt",
              "data/study/100%.csv": "data/study/100%25.csv",
              "data/study/50%25.txt": "data/study/50%2525.txt"}
    result = reader.verify(bundle_with(tmp_path, odd, listed=listed))
    assert result.ok, result.problems
    assert result.checked == len(PAYLOAD) + len(odd) + 4


def test_studypack_writes_percent_encoded_manifests(tmp_path):
    """studypack writes % as %25 (RFC 8493). bagit.py 1.9 decodes only %0D and %0A
    (bagit-python#157), so docs/format.md warns that it misreads such names."""
    plan = PackPlan(bag_name="pct", metadata=json.dumps(metadata()).encode(), payload=[
        PackMember.from_bytes("data/study/100%.csv", b"x,y\n"),
        PackMember.from_bytes("data/study/50%25.txt", b"half\n")])
    out = tmp_path / "pct.studypack"
    pack(plan, out)
    bag_dir = reader.unpack(out, tmp_path / "dest").bag_dir
    text = (bag_dir / "manifest-sha256.txt").read_text()
    assert "data/study/100%25.csv" in text and "data/study/50%2525.txt" in text
    assert (bag_dir / "data/study/100%.csv").read_bytes() == b"x,y\n"


def test_a_bag_written_by_bagit_py_with_a_percent_name_still_verifies(tmp_path):
    """bagit.py writes ``100%25.csv`` unencoded; the literal name is accepted when the
    decoded one is absent, as the BagIt community suggested for compatibility."""
    result = reader.verify(bundle_with(tmp_path, {"data/study/100%25.csv": b"1\n"}))
    assert result.ok, result.problems
    folder = tmp_path / "bagit-py"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "50%.txt").write_text("half\n")
    bagit.make_bag(str(folder), checksums=["sha256"])
    assert "data/sub/50%.txt" in (folder / "manifest-sha256.txt").read_text()


def test_a_listed_extra_tag_file_is_accepted_and_an_unlisted_one_is_named(tmp_path):
    members = base_members()
    notes = Member(f"{BAG}/notes.txt", b"a tag file of the bag's own\n")
    tag = members[-1]
    listed = tag.data + f"{sha256(notes.data)}  notes.txt\n".encode()
    good = tmp_path / "good.studypack"
    good.write_bytes(bundle_bytes(members[:3] + [notes] + members[3:-1]
                                  + [Member(tag.name, listed)]))
    assert reader.verify(good).ok
    other = tmp_path / "other-tagmanifest.studypack"   # RFC 8493: listed by none
    other.write_bytes(bundle_bytes(members + [Member(f"{BAG}/tagmanifest-md5.txt", b"")]))
    assert reader.verify(other).ok, reader.verify(other).problems
    bad = tmp_path / "bad.studypack"
    bad.write_bytes(CASES_BY_NAME["unlisted-tag-file"].build())
    problems = reader.verify(bad).problems
    assert problems == ["the tag file notes.txt is not listed in tagmanifest-sha256.txt, so "
                        "no checksum (nor a signature) covers it"]   # not "Payload-Oxum"


# -------------------------------------------------- names macOS and Windows refuse

NFC = unicodedata.normalize("NFC", "data/study/café.txt")
NFD = unicodedata.normalize("NFD", "data/study/café.txt")


@pytest.mark.parametrize("platform", ["darwin", "win32"])
@pytest.mark.parametrize("twins", [(NFC, NFD), ("data/study/Data.csv", "data/study/data.csv")],
                         ids=["nfc-nfd", "case"])
def test_twins_are_refused_on_macos_and_windows_naming_both(tmp_path, platform, twins):
    first, second = twins
    bundle = bundle_with(tmp_path, {first: b"1\n", second: b"2\n"})
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeBundleError) as refused:
        reader.unpack(bundle, dest, platform=platform)
    message = str(refused.value)
    assert repr(printable(BAG + "/" + first)) in message
    assert repr(printable(BAG + "/" + second)) in message
    assert "case or Unicode normalisation" in message
    assert list(dest.iterdir()) == []
    # on Linux both are files of their own
    done = reader.unpack(bundle, tmp_path / "linux", platform="linux")
    assert (done.bag_dir / first).read_bytes() == b"1\n"
    assert (done.bag_dir / second).read_bytes() == b"2\n"


@pytest.mark.parametrize("platform, name, why", [
    ("win32", "data/study/CON.txt", "reserves for a device"),
    ("win32", "data/study/nul", "reserves for a device"),
    ("win32", "data/study/trailing.", "ends with a dot or a space"),
    ("win32", "data/study/trailing ", "ends with a dot or a space"),
    ("win32", "data/study/a:b.txt", "forbids"),
    ("win32", "data/study/" + "d" * 200 + "/" + "f" * 60 + ".txt", "over Windows' 260"),
    ("darwin", "data/study/a:b.txt", "holds ':'"),
])
def test_names_a_platform_cannot_hold_are_refused_by_name(tmp_path, platform, name, why):
    bundle = bundle_with(tmp_path, {name: b"x\n"})
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeBundleError) as refused:
        reader.unpack(bundle, dest, platform=platform)
    assert why in str(refused.value)
    assert repr(printable(f"{BAG}/{name}")) in str(refused.value)
    assert list(dest.iterdir()) == []
    assert reader.unpack(bundle, tmp_path / "linux", platform="linux").bag_dir.is_dir()


def test_platform_names_unit():
    PlatformNames("linux").check("b/data/CON")      # Linux holds anything
    PlatformNames("darwin").check("b/data/CON")     # macOS too
    with pytest.raises(UnsafeBundleError):
        PlatformNames("win32").check("b/data/con.tar.gz")
    names = PlatformNames("darwin")
    names.check("b/data/A", is_dir=True)
    names.check("b/data/a", is_dir=True)            # folders that fold together merge


def test_create_warns_which_names_macos_or_windows_cannot_hold():
    warnings = portability_warnings("study", ["data/study/ok.txt", "data/study/AUX.csv",
                                              "data/study/x:y", "data/study/R.txt",
                                              "data/study/r.txt", NFC, NFD])
    text = "\n".join(warnings)
    assert "data/study/AUX.csv cannot be unpacked on Windows" in text
    assert "data/study/x:y cannot be unpacked on Windows" in text
    assert "data/study/R.txt and data/study/r.txt differ only by case" in text
    assert f"{NFC} and {NFD} differ only by case or Unicode normalisation" in text
    assert "ok.txt" not in text
    assert portability_warnings("study", ["data/study/ok.txt"]) == []


# ------------------------------------------------------------ the terminal

FAKE = "\x1b[2J\x1b[H\x1b[32mintact\x1b[0m"


def test_info_and_verify_never_send_a_bundles_control_characters(tmp_path, capsys):
    meta = metadata()
    meta["study"]["title"] = "Title" + FAKE + "[green]intact[/]"
    meta["study"]["authors"] = [{"name": "Eve\r\u202eevE"}]
    meta["study"]["description"] = "line one\nline two\x07"
    bundle = bundle_with(tmp_path, {}, meta=meta)
    code, text = run_cli(capsys, "info", bundle)
    assert code == 0, text
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\x1b[2J" in text and "[green]intact[/]" in text and "Eve\\r\\u202eevE" in text
    assert "line one\n" in text        # a description keeps its lines

    stowaway = bundle_with(tmp_path, {}, name="s.studypack")
    data = stowaway.read_bytes()       # add an unlisted payload file named with escapes
    members = base_members()
    at = next(i for i, m in enumerate(members) if m.name.endswith("/manifest-sha256.txt"))
    members[at:at] = [Member(f"{BAG}/data/study/x{FAKE}.txt", b"")]
    members = [m if "bag-info" not in m.name else Member(m.name, m.data.replace(
        f"Payload-Oxum: {sum(map(len, PAYLOAD.values()))}.{len(PAYLOAD)}".encode(),
        f"Payload-Oxum: {sum(map(len, PAYLOAD.values()))}.{len(PAYLOAD) + 1}".encode()))
        for m in members]
    stowaway.write_bytes(bundle_bytes(members))
    assert stowaway.read_bytes() != data
    for command in (["verify", "-q"], ["unpack", "-q"]):
        args = [*command, stowaway] + ([tmp_path / "dest"] if command[0] == "unpack" else [])
        code, text = run_cli(capsys, *args)
        assert code == EXIT_DAMAGED, text
        assert "\x1b" not in text and "\\x1b[2J" in text, text


def test_printable_keeps_ordinary_text():
    assert printable("Étude 研究 — naïve café") == "Étude 研究 — naïve café"
    assert printable("a\tb\nc\x7f\x9b\u2028") == "a\\tb\\nc\\x7f\\x9b\\u2028"
    assert printable("two\nlines", keep_newlines=True) == "two\nlines"
    assert printable(None) == ""


# ------------------------------------------------------------ signatures

def test_a_signature_does_not_vouch_for_a_tag_file_it_does_not_cover(tmp_path, capsys):
    """The issue's case: fetch.txt left out of the tag manifest of a signed bundle."""
    bundle = tmp_path / "signed.studypack"
    bundle.write_bytes(CASES_BY_NAME["fetch-not-in-tagmanifest"].build())
    keys = generate_keypair(tmp_path / "key", None)
    sign_bundle(bundle, keys.secret_key)
    code, text = run_cli(capsys, "verify", "-q", bundle, "--pubkey", keys.public_key)
    assert code == EXIT_DAMAGED
    assert "fetch.txt is not listed in tagmanifest-sha256.txt" in text
