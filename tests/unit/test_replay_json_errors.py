"""``studypack replay --json``: every failure, bad arguments included, prints one JSON
document on stdout (not argparse's usage) and exits with the usage code."""

from __future__ import annotations

import json

import pytest

from studypack.errors import EXIT_USAGE
from tests.support.helpers import run_cli


@pytest.mark.parametrize("argv, reason", [
    (["replay", "study.studypack", "--repeat", "abc", "--json"], "--repeat"),
    (["replay", "--json"], "BUNDLE"),
    (["replay", "--json", "study.studypack", "--no-such-option"], "--no-such-option"),
    (["replay", "study.studypack", "--json", "--sandbox", "--url", "http://127.0.0.1:1"],
     "not allowed with"),
])
def test_bad_arguments_with_json_print_one_json_document(tmp_path, argv, reason):
    run = run_cli(*argv, cwd=tmp_path)
    assert run.returncode == EXIT_USAGE
    doc = json.loads(run.stdout)            # the whole of stdout is one JSON document
    assert doc["reproduced"] is False
    assert reason in doc["reason"]
    assert doc["exit_code"] == EXIT_USAGE
    assert doc["bundle"] == (None if argv == ["replay", "--json"] else "study.studypack")
    assert "Traceback" not in run.stderr


def test_bad_arguments_without_json_print_the_usage(tmp_path):
    run = run_cli("replay", "study.studypack", "--repeat", "abc", cwd=tmp_path)
    assert run.returncode == EXIT_USAGE
    assert run.stdout == ""
    assert run.stderr.startswith("usage: studypack replay")
    assert "invalid int value: 'abc'" in run.stderr


def test_a_json_failure_after_the_arguments_is_json_too(tmp_path):
    run = run_cli("replay", "--mode", "nope", "--json", tmp_path / "missing.studypack",
                  cwd=tmp_path)
    assert run.returncode == EXIT_USAGE
    doc = json.loads(run.stdout)
    assert doc["reproduced"] is False and doc["reason"]
    assert doc["mode"] == "nope"
