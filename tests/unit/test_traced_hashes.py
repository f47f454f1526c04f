"""Store-once's digests of the traced files, computed in a thread during the
environment step: taken only for a file that has not changed since."""

from __future__ import annotations

import hashlib
import os
import time

from studypack.bundle.writer import Member
from studypack.storeonce import TracedHashes, plan_store_once

LIB = bytes(range(256)) * 40


def test_digests_computed_before_are_used_only_for_unchanged_files(tmp_path):
    kept, rewritten = tmp_path / "libkept.so", tmp_path / "librewritten.so"
    kept.write_bytes(LIB)
    rewritten.write_bytes(LIB)
    link = tmp_path / "libkept.so.1"
    link.symlink_to(kept.name)
    hashes = TracedHashes([kept, link, rewritten, tmp_path / "gone.so"]).start()
    found = hashes.result()
    assert len(found) == 2          # the link is the same file; a missing one is skipped
    # Mark the digests, so that the test sees which ones store-once took.
    for ident, (digest, key) in list(found.items()):
        found[ident] = ("f" * 64, key)
    st = rewritten.stat()
    time.sleep(0.02)                # past a coarse timestamp tick, so the ctime moves
    rewritten.write_bytes(LIB[::-1])
    os.utime(rewritten, ns=(st.st_atime_ns, st.st_mtime_ns))
    members = [Member.from_file("data/rootfs/lib/libkept.so", kept),
               Member.from_file("data/rootfs/lib/librewritten.so", rewritten)]
    plan_store_once(members, b"{}", [], hashed=found)
    assert members[0].known_sha256[0] == "f" * 64                       # taken
    assert members[1].known_sha256[0] == hashlib.sha256(LIB[::-1]).hexdigest()  # hashed again

