"""ReproZip packs in and out, with the real tools: a bundle exported as .rpz is opened by
reprounzip (info, showfiles, directory setup + run), and a pack made by `reprozip pack`
is imported as a bundle that verifies and replays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import run_cli

TOOLS = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return str(path)


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    run = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "REPROZIP_USAGE_STATS": "off"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def _study(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "words.txt").write_text("one two three\nfour five\n")
    (folder / "studypack.toml").write_text(
        '[study]\nname = "word-count"\ntitle = "Counting words"\n\n[run]\ncommand = '
        '["sh", "-c", "mkdir -p results && wc -w < data/words.txt > results/count.txt"]\n\n'
        '[data]\npaths = ["data"]\n\n[outputs]\npaths = ["results"]\n')
    return folder


def test_an_exported_pack_is_opened_and_run_by_the_real_reprounzip(tmp_path):
    reprounzip = _tool("reprounzip")
    study = _study(tmp_path / "word-count")
    bundle = tmp_path / "word-count.studypack"
    made = run_cli("create", study, "-o", bundle, "--no-image", "-q")
    assert made.returncode == 0, made.stderr
    rpz = tmp_path / "word-count.rpz"
    exported = run_cli("export", "--rpz", bundle, "-o", rpz)
    assert exported.returncode == 0, exported.stderr
    again = run_cli("export", "--rpz", bundle, "-o", rpz)
    assert again.returncode == 2 and "already exists" in again.stderr   # never overwritten

    info = _run(reprounzip, "info", str(rpz)).stdout
    assert "Runs (1):" in info and "wc -w" in info
    assert "directory" in info.split("Compatible", 1)[1]
    files = _run(reprounzip, "showfiles", str(rpz)).stdout
    assert "words.txt" in files and "count.txt" in files
    unpacked = tmp_path / "unpacked"
    _run(reprounzip, "directory", "setup", str(rpz), str(unpacked))
    _run(reprounzip, "directory", "run", str(unpacked))
    count = unpacked / "root" / str(study / "results" / "count.txt").lstrip("/")
    assert count.read_text().strip() == "5"


@pytest.mark.docker
def test_a_reprozip_pack_is_imported_verified_and_replayed(tmp_path, docker_engine):
    reprozip = _tool("reprozip")
    study = tmp_path / "packed-study"
    (study / "data").mkdir(parents=True)
    (study / "data" / "words.txt").write_text("alpha beta\ngamma\n")
    command = ["sh", "-c", "mkdir -p results && wc -l < data/words.txt > results/lines.txt"
               " && cat results/lines.txt"]
    _run(reprozip, "trace", "-d", str(tmp_path / "trace"), *command, cwd=study)
    rpz = tmp_path / "packed-study.rpz"
    _run(reprozip, "pack", "-d", str(tmp_path / "trace"), str(rpz))

    bundle = tmp_path / "imported.studypack"
    imported = run_cli("import", rpz, "-o", bundle, "--title", "Lines, from ReproZip",
                       "--author", "Ada Lovelace")
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 run(s)" in imported.stderr
    assert run_cli("verify", bundle).returncode == 0
    info = json.loads(run_cli("info", bundle, "--json").stdout)
    assert info["study"]["title"] == "Lines, from ReproZip"
    assert info["runs"][0]["command"] == command

    replay = run_cli("replay", bundle, "--mode", "trace", "--json")
    assert replay.returncode == 0, replay.stderr[-3000:]
    result = json.loads(replay.stdout)
    assert result["mode"] == "trace" and result["runs"][0]["exit_code"] == 0
    assert "2" in result["runs"][0]["stdout_tail"]   # wc -l ran on the packed input

    bad = tmp_path / "not-a-pack.rpz"
    bad.write_bytes(b"hello")
    refused = run_cli("import", bad, "-o", tmp_path / "bad.studypack")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "not a ReproZip pack" in refused.stderr


def test_a_hostile_pack_is_refused_and_writes_nothing_outside(tmp_path):
    import io
    import tarfile

    def add(tar, name, data, **fields):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        for key, value in fields.items():
            setattr(info, key, value)
        tar.addfile(info, io.BytesIO(data))

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as inner:
        add(inner, "DATA/tmp/link", b"", type=tarfile.SYMTYPE, linkname="/etc")
        add(inner, "DATA/../../escaped.txt", b"owned")
    rpz = tmp_path / "hostile.rpz"
    with tarfile.open(rpz, "w") as outer:
        add(outer, "METADATA/version", b"REPROZIP VERSION 2\n")
        add(outer, "METADATA/config.yml", b"version: '0.8'\nruns:\n- argv: [true]\n"
                                          b"  workingdir: /tmp\n")
        add(outer, "METADATA/trace.sqlite3", b"")
        add(outer, "DATA.tar.gz", data.getvalue())
    refused = run_cli("import", rpz, "-o", tmp_path / "out.studypack", cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr
    assert "unsafe path 'DATA/../../escaped.txt'" in refused.stderr
    assert not list(tmp_path.parent.glob("escaped.txt")) and not (tmp_path / "out.studypack").exists()
