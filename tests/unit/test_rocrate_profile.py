"""roc-validator, the RO-Crate community's validator, run offline (the RO-Crate context
vendored in tests/support/rocrate) on the crates studypack writes: the Process Run Crate
profile passes at REQUIRED and RECOMMENDED. Where a RECOMMENDED check needs a fact the
study does not give (an author, an affiliation, a program studypack does not know), the
crate still passes REQUIRED and fails exactly the checks docs/format.md lists."""

from __future__ import annotations

import json

import pytest

from studypack.bundle import metadata as md
from studypack.spec import load_spec
from tests.support.helpers import EXAMPLE
from tests.support.rocrate_check import validate

RUN = {"index": 1, "command": ["python", "analysis.py", "--steps", "100"], "workdir": ".",
       "started_at": "2026-01-01T10:00:00Z", "finished_at": "2026-01-01T10:00:05Z",
       "exit_code": 0}
ENVIRONMENT = {"python_version": "3.11.7",
               "system_packages": [{"name": "bash", "version": "5.2.15-2+b7"}]}
INPUTS = ["analysis.py", "data/params.json", "data/raw/plate 1.csv",
          "src/order.cpp", "src/order.hpp"]   # MIME types text/x-c++src, text/x-c++hdr
OUTPUTS = ["results/temperature.csv", "results/summary.json", "results/figure.png"]


def variant(name: str):
    spec = load_spec(EXAMPLE / "studypack.toml")
    runs = [dict(RUN)]
    if name == "two-runs-one-failed-deposited":   # python, then a failed bash step
        runs.append({**RUN, "index": 2, "command": ["/bin/bash", "post.sh"], "exit_code": 1})
        spec.study.doi = "10.5281/zenodo.1234567"
    elif name == "not-traced":
        runs = []
    elif name == "author-without-affiliation":
        spec.study.authors[0].affiliation = ""
    elif name == "no-author":
        spec.study.authors = []
    elif name == "unknown-program":
        runs[0]["command"] = ["./simulate", "--fast"]
    return spec, runs


# check ids that only the study's own facts can satisfy (docs/format.md, "RO-Crate")
NEEDS_FACTS = {
    "author-without-affiliation": ["ro-crate-1.1_22.3", "ro-crate-1.1_30.2",
                                   "ro-crate-1.1_30.3"],
    "no-author": ["process-run-crate-0.5_8.6", "ro-crate-1.1_22.2", "ro-crate-1.1_22.3"],
    "unknown-program": ["process-run-crate-0.5_3.2", "process-run-crate-0.5_4.1",
                        "process-run-crate-0.5_5.1"],
}


@pytest.mark.parametrize("name", ["traced-run", "two-runs-one-failed-deposited", "not-traced",
                                  *NEEDS_FACTS])
def test_process_run_crate_profile(name, tmp_path):
    spec, runs = variant(name)
    crate = md.ro_crate(spec, runs=runs, inputs=INPUTS, outputs=OUTPUTS,
                        created="2026-01-01T10:00:06Z", environment=ENVIRONMENT)
    data = tmp_path / "bag" / "data"
    for path in [f"study/{p}" for p in INPUTS] + [f"outputs/{p}" for p in OUTPUTS]:
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        (data / path).write_text("x\n")
    (data / "ro-crate-metadata.json").write_text(json.dumps(crate, indent=2))
    failed = [line.split(":", 1)[0] for line in validate(data, "RECOMMENDED")]
    assert failed == NEEDS_FACTS.get(name, []), validate(data, "RECOMMENDED")


def test_the_validator_runs_offline(tmp_path, monkeypatch):
    """Without the vendored context in its cache the validator cannot resolve it: so a
    passing run above used the vendored file, not the network."""
    import tests.support.rocrate_check as check

    monkeypatch.setattr(check, "_cache_with_context", lambda cache: None)
    data = tmp_path / "data"
    data.mkdir()
    (data / "ro-crate-metadata.json").write_text(json.dumps(
        {"@context": check.CONTEXT_URL, "@graph": []}))
    assert any("Unable to retrieve the JSON-LD context" in line
               for line in check.validate(data, "REQUIRED"))
