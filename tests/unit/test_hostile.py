"""A bundle from a stranger: every crafted hostile or broken bundle in tests/support/hostile is
refused by `studypack verify` and `studypack unpack` with one sentence naming the
problem, exit code 1, no traceback, nothing written outside the destination (nor left
inside it), and no hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from studypack.bundle import reader
from studypack.cli import main as studypack_main
from studypack.errors import EXIT_DAMAGED, StudypackError

from tests.support.hostile.corpus import CASES, CASES_BY_NAME, OUTSIDE, valid_bundle

ABSOLUTE_TARGET = Path("/tmp/studypack-hostile-abs.txt")
HANG_LIMIT_S = 120   # generous for a loaded CI machine; a refusal takes milliseconds


class Hang(Exception):
    pass


@pytest.fixture(autouse=True)
def no_hang():
    """A case that keeps the reader busy (e.g. inflating a terabyte) fails, not hangs."""
    def on_alarm(_sig, _frame):
        raise Hang(f"the reader was still busy after {HANG_LIMIT_S} s")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HANG_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def file_name(case) -> str:
    """Neutral names: a refusal must name the problem itself, not repeat the file name."""
    return f"received-{CASES.index(case):02}.studypack"


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-corpus")
    for case in CASES:
        (folder / file_name(case)).write_bytes(case.build())
    (folder / "valid.studypack").write_bytes(valid_bundle())
    return folder


@pytest.fixture
def jail(tmp_path, corpus_dir):
    """tmp/bundles/<case>.studypack, tmp/dest (the destination) and tmp/outside/victim.txt
    (what an escaping member would reach)."""
    (tmp_path / OUTSIDE).mkdir()
    (tmp_path / OUTSIDE / "victim.txt").write_text("untouched\n")
    (tmp_path / "dest").mkdir()
    ABSOLUTE_TARGET.unlink(missing_ok=True)
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every path under ``folder`` with its bytes (or link target), links not followed."""
    out: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                out[rel] = path.read_bytes()
            else:
                out[rel] = "dir"
    return out


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = studypack_main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("command", ["verify", "unpack"])
def test_the_untouched_base_is_accepted(command, jail, corpus_dir, capsys):
    """The control: every hostile case is this bundle with one thing changed."""
    bundle = corpus_dir / "valid.studypack"
    if command == "verify":
        code, text = run_cli(capsys, "verify", "-q", str(bundle))
    else:
        code, text = run_cli(capsys, "unpack", "-q", str(bundle), str(jail / "dest"))
        assert (jail / "dest" / "study" / "data" / "outputs" / "result.txt").read_text() == "45\n"
    assert code == 0, text


@pytest.mark.parametrize("command", ["verify", "unpack"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_bundle_is_refused(case, command, jail, corpus_dir, capsys):
    bundle = corpus_dir / file_name(case)
    before = snapshot(jail)
    if command == "verify":
        code, text = run_cli(capsys, "verify", "-q", str(bundle))
    else:
        code, text = run_cli(capsys, "unpack", "-q", str(bundle), str(jail / "dest"))

    assert code == EXIT_DAMAGED, f"{case.name}: exit {code}: {text}"
    assert "Traceback" not in text and "internal error" not in text, text
    lowered = text.lower()
    assert any(word in lowered for word in case.expect), \
        f"{case.name}: the message does not name the problem ({case.expect}): {text}"
    first_line = text.strip().splitlines()[0]
    assert first_line.startswith(("studypack: ", "damaged: ")), text
    assert snapshot(jail) == before, f"{case.name}: something was written or left behind"
    assert not ABSOLUTE_TARGET.exists()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_info_never_crashes(case, corpus_dir, capsys):
    """What a double-click does first: `info` reads only the head, so it may accept a
    bundle that `verify` refuses — but it never crashes on one."""
    code, text = run_cli(capsys, "info", str(corpus_dir / file_name(case)))
    assert code in (0, EXIT_DAMAGED), text
    assert "Traceback" not in text and "internal error" not in text, text


@pytest.mark.parametrize("name", ["symlink-outside", "decompression-bomb"])
def test_refusal_through_the_real_command(name, jail, corpus_dir):
    """The installed command, as a user runs it: exit 1, one sentence on stderr."""
    bundle = corpus_dir / file_name(CASES_BY_NAME[name])
    done = subprocess.run([sys.executable, "-m", "studypack", "unpack", str(bundle),
                           str(jail / "dest")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    sentences = [line for line in done.stderr.splitlines() if line.startswith("studypack: ")]
    assert len(sentences) == 1, done.stderr
    assert any(w in sentences[0].lower() for w in CASES_BY_NAME[name].expect)
    assert list((jail / "dest").iterdir()) == []


@pytest.mark.parametrize("name", ["decompression-bomb", "tag-file-bomb", "sparse-bomb"])
def test_bomb_is_stopped_before_its_payload_is_inflated(name, jail, corpus_dir):
    """The limit comes from the declared Payload-Oxum: the reader gives up at the
    header of the oversized member, before any of its bytes are decompressed."""
    bundle = corpus_dir / file_name(CASES_BY_NAME[name])
    seen = []
    with pytest.raises(StudypackError) as refused:
        reader.unpack(bundle, jail / "dest", report=seen.append)
    assert "bomb" in str(refused.value)
    assert max((p.done for p in seen), default=0) < 1024 * 1024
    assert list((jail / "dest").iterdir()) == []


def test_a_hostile_sidecar_is_a_mismatch_not_a_hang(jail, corpus_dir, capsys):
    """The .sha256 beside a bundle comes from the stranger too: a FIFO or a huge file is
    reported as not matching, without blocking or filling the memory."""
    bundle = jail / "valid.studypack"
    bundle.write_bytes((corpus_dir / "valid.studypack").read_bytes())
    sidecar = jail / "valid.studypack.sha256"
    os.mkfifo(sidecar)
    assert reader.verify(bundle).sidecar == "mismatch"
    sidecar.unlink()
    with sidecar.open("wb") as fh:
        fh.truncate(2 * 1024 ** 3)   # 2 GB of zeros (sparse on disk)
    code, text = run_cli(capsys, "verify", "-q", str(bundle))
    assert code == EXIT_DAMAGED and "does not match" in text
