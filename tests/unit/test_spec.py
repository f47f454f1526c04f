"""The study description: what a researcher writes, and the errors they get."""

from pathlib import Path

import pytest

from studypack.errors import SpecError, UsageError
from studypack.spec import detect_spec, load_spec, orcid_is_valid, spec_to_toml, write_spec

from tests.support.helpers import EXAMPLE, run_cli


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "studypack.toml"
    path.write_text(text)
    return path


MINIMAL = """
[study]
name = "rod"
title = "A rod"
[run]
command = ["python", "a.py"]
"""


def test_example_spec_loads_with_every_key_the_issue_names():
    spec = load_spec(EXAMPLE)
    assert spec.study.name == "heat-diffusion"
    assert spec.study.authors[0].orcid == "0000-0002-1825-0097"
    assert spec.runs[0].command == ["python", "analysis.py", "--steps", "100"]
    assert spec.data_paths == ["data/"] and spec.output_paths == ["results/"]


def test_unknown_key_is_named_with_file_and_line(tmp_path):
    path = write(tmp_path, MINIMAL + "\n[outputs]\npaths = []\ncolour = 'red'\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "outputs.colour" in str(err.value) and f"{path}:10" in str(err.value)


def test_missing_title_is_named(tmp_path):
    path = write(tmp_path, MINIMAL.replace('title = "A rod"\n', ""))
    with pytest.raises(SpecError, match=r"study.title` is missing"):
        load_spec(path)


def test_bad_orcid_checksum_is_refused(tmp_path):
    path = write(tmp_path, MINIMAL + '[[study.authors]]\nname = "A"\norcid = "0000-0002-1825-0098"\n')
    with pytest.raises(SpecError, match="check digit"):
        load_spec(path)


def test_orcid_check_digit():
    assert orcid_is_valid("0000-0002-1825-0097")
    assert orcid_is_valid("0000-0001-5109-3700")
    assert orcid_is_valid("0000-0002-1694-233X")
    assert not orcid_is_valid("0000-0002-1694-2330")


def test_paths_may_not_leave_the_study(tmp_path):
    path = write(tmp_path, MINIMAL + '[data]\npaths = ["../secret"]\n')
    with pytest.raises(SpecError, match="inside the study folder"):
        load_spec(path)


def test_invalid_toml_is_one_sentence(tmp_path):
    path = write(tmp_path, "[study\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(path)


def test_roundtrip_write_then_load(tmp_path):
    spec = load_spec(EXAMPLE)
    text = spec_to_toml(spec)
    again = load_spec(write(tmp_path, text))
    assert again.to_dict() == spec.to_dict()


def test_write_never_overwrites_without_force(tmp_path):
    target = write(tmp_path, "# mine\n")
    spec = load_spec(EXAMPLE)
    with pytest.raises(UsageError, match="already exists"):
        write_spec(spec, target)
    assert target.read_text() == "# mine\n"


def test_detect_finds_script_data_and_results(tmp_path):
    (tmp_path / "analysis.py").write_text("print(1)\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "README.md").write_text("# Rod study\n\nHeat on a rod.\n")
    spec = detect_spec(tmp_path)
    assert spec.runs[0].command == ["python", "analysis.py"]
    assert spec.data_paths == ["data/"] and spec.output_paths == ["results/"]
    assert spec.study.title == "Rod study"


def test_cli_init_writes_a_spec_that_loads(tmp_path):
    (tmp_path / "main.py").write_text("print(1)\n")
    result = run_cli("init", tmp_path)
    assert result.returncode == 0, result.stderr
    assert load_spec(tmp_path).runs[0].command == ["python", "main.py"]
    again = run_cli("init", tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr
