"""The one sha256 helper reports its progress in bytes and stops on cancel: the wizard's
checksum of a large data file kept by reference uses both."""

from __future__ import annotations

import hashlib

import pytest

from studypack.errors import Cancelled
from studypack.hashing import CHUNK, sha256_file
from studypack.progress import CancelToken


def test_progress_in_bytes_up_to_the_size(tmp_path):
    path = tmp_path / "big.bin"
    data = b"x" * (2 * CHUNK + 5)
    path.write_bytes(data)
    seen = []
    assert sha256_file(path, report=seen.append) == hashlib.sha256(data).hexdigest()
    assert [p.done for p in seen] == [CHUNK, 2 * CHUNK, 2 * CHUNK + 5]
    assert {p.total for p in seen} == {len(data)} and seen[0].phase == "checksum"


def test_cancel_stops_between_chunks(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (3 * CHUNK))
    cancel = CancelToken()
    seen = []

    def report(progress):
        seen.append(progress)
        cancel.cancel()           # the user presses Cancel after the first chunk

    with pytest.raises(Cancelled):
        sha256_file(path, cancel, report)
    assert len(seen) == 1


def test_the_gui_facade_passes_progress_and_cancel(tmp_path):
    from studypack_gui import backend
    path = tmp_path / "data.csv"
    path.write_bytes(b"1,2,3\n" * 1000)
    seen = []
    assert backend.sha256_of(path, seen.append) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert seen and seen[-1].done == path.stat().st_size
