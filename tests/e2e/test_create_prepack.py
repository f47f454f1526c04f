"""The study's files compressed during its traced run (issue #17): a real ReproZip run
that rewrites one of its data files (same size, mtime set back) and writes a new one;
the bundle holds what the files are after the run, and the real tools accept it."""

from __future__ import annotations

import subprocess

from studypack.bundle.reader import verify
from studypack.create import CreateOptions, CreateSession
from studypack.spec import load_spec

REWRITE = '''
import os
_st = os.stat("data/material.json")
with open("data/material.json", "rb") as _fh:
    _old = _fh.read()
with open("data/material.json", "wb") as _fh:   # same size, other bytes
    _fh.write(_old.upper())
os.utime("data/material.json", ns=(_st.st_atime_ns, _st.st_mtime_ns))
with open("data/c-notes.txt", "w") as _fh:
    _fh.write("written by the run\\n")
'''


def test_a_traced_run_that_rewrites_its_data(example_study, tmp_path):
    study = example_study
    (study / "data" / "big.bin").write_bytes(b"0123456789abcdef" * (3 << 20))  # 48 MB
    (study / "analysis.py").write_text((study / "analysis.py").read_text() + REWRITE)
    before = (study / "data" / "material.json").read_bytes()
    assert before.upper() != before
    out = tmp_path / "p.studypack"
    with CreateSession(load_spec(study), CreateOptions(build_image=False), out) as session:
        session.plan()
        session.prepack.wait()    # every chunk compressed before the run: deterministic
        session.trace()
        # the trace names the files the run opened for writing: never copied in
        assert str(study / "data" / "material.json") in session.traced.written
        assert str(study / "data" / "c-notes.txt") in session.traced.written
        assert str(study / "data" / "big.bin") not in session.traced.written
        session.capture_environment()
        chunks = [[e.arcname for e in c.entries] for c in session.prepack.chunks]
        result = session.pack()
        # two chunks: up to big.bin, then from initial.csv (with material.json) on;
        # the new file lands between them, so only material.json's ctime keeps the
        # second one out
        assert chunks[0][-1] == "data/study/data/big.bin"
        assert "data/study/data/material.json" in chunks[1]
        assert session.spliced == len(chunks[0])
        assert any("compressed during the run" in line for line in result.details)
        assert not (session.work / "prepack").exists()
    subprocess.run(["zstd", "-tq", str(out)], check=True)
    subprocess.run(["sha256sum", "-c", "--quiet", out.name + ".sha256"], cwd=tmp_path,
                   check=True)
    verify(out)
    bag = tmp_path / "bag"
    bag.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(out), "-C", str(bag)], check=True)
    root = bag / "heat-diffusion"
    subprocess.run(["sha256sum", "-c", "--quiet", "manifest-sha256.txt"], cwd=root, check=True)
    assert (root / "data/study/data/material.json").read_bytes() == before.upper()
    assert (root / "data/study/data/c-notes.txt").read_text() == "written by the run\n"
    assert (root / "data/study/data/big.bin").read_bytes() == \
        (study / "data" / "big.bin").read_bytes()
