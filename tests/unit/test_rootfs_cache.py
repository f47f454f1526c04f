"""The kept roots of sandbox replays: bounded, and checked before use."""

from __future__ import annotations

import os

from studypack.replay import rootfs_cache


def _root(base, name: str, text: str):
    root = base / name / "rootfs"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_text(text)
    os.symlink("usr/bin", root / "bin")
    return root


def test_only_the_newest_entries_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    digests = [f"{i:064x}" for i in range(rootfs_cache.KEEP + 2)]
    for i, digest in enumerate(digests):
        kept = rootfs_cache.keep(_root(tmp_path, digest, str(i)), digest, "/study", move=True)
        assert kept is not None and (kept / "usr/bin/tool").read_text() == str(i)
        marker = kept.parent / rootfs_cache.MARKER
        os.utime(marker, (1_000_000 + i, 1_000_000 + i))
        assert (kept / "study").is_dir() and (kept / "proc").is_dir()   # mount points
    left = sorted(p.name for p in rootfs_cache.cache_root().iterdir())
    assert left == digests[-rootfs_cache.KEEP:]      # the oldest went first
    rootfs_cache.keep(_root(tmp_path, "again", "x"), digests[0], "/study", move=False)
    left = sorted(p.name for p in rootfs_cache.cache_root().iterdir())
    assert left == sorted([digests[0], *digests[-rootfs_cache.KEEP + 1:]])


def test_a_changed_link_or_a_missing_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    digest = "ab" * 32
    kept = rootfs_cache.keep(_root(tmp_path, "a", "one"), digest, "/study", move=True)
    assert rootfs_cache.lookup(digest) == kept
    (kept / "bin").unlink()
    os.symlink("/usr/bin", kept / "bin")
    assert rootfs_cache.lookup(digest) is None
    assert not (kept.parent).exists()      # set aside
    kept = rootfs_cache.keep(_root(tmp_path, "b", "one"), digest, "/study", move=True)
    (kept / "usr/bin/tool").unlink()
    assert rootfs_cache.lookup(digest) is None
    assert rootfs_cache.lookup("not a digest") is None
