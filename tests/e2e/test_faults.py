"""Faults half-way: a pack killed at any moment, a disk that fills up while packing or
unpacking. Nothing that looks like a finished bundle is left at the output path, no
stray temporary file survives the next run, the source is never touched, and the user
reads one sentence naming the cause."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studypack.bundle import reader
from studypack.bundle.writer import Member, PackPlan, pack
from studypack.errors import EXIT_WRITE
from studypack.fsutil import TEMP_MARK

pytestmark = pytest.mark.slow

WORDS = ("heat rod flux boundary grid step kelvin sample noise mean median variance model "
         "fit residual error trial cohort dose response").split()


def run_cli(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studypack", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".venv" not in p.parts}


@pytest.fixture(scope="session")
def empty_venv(tmp_path_factory) -> Path:
    """An interpreter with no packages: the environment step locks nothing, quickly."""
    venv = tmp_path_factory.mktemp("fault-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


def make_study(root: Path, python: Path, data: dict[str, bytes]) -> Path:
    study = root / "study"
    (study / "data").mkdir(parents=True)
    (study / "analysis.py").write_text("print('hello')\n")
    for name, content in data.items():
        (study / "data" / name).write_bytes(content)
    (study / "studypack.toml").write_text(f"""\
[study]
name = "faulty"
title = "A study packed under adverse conditions"
license = "CC0-1.0"

[[study.authors]]
name = "Test Author"

[run]
command = ["python", "analysis.py"]

[data]
paths = ["data/"]

[environment]
kind = "venv"
python = "{python}"
""")
    return study


@pytest.fixture(scope="session")
def slow_data() -> bytes:
    """12 MB of word salad: compressible, so zstd level 19 takes seconds on it."""
    rng = random.Random(1)
    return " ".join(rng.choice(WORDS) for _ in range(2_000_000)).encode()[:12_000_000]


def plan(bag: str, payload: list[Member]) -> PackPlan:
    """What the writer packs for a study named ``bag`` holding only ``payload``."""
    meta = {"format": "studypack", "format_version": 1,
            "study": {"name": bag, "title": bag, "authors": []}, "runs": []}
    return PackPlan(bag, metadata=json.dumps(meta).encode(), payload=payload)


def stray_files(*folders: Path) -> list[str]:
    found = []
    for folder in folders:
        for p in folder.iterdir():
            if p.name.startswith((TEMP_MARK, "studypack-create-")):
                found.append(str(p))
    return found


def kill_when(proc: subprocess.Popen, ready) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (or when it exits by itself)."""
    while proc.poll() is None and not ready():
        time.sleep(0.005)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def partial_size(out_dir: Path) -> int:
    sizes = [p.stat().st_size for p in out_dir.glob(f"{TEMP_MARK}*") if p.is_file()]
    return max(sizes, default=-1)


