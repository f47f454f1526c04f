"""Property-based fuzzing of the bundle reader: whatever bytes arrive, `info`, `verify`
and `unpack` either succeed or raise one of studypack's own errors (which the CLI turns
into one sentence and exit 1) — never another exception, never a write outside the
destination. Bounded: a few hundred examples per strategy (well under a minute).

Set STUDYPACK_FUZZ_EXAMPLES to run longer, e.g. overnight in CI.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studypack import signing
from studypack.bundle import reader
from studypack.bundle.format import MARKER
from studypack.errors import StudypackError

from tests.support.hostile.corpus import BAG, Member, base_members, bundle_bytes, tar_members

pytestmark = pytest.mark.slow   # ~45 s in all; the budget is set by the example counts

EXAMPLES = int(os.environ.get("STUDYPACK_FUZZ_EXAMPLES", "250"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _base_tar() -> bytes:
    members = base_members()
    members.insert(3, Member(f"{BAG}/data", type=tarfile.DIRTYPE, mode=0o755))
    out = io.BytesIO()
    tar_members(members, out)
    return out.getvalue()


BASE_TAR = _base_tar()


def compress(tar: bytes, marker: bool = True) -> bytes:
    return (MARKER if marker else b"") + zstandard.ZstdCompressor(level=1).compress(tar)


def exercise(bundle: bytes) -> None:
    """Every reading entry point, on a fresh folder; only StudypackError may escape."""
    with tempfile.TemporaryDirectory(prefix="studypack-fuzz-") as tmp:
        root = Path(tmp)
        path = root / "fuzzed.studypack"
        path.write_bytes(bundle)
        dest = root / "dest"
        for call in (lambda: reader.read_info(path), lambda: reader.verify(path),
                     lambda: reader.unpack(path, dest), lambda: signing.read_tagmanifest(path)):
            try:
                call()
            except StudypackError:
                pass
        leftovers = sorted(p.name for p in root.iterdir())
        assert set(leftovers) <= {"fuzzed.studypack", "dest"}, leftovers
        if dest.exists():
            inside = [p.name for p in dest.iterdir()]
            assert all(not n.startswith(".studypack-partial") for n in inside), inside


mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, len(BASE_TAR) - 1), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, len(BASE_TAR)), st.binary(min_size=1, max_size=600)),
    st.tuples(st.just("delete"), st.integers(0, len(BASE_TAR) - 1), st.integers(1, 1024)),
    st.tuples(st.just("truncate"), st.integers(0, len(BASE_TAR)), st.just(0)),
)


def mutate(data: bytes, mutations) -> bytes:
    buf = bytearray(data)
    for kind, at, arg in mutations:
        at = min(at, len(buf))
        if kind == "set" and at < len(buf):
            buf[at] = arg
        elif kind == "insert":
            buf[at:at] = arg
        elif kind == "delete":
            del buf[at:at + arg]
        elif kind == "truncate":
            del buf[at:]
    return bytes(buf)


@FUZZ
@given(st.lists(mutation, min_size=1, max_size=6), st.booleans())
def test_mutated_tar_inside_valid_zstd(mutations, marker):
    """Headers, sizes, checksums, pax records and contents damaged in the tar itself."""
    exercise(compress(mutate(BASE_TAR, mutations), marker))


COMPRESSED = bundle_bytes(base_members())


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(COMPRESSED) - 1), st.integers(0, 255)),
                min_size=1, max_size=8),
       st.integers(0, len(COMPRESSED)))
def test_mutated_compressed_stream(flips, cut):
    data = bytearray(COMPRESSED)
    for at, value in flips:
        data[at] = value
    exercise(bytes(data[:max(cut, 8)]))


component = st.one_of(
    st.sampled_from(["data", "study", "..", ".", "", "a", "bagit.txt", "bag-info.txt",
                     "studypack.json", "manifest-sha256.txt", "tagmanifest-sha256.txt",
                     "caf\udce9", "n" * 300, "x\\y", "C:", "\n"]),
    st.text(min_size=1, max_size=12),
)
member_name = st.lists(component, min_size=1, max_size=5).map("/".join)
member_type = st.sampled_from([tarfile.REGTYPE, tarfile.REGTYPE, tarfile.REGTYPE,
                               tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                               tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE,
                               tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE, b"V", b"Z"])
crafted_member = st.builds(
    Member, name=st.one_of(member_name, member_name.map(lambda n: f"{BAG}/data/{n}")),
    data=st.binary(max_size=64), type=member_type,
    linkname=st.one_of(st.just(""), member_name, st.just("/etc/passwd")),
    mode=st.sampled_from([0o644, 0o755, 0o4755, 0o000]))


@FUZZ
@given(st.lists(crafted_member, max_size=6), st.integers(0, 12),
       st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]),
       st.one_of(st.none(), st.text(max_size=20)))
def test_crafted_members_in_a_valid_bag(extra, at, tar_format, oxum):
    """Arbitrary names, types and links, spliced into an otherwise valid bag."""
    members = base_members(oxum=oxum)
    members[at:at] = extra
    try:
        data = bundle_bytes(members, tar_format)
    except (ValueError, UnicodeError):
        return  # tarfile itself cannot write this member; nothing to read
    exercise(data)


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 64, 511, 512, 513])
def test_tiny_files(size):
    exercise(COMPRESSED[:size])
    exercise(MARKER[:size])


def _json_containers(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    _json_containers, max_leaves=12)
metadata_field = st.sampled_from(["study", "runs", "counts", "environment", "inputs", "outputs",
                                  "secrets_dropped", "warnings", "studypack_version", "created"])


@settings(FUZZ, max_examples=max(EXAMPLES // 3, 20))   # each example runs info twice
@given(st.dictionaries(metadata_field, json_value, max_size=4),
       st.dictionaries(st.sampled_from(["name", "title", "authors", "description", "license",
                                        "doi"]), json_value, max_size=3),
       st.lists(st.dictionaries(st.sampled_from(["index", "command", "exit_code", "duration_s",
                                                 "started_at", "host", "git"]), json_value),
                max_size=2))
def test_fuzzed_metadata_never_crashes_info(fields, study_fields, runs):
    """`studypack info` (what a double-click shows first) on any studypack.json: it shows
    the study or refuses in one sentence (exit 1); never an internal error (exit 70)."""
    from tests.support.hostile.corpus import metadata
    from studypack.cli import main

    meta = metadata()
    meta.update(fields)
    if isinstance(meta.get("study"), dict):
        meta["study"].update(study_fields)
    if runs:
        meta["runs"] = runs
    with tempfile.TemporaryDirectory(prefix="studypack-fuzz-") as tmp:
        path = Path(tmp) / "meta.studypack"
        path.write_bytes(bundle_bytes(base_members(meta=meta)))
        assert main(["info", str(path)]) in (0, 1)
        assert main(["info", "--json", str(path)]) in (0, 1)
