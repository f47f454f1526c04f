"""Data kept by reference: the one downloader fetches it, checks size and sha256, and
refuses (leaving nothing behind) when it changed."""

import hashlib

import pytest

from studypack.errors import BundleError, Cancelled, RemoteError
from studypack.hashing import sha256_file
from studypack.progress import CancelToken
from studypack.references import Reference, fetch_references
from tests.support.web import served_folder


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "big.csv").write_bytes(b"x\n" + b"42\n" * 10000)
    with served_folder(root) as base:
        yield root, base


def ref_for(path, url):
    data = path.read_bytes()
    return Reference("data/big.csv", url, len(data), hashlib.sha256(data).hexdigest())


def test_fetched_over_http_and_checked(served, tmp_path):
    root, base = served
    study = tmp_path / "study"
    ref = ref_for(root / "big.csv", f"{base}/big.csv")
    seen = []
    assert fetch_references([ref], study, report=seen.append) == [ref]
    assert (study / "data" / "big.csv").read_bytes() == (root / "big.csv").read_bytes()
    assert seen[-1].done == ref.size == seen[-1].total
    # in place with the right checksum: not fetched again, even with the server gone
    moved = Reference(ref.path, f"{base}/gone.csv", ref.size, ref.sha256)
    assert fetch_references([moved], study) == []


def test_a_changed_file_is_refused_and_nothing_is_left(served, tmp_path):
    root, base = served
    ref = ref_for(root / "big.csv", f"{base}/big.csv")
    (root / "big.csv").write_bytes(b"x\n" + b"43\n" * 10000)  # same size, other bytes
    study = tmp_path / "study"
    with pytest.raises(BundleError, match="not the file the bundle recorded"):
        fetch_references([ref], study)
    assert list((study / "data").iterdir()) == []


def test_a_larger_file_is_stopped_at_the_declared_size(served, tmp_path):
    root, base = served
    ref = ref_for(root / "big.csv", f"{base}/big.csv")
    (root / "big.csv").write_bytes(b"y" * (8 << 20))      # 8 MiB where ~30 kB was declared
    seen = []
    with pytest.raises(BundleError, match="size or sha256 differs"):
        fetch_references([ref], tmp_path / "study", report=seen.append)
    assert max(p.done for p in seen) <= ref.size
    assert list((tmp_path / "study" / "data").iterdir()) == []


def test_a_missing_remote_file_is_one_remote_error(served, tmp_path):
    _, base = served
    ref = Reference("data/x.csv", f"{base}/absent.csv", 3, "0" * 64)
    with pytest.raises(RemoteError, match="could not be downloaded") as err:
        fetch_references([ref], tmp_path / "study")
    assert "--input" in err.value.hint


def test_unsafe_paths_and_urls_are_refused(tmp_path):
    for path in ("../outside.csv", "/etc/passwd"):
        with pytest.raises(BundleError, match="unsafe path"):
            fetch_references([Reference(path, "file:///dev/null", 0, "0" * 64)], tmp_path)
    with pytest.raises(BundleError, match="not an http"):
        fetch_references([Reference("a.csv", "ftp://127.0.0.1/a", 1, "0" * 64)], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_file_urls_work_offline_and_cancel_stops(tmp_path):
    src = tmp_path / "big.csv"
    src.write_bytes(b"1,2,3\n")
    study = tmp_path / "study"
    fetch_references([ref_for(src, f"file://{src}")], study)
    assert (study / "data" / "big.csv").read_bytes() == b"1,2,3\n"
    assert sha256_file(study / "data" / "big.csv") == hashlib.sha256(b"1,2,3\n").hexdigest()

    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        fetch_references([ref_for(src, f"file://{src}")], tmp_path / "other", cancel=cancel)
    assert list((tmp_path / "other" / "data").iterdir()) == []