MOMENTS = {
    "at-start": lambda out_dir, t0: True,
    "temp-file-created": lambda out_dir, t0: partial_size(out_dir) >= 0,
    "mid-pack": lambda out_dir, t0: partial_size(out_dir) > 200_000,
    "random-1": None, "random-2": None, "random-3": None,
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_create_killed_leaves_no_half_bundle(moment, tmp_path, empty_venv, slow_data):
    study = make_study(tmp_path, empty_venv, {"words.txt": slow_data})
    before = tree_digest(study)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    temp_dir = tmp_path / "tmp"   # where the run's own scratch folders go
    temp_dir.mkdir()
    out = out_dir / "faulty.studypack"
    env = {**os.environ, "TMPDIR": str(temp_dir)}
    command = [sys.executable, "-m", "studypack", "create", str(study), "-o", str(out),
               "--no-trace", "--no-image", "--level", "19", "-q"]

    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ready = MOMENTS[moment]
    if ready is None:  # a random moment within a typical run's length
        deadline = time.monotonic() + random.uniform(0.2, 6.0)
        kill_when(proc, lambda: time.monotonic() >= deadline)
    else:
        kill_when(proc, lambda: ready(out_dir, None))

    # Whatever is at the output path must be a finished, intact bundle.
    if out.exists():
        assert reader.verify(out).ok
    else:
        assert not Path(f"{out}.sha256").exists()
    assert tree_digest(study) == before

    # The next run finishes and leaves nothing behind from the killed one.
    again = subprocess.run([*command[:-3], "--level", "1", "--force"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert reader.verify(out).ok
    assert stray_files(out_dir, temp_dir) == []
    assert tree_digest(study) == before


def test_unpack_killed_leaves_nothing_after_the_next_run(tmp_path):
    bundle = tmp_path / "many.studypack"
    rng = random.Random(2)
    pack(plan("many", [Member.from_bytes(f"data/f{i}.bin", rng.randbytes(200_000))
                       for i in range(300)]), bundle, level=1)
    dest = tmp_path / "dest"
    command = [sys.executable, "-m", "studypack", "unpack", "-q", str(bundle), str(dest)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # as soon as the first payload file is being written into the staging folder
    kill_when(proc, lambda: any(p.name.startswith(TEMP_MARK) and (p / "data").is_dir()
                                for p in dest.glob("*")))
    assert proc.returncode == -signal.SIGKILL
    assert not (dest / "many").exists()  # only the staging folder, never a half result

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["many"]


# ------------------------------------------------------------------ disk full

@pytest.fixture
def small_disk(tmp_path):
    """A 5 MB tmpfs: a real file system that fills up (needs root)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_while_packing(tmp_path, small_disk, empty_venv):
    study = make_study(tmp_path, empty_venv, {"noise.bin": os.urandom(8_000_000)})
    before = tree_digest(study)
    out = small_disk / "faulty.studypack"
    done = run_cli("create", study, "-o", out, "--no-trace", "--no-image", "-q",
                   env={"TMPDIR": str(tmp_path)})
    assert done.returncode == EXIT_WRITE, done.stderr
    assert "Traceback" not in done.stderr
    assert "disk is full" in done.stderr
    assert list(small_disk.iterdir()) == []          # the partial bundle was removed
    assert tree_digest(study) == before


def test_disk_full_while_unpacking(tmp_path, small_disk):
    """Declared payload fits (1 byte per file), but every file takes a 4 KiB page: the
    disk fills up half-way through, after the up-front room check."""
    bundle = tmp_path / "tiny-files.studypack"
    pack(plan("tiny", [Member.from_bytes(f"data/{i:04}.txt", b"x") for i in range(2000)]),
         bundle, level=1)
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    done = run_cli("unpack", "-q", bundle, small_disk)
    assert done.returncode == EXIT_WRITE, done.stderr
    assert "Traceback" not in done.stderr
    assert "disk is full" in done.stderr
    assert list(small_disk.iterdir()) == []          # the partial folder was removed
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == digest


def test_unpack_refuses_up_front_when_the_payload_cannot_fit(tmp_path, small_disk):
    bundle = tmp_path / "big.studypack"
    pack(plan("big", [Member.from_bytes("data/noise.bin", os.urandom(8_000_000))]),
         bundle, level=1)
    done = run_cli("unpack", "-q", bundle, small_disk)
    assert done.returncode == EXIT_WRITE, done.stderr
    assert "free" in done.stderr and "Traceback" not in done.stderr
    assert list(small_disk.iterdir()) == []


def test_replay_killed_leaves_no_work_folder_after_the_next_run(example_bundle, tmp_path):
    """A replay unpacks the bundle into a work folder of its own; when it is killed, the
    next replay removes that folder."""
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    env = {**os.environ, "TMPDIR": str(temp_dir)}
    command = [sys.executable, "-m", "studypack", "replay", str(example_bundle),
               "--mode", "directory", "--json"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    kill_when(proc, lambda: any(p.name.startswith("studypack-replay-") and any(p.iterdir())
                                for p in temp_dir.iterdir()))
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in temp_dir.iterdir() if p.name.startswith("studypack-replay-")]

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in temp_dir.iterdir() if p.name.startswith("studypack-replay-")] == []
