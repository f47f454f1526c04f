"""The kept roots of sandbox replays: bounded, and checked before use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from studypack.replay import rootfs_cache


def _root(base, name: str, text: str):
    root = base / name / "rootfs"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_text(text)
    os.symlink("usr/bin", root / "bin")
    return root


def _entries():
    return [p for p in rootfs_cache.cache_root().iterdir()
            if p.is_dir() and not p.name.startswith(".")]


def test_only_the_newest_entries_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    digests = [f"{i:064x}" for i in range(rootfs_cache.KEEP + 2)]
    for i, digest in enumerate(digests):
        kept = rootfs_cache.keep(_root(tmp_path, digest, str(i)), digest, "/study", move=True)
        assert kept is not None and (kept / "usr/bin/tool").read_text() == str(i)
        rootfs_cache.release(kept)                  # that replay ended
        marker = kept.parent / rootfs_cache.MARKER
        os.utime(marker, (1_000_000 + i, 1_000_000 + i))
        assert (kept / "study").is_dir() and (kept / "proc").is_dir()   # mount points
    left = sorted(p.name for p in _entries())
    assert left == digests[-rootfs_cache.KEEP:]      # the oldest went first
    rootfs_cache.release(rootfs_cache.keep(_root(tmp_path, "again", "x"), digests[0],
                                           "/study", move=False))
    left = sorted(p.name for p in _entries())
    assert left == sorted([digests[0], *digests[-rootfs_cache.KEEP + 1:]])


def test_a_changed_link_or_a_missing_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    digest = "ab" * 32
    kept = rootfs_cache.keep(_root(tmp_path, "a", "one"), digest, "/study", move=True)
    rootfs_cache.release(kept)
    assert rootfs_cache.lookup(digest) == kept
    rootfs_cache.release(kept)
    (kept / "bin").unlink()
    os.symlink("/usr/bin", kept / "bin")
    assert rootfs_cache.lookup(digest) is None
    assert not (kept.parent).exists()      # set aside
    kept = rootfs_cache.keep(_root(tmp_path, "b", "one"), digest, "/study", move=True)
    rootfs_cache.release(kept)
    (kept / "usr/bin/tool").unlink()
    assert rootfs_cache.lookup(digest) is None
    assert rootfs_cache.lookup("not a digest") is None


HOLD = """
import sys, time
from pathlib import Path
from studypack.replay import rootfs_cache
root = rootfs_cache.lookup(sys.argv[1])
print("held" if root else "missed", flush=True)
sys.stdin.readline()          # until the test says so
rootfs_cache.release(root)
"""


def _hold_in_another_process(digest: str, env: dict):
    """A second replay, in its own process, that found and uses the entry."""
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-c", HOLD, digest], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_an_entry_another_replay_uses_is_neither_pruned_nor_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    used = "ee" * 32
    kept = rootfs_cache.keep(_root(tmp_path, "used", "in use"), used, "/study", move=True)
    rootfs_cache.release(kept)
    os.utime(kept.parent / rootfs_cache.MARKER, (1_000_000, 1_000_000))   # the oldest
    other = _hold_in_another_process(used, {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        for i in range(rootfs_cache.KEEP + 1):      # newer entries, by replays that ended
            digest = f"{i:064x}"
            rootfs_cache.release(rootfs_cache.keep(_root(tmp_path, digest, str(i)), digest,
                                                   "/study", move=True))
        assert (kept / "usr/bin/tool").read_text() == "in use"     # not pruned
        # a replay of the same traced files that unpacked them too keeps its own copy
        assert rootfs_cache.keep(_root(tmp_path, "same", "new"), used, "/study",
                                 move=True) is None
        assert (kept / "usr/bin/tool").read_text() == "in use"     # not replaced
        # nor set aside when it changed under that replay (a directory-mode run)
        (kept / "usr/bin/tool").write_text("written by the run")
        assert rootfs_cache.lookup(used) is None
        assert (kept / "usr/bin/tool").exists()
    finally:
        other.communicate("\n", timeout=30)
    assert other.returncode == 0
    # once that replay ended, the oldest entry goes at the next prune
    rootfs_cache.release(rootfs_cache.keep(_root(tmp_path, "last", "x"), "ff" * 32, "/study",
                                           move=True))
    assert not kept.parent.exists()
    assert len(_entries()) == rootfs_cache.KEEP
    assert sorted(p.name for p in rootfs_cache.cache_root().glob("[!.]*.lock")) == \
        sorted(f"{p.name}.lock" for p in _entries())                # no stale lock files


def test_an_entry_with_read_only_folders_really_goes(tmp_path, monkeypatch):
    """As root, read-only folders do not stop a removal: the pruning then runs as an
    unprivileged user, as a reviewer's replay would."""
    import shutil
    import stat
    import subprocess
    import sys
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="studypack-ro-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        cache = base / "cache"
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
        digests = [f"{i:064x}" for i in range(rootfs_cache.KEEP)]
        for i, digest in enumerate(digests):
            kept = rootfs_cache.keep(_root(base, digest, str(i)), digest, "/study", move=True)
            rootfs_cache.release(kept)
            os.utime(kept.parent / rootfs_cache.MARKER, (1_000_000 + i, 1_000_000 + i))
        oldest = rootfs_cache.cache_root() / digests[0]
        for folder in (oldest / "rootfs/usr/bin", oldest / "rootfs/usr"):
            os.chmod(folder, 0o555)                  # read-only, as traced system folders
        prune = ("import sys\nfrom pathlib import Path\n"
                 "from studypack.replay import rootfs_cache\n"
                 "r = Path(sys.argv[1]) / 'newest'\n(r / 'usr').mkdir(parents=True)\n"
                 "rootfs_cache.release(rootfs_cache.keep(r, 'ff' * 32, '/study', move=True))\n")
        prefix = []
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv: read-only folders cannot stop root")
            subprocess.run(["chown", "-R", "65534:65534", str(base)], check=True)
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        env = {**os.environ, "XDG_CACHE_HOME": str(cache), "HOME": str(base)}
        done = subprocess.run([*prefix, sys.executable, "-c", prune, str(base)], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert not oldest.exists()
        assert not [p for p in rootfs_cache.cache_root().iterdir() if p.name.startswith(".old-")]
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)
