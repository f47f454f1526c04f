"""Real, small bundles for the deposit/fetch tests, made with studypack's own writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

from studypack.bundle.metadata import metadata_json
from studypack.bundle.writer import Member, PackPlan, pack
from studypack.spec import Author, RunStep, StudyInfo, StudySpec

PAPER_DOI = "10.1234/journal.paper.42"


def study_info(**changes) -> StudyInfo:
    info = StudyInfo(
        name="soil-carbon", title="Soil carbon under cover crops",
        description="Code and data for the soil carbon analysis.\n\nRuns in 2 seconds.",
        license="CC-BY-4.0", keywords=["soil", "carbon"],
        authors=[Author("Doe, Jane", "0000-0002-1694-233X", "Uni A"), Author("Roe, Rick")],
        version="1.0", related=[{"identifier": PAPER_DOI}])
    for key, value in changes.items():
        setattr(info, key, value)
    return info


def make_bundle(folder: Path, name: str = "soil-carbon", payload_bytes: int = 3 << 20,
                seed: bytes = b"", git: dict | None = None, **study_changes) -> Path:
    """A real .studypack (+ .sha256) whose payload is incompressible, so the file on
    disk is about ``payload_bytes`` long and an upload spans many chunks. ``git``: the
    git facts of its one run record (remote, commit, dirty)."""
    spec = StudySpec(study=study_info(**study_changes), runs=[RunStep(["python", "run.py"])])
    runs = [] if git is None else [{
        "index": 1, "command": ["python", "run.py"], "workdir": ".", "exit_code": 0,
        "started_at": "2026-11-21T00:00:00Z", "finished_at": "2026-11-21T00:00:02Z",
        "duration_s": 2.0, "host": {}, "git": git}]
    metadata = metadata_json(spec, runs=runs, inputs=["data.bin"], outputs=[], counts={},
                             environment={}, secrets_dropped=[], created="2026-11-21T00:00:00Z",
                             warnings=[])
    payload = seed + os.urandom(payload_bytes)
    plan = PackPlan(bag_name=name, metadata=json.dumps(metadata).encode(),
                    payload=[Member.from_bytes("data/study/data.bin", payload)])
    Path(folder).mkdir(parents=True, exist_ok=True)
    out = Path(folder) / f"{name}.studypack"
    pack(plan, out, level=1, threads=0)
    return out


def isolate_deposit_state(tmp_path, monkeypatch, token: str) -> None:
    """Own state dir, ``token`` as the production token in the environment, no sandbox
    token, and no real keyring: a deposit test never touches the user's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("ZENODO_TOKEN", token)
    monkeypatch.delenv("ZENODO_SANDBOX_TOKEN", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
