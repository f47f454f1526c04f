"""Every command that takes ``--json`` prints exactly one JSON document on stdout when it
fails (bad arguments, bad input), besides the one-sentence message on stderr."""

from __future__ import annotations

import json

import pytest

from studypack.errors import EXIT_USAGE
from tests.support.helpers import run_cli


@pytest.mark.parametrize("argv, command, words", [
    (["verify", "--json", "missing.studypack"], "verify", "does not exist"),
    (["info", "--json", "missing.studypack"], "info", "does not exist"),
    (["verify", "--json", "--no-such-option", "x.studypack"], "verify", "--no-such-option"),
    (["create", "--json", "no-such-study"], "create", "does not exist"),
])
def test_a_failure_with_json_prints_one_document(tmp_path, argv, command, words):
    run = run_cli(*argv, cwd=tmp_path)
    assert run.returncode != 0
    doc = json.loads(run.stdout)            # the whole of stdout is one JSON document
    assert doc["ok"] is False and doc["command"] == command
    assert words in doc["error"]
    assert doc["exit_code"] == run.returncode
    assert words in run.stderr and "Traceback" not in run.stderr


def test_not_a_bundle_with_json(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    run = run_cli("info", "--json", "notes.txt", cwd=tmp_path)
    assert run.returncode != 0
    assert "not a studypack bundle" in json.loads(run.stdout)["error"]


def test_replay_keeps_its_own_document_and_prints_it_once(tmp_path):
    run = run_cli("replay", "--json", "missing.studypack", cwd=tmp_path)
    assert run.returncode == EXIT_USAGE
    doc = json.loads(run.stdout)            # would fail on two concatenated documents
    assert doc["reproduced"] is False and "ok" not in doc


def test_without_json_stdout_stays_empty(tmp_path):
    run = run_cli("verify", "missing.studypack", cwd=tmp_path)
    assert run.returncode != 0 and run.stdout == ""
