"""The sandbox and directory modes keep the finished traced files for the next replay
of the same traced files (studypack/replay/rootfs_cache.py): real replays of the
example study, with the cache in a folder of the test's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studypack.replay import find_bag, replay_bundle
from studypack.replay import rootfs_cache
from studypack.replay.cache import claimed_digest
from studypack.replay.sandbox import bwrap_problem

pytestmark = pytest.mark.skipif(bwrap_problem() is not None,
                                reason=f"no sandbox here: {bwrap_problem()}")


def _notes(result) -> str:
    return "\n".join(result.notes)


def _replay(bundle: Path, work: Path, mode: str = "sandbox"):
    result = replay_bundle(bundle, mode=mode, keep=work, repeat=1)
    assert result.mode == mode and result.reproduced, result.notes
    return result


def test_second_sandbox_replay_reuses_the_kept_traced_files(example_bundle, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from studypack.bundle.reader import read_info

    digest = claimed_digest(read_info(example_bundle).metadata)
    assert digest, "the example bundle records its traced files' digest"
    entry = tmp_path / "cache" / "studypack" / "rootfs" / digest

    first = _replay(example_bundle, tmp_path / "w1")
    assert "kept the traced files" in _notes(first)
    assert (entry / rootfs_cache.MARKER).is_file()
    assert _look(digest) == entry / "rootfs"

    second = _replay(example_bundle, tmp_path / "w2")
    assert "reused the traced files" in _notes(second)
    # the traced files and the packages were checked, not written, this time
    bag = find_bag(tmp_path / "w2" / "bag")
    written = [p for p in (bag / "data" / "rootfs").rglob("*")
               if p.is_file() and not p.is_symlink()]
    assert written == []
    assert not list((bag / "data" / "env").rglob("*.whl"))


def _look(digest: str):
    """What a replay would find kept, without holding it (this test is no replay)."""
    root = rootfs_cache.lookup(digest)
    rootfs_cache.release(root)
    return root


def test_tampered_or_incomplete_kept_files_are_not_used(example_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from studypack.bundle.reader import read_info

    digest = claimed_digest(read_info(example_bundle).metadata)
    _replay(example_bundle, tmp_path / "w1")
    root = _look(digest)
    assert root is not None

    # a traced module changed after the entry was made
    module = next(p for p in root.rglob("*.py") if p.is_file() and not p.is_symlink())
    original = module.read_bytes()
    module.write_bytes(original + b"\nraise SystemExit('tampered')\n")
    assert rootfs_cache.lookup(digest) is None
    again = _replay(example_bundle, tmp_path / "w2")
    assert "reused" not in _notes(again) and "kept the traced files" in _notes(again)
    assert (_look(digest) / module.relative_to(root)).read_bytes() == original

    # an entry whose marker was never written (a replay killed while keeping it)
    (root.parent / rootfs_cache.MARKER).unlink()
    assert rootfs_cache.lookup(digest) is None
    third = _replay(example_bundle, tmp_path / "w3")
    assert "reused" not in _notes(third)

    # a marker naming other traced files
    marker = root.parent / rootfs_cache.MARKER
    record = json.loads(marker.read_text())
    marker.write_text(json.dumps(dict(record, digest="0" * 64)))
    assert rootfs_cache.lookup(digest) is None


def test_directory_replay_reuses_what_a_sandbox_replay_kept(example_bundle, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = _replay(example_bundle, tmp_path / "w1")
    assert "kept the traced files" in _notes(first)
    second = _replay(example_bundle, tmp_path / "w2", mode="directory")
    assert "directory mode reused the traced files" in _notes(second)
    assert second.runs[0].exit_code == 0 and "simulated 100 steps" in second.runs[0].stdout
    third = _replay(example_bundle, tmp_path / "w3", mode="sandbox")
    assert "reused the traced files" in _notes(third)     # the directory run left it as it was


@pytest.mark.parametrize("mode", ["sandbox", "directory"])
def test_kept_files_do_not_hide_a_changed_wheel_or_reference(example_bundle, tmp_path,
                                                              monkeypatch, mode):
    """Same traced-files digest, but the wheel (or the list of stored-once files) was
    changed and the bundle re-bagged: the kept files are not used, the rebuild refuses."""
    from studypack.errors import StudypackError
    from tests.e2e.test_store_once import _tamper_reference, _tamper_wheel
    from tests.support.rebag import rebag, unbag

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _replay(example_bundle, tmp_path / "w0")          # keeps the good files
    for number, tamper in enumerate([_tamper_wheel, _tamper_reference]):
        bag = unbag(example_bundle, tmp_path / f"unpacked{number}")
        tamper(bag)
        changed = rebag(bag, tmp_path / f"changed{number}.studypack")
        with pytest.raises(StudypackError) as err:
            replay_bundle(changed, mode=mode, repeat=1)
        assert "is not what the run used" in err.value.message


def test_a_work_folder_named_relative_to_the_current_folder(example_bundle, tmp_path,
                                                            monkeypatch):
    """`--keep work` (a relative name): bubblewrap starts in another folder, so the
    work folder's paths it is given must be absolute."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    result = _replay(example_bundle, Path("work"))
    assert result.workdir.is_absolute() and (tmp_path / "work" / "study").is_dir()
