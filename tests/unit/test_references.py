"""Data kept by reference is fetched at replay and refused when it changed."""

import hashlib
import http.server
import threading
from functools import partial

import pytest

from studypack.errors import BundleError
from studypack.references import fetch_references


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "big.csv").write_bytes(b"x\n" + b"42\n" * 10000)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def ref_for(path, url):
    data = path.read_bytes()
    return {"path": "data/big.csv", "url": url, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def test_fetched_over_http_and_checked(served, tmp_path):
    root, base = served
    study = tmp_path / "study"
    ref = ref_for(root / "big.csv", f"{base}/big.csv")
    [path] = fetch_references([ref], study)
    assert path.read_bytes() == (root / "big.csv").read_bytes()


def test_a_changed_file_is_refused_and_nothing_is_left(served, tmp_path):
    root, base = served
    ref = ref_for(root / "big.csv", f"{base}/big.csv")
    (root / "big.csv").write_bytes(b"x\n" + b"43\n" * 10000)  # same size, other bytes
    study = tmp_path / "study"
    with pytest.raises(BundleError, match="does not match the size and checksum"):
        fetch_references([ref], study)
    assert list((study / "data").iterdir()) == []


def test_file_urls_work_offline(tmp_path):
    src = tmp_path / "big.csv"
    src.write_bytes(b"1,2,3\n")
    [path] = fetch_references([ref_for(src, f"file://{src}")], tmp_path / "study")
    assert path.read_bytes() == b"1,2,3\n"
