"""What goes into a bundle from the study folder, and what is left out with its reason:
symlinks, dangling links, globs, files git ignores, files still being written."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from studypack.collect import review_study
from studypack.errors import UsageError
from studypack.spec import load_spec
from tests.support.helpers import STUDIES


def linked_study(tmp_path: Path) -> tuple[Path, Path]:
    """The linked-data study, its data folder and one data file linked outside it."""
    study = tmp_path / "study"
    shutil.copytree(STUDIES / "linked-data", study)
    disk = tmp_path / "shared-disk"
    (disk / "survey").mkdir(parents=True)
    (disk / "survey" / "a.csv").write_text("x\n1\n")
    (disk / "survey" / "b.csv").write_text("x\n1\n2\n3\n")
    (disk / "extra.csv").write_text("x\n9\n")
    os.symlink(disk / "survey", study / "data" / "shared")
    os.symlink(disk / "extra.csv", study / "data" / "extra.csv")
    (study / "results").mkdir()   # as after a run
    return study, disk


def test_symlinked_data_folder_and_file_are_packed_by_content_under_the_links_path(tmp_path):
    study, disk = linked_study(tmp_path)
    review = review_study(load_spec(study))
    data = {f.relpath: f for f in review.inputs if f.role == "data"}
    assert sorted(data) == ["data/extra.csv", "data/local.csv", "data/shared/a.csv",
                            "data/shared/b.csv"]
    assert data["data/shared/b.csv"].size == len("x\n1\n2\n3\n")
    links = {link.path: link for link in review.links}
    assert links["data/shared"].kind == "folder"
    assert links["data/shared"].target == str(disk / "survey")
    assert links["data/extra.csv"].kind == "file"
    assert review.left_out == []


def test_a_dangling_link_is_refused_with_its_name(tmp_path):
    study, disk = linked_study(tmp_path)
    (disk / "extra.csv").unlink()
    with pytest.raises(UsageError) as err:
        review_study(load_spec(study))
    assert str(err.value) == (f"The study's data/extra.csv is a symlink to {disk / 'extra.csv'}, "
                              "which does not exist.")


def test_a_link_back_to_an_enclosing_folder_is_walked_once_and_said(tmp_path):
    study, _disk = linked_study(tmp_path)
    os.symlink(study / "data", study / "data" / "again")
    review = review_study(load_spec(study))
    assert "data/again/" in {item.path for item in review.left_out}
    assert not any(f.relpath.startswith("data/again/") for f in review.inputs)


def test_output_globs_and_missing_data_globs(tmp_path):
    study = tmp_path / "study"
    shutil.copytree(STUDIES / "shell-glob", study)
    spec = load_spec(study)
    assert review_study(spec, outputs_expected=False).outputs == []   # before the run
    (study / "sorted.dat").write_text("apple\n")
    (study / "notes.txt").write_text("code, not output\n")
    review = review_study(spec)
    assert [f.relpath for f in review.outputs] == ["sorted.dat"]
    assert "notes.txt" in {f.relpath for f in review.inputs if f.role == "code"}

    spec.data_paths = ["data/*.csv"]
    with pytest.raises(UsageError) as err:
        review_study(spec)
    assert str(err.value) == f"[data] paths pattern 'data/*.csv' matches no file in {study}."


def git(study: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.org", *args],
                   cwd=study, check=True, capture_output=True)


def test_files_git_ignores_are_left_out_and_said_unless_named_as_data(tmp_path):
    study = tmp_path / "study"
    shutil.copytree(STUDIES / "shell-glob", study)
    (study / ".gitignore").write_text("build/\n*.log\ndata/cache.bin\n")
    (study / "build").mkdir()
    (study / "build" / "module.o").write_bytes(b"\0" * 10)
    (study / "debug.log").write_text("noise\n")
    (study / "data" / "cache.bin").write_bytes(b"\1" * 10)
    git(study, "init", "-q")
    spec = load_spec(study)
    spec.data_paths.append("data/cache.bin")
    review = review_study(spec)
    left = {item.path: item.reason for item in review.left_out}
    assert left["build/"].startswith("ignored by git (.gitignore)")
    assert left["debug.log"].startswith("ignored by git")
    packed = {f.relpath for f in review.inputs}
    assert "build/module.o" not in packed and "debug.log" not in packed
    assert "data/cache.bin" in packed  # ignored by git, but named under [data] paths
    assert ".gitignore" in packed


def test_a_log_still_being_written_into_the_study_is_left_out_and_named(tmp_path):
    study = tmp_path / "study"
    shutil.copytree(STUDIES / "shell-glob", study)
    writer = subprocess.Popen(["sh", "-c", f"exec sleep 30 > {study}/make.log"])
    try:
        for _ in range(100):
            if (study / "make.log").exists():
                break
            subprocess.run(["sleep", "0.05"])
        with open(study / "create.log", "w") as log:   # as `create > study/create.log`
            review = review_study(load_spec(study))
            log.write("done\n")
    finally:
        writer.kill()
        writer.wait()
    left = {item.path: item.reason for item in review.left_out}
    assert left["create.log"] == "still being written by studypack itself"
    assert left["make.log"] == f"still being written by process {writer.pid} (sleep)"
