"""studypack create on real studies: failures, secrets, outputs, atomic writes."""

from __future__ import annotations

import subprocess

import pytest
import zstandard

from studypack.bundle.reader import read_info

from tests.support.helpers import run_cli

SECRETS = {
    "GITHUB_TOKEN": "ghp_" + "Q" * 36,
    "MY_DB_PASSWORD": "correct-horse-battery-staple",
    "INNOCENT_LOOKING": "AKIA" + "ABCDEFGHIJKLMNOP",
}


def test_secrets_never_enter_the_bundle(example_study, tmp_path):
    out = tmp_path / "s.studypack"
    result = run_cli("create", example_study, "-o", out, "--no-image", env=SECRETS)
    assert result.returncode == 0, result.stderr
    for name in SECRETS:
        assert f"dropped environment variable {name}" in result.stderr
    with open(out, "rb") as fh:
        everything = zstandard.ZstdDecompressor().stream_reader(
            fh, read_across_frames=True).read()
    for value in SECRETS.values():
        assert value.encode() not in everything
    assert sorted(read_info(out).metadata["secrets_dropped"]) == sorted(SECRETS)
    # ...and the variables that are not secret are kept for the replay.
    assert b'"LANG"' in everything or b"LANG:" in everything


def test_allow_list_keeps_a_variable(example_study, tmp_path):
    spec = example_study / "studypack.toml"
    spec.write_text(spec.read_text() + 'allow_env = ["MY_DB_PASSWORD"]\n')
    out = tmp_path / "a.studypack"
    result = run_cli("create", example_study, "-o", out, "--no-image", "-q",
                     env={"MY_DB_PASSWORD": "not-really-secret"})
    assert result.returncode == 0, result.stderr
    assert "MY_DB_PASSWORD" not in read_info(out).metadata["secrets_dropped"]


def test_a_failing_command_stops_with_a_clear_message(example_study, tmp_path):
    (example_study / "data" / "material.json").write_text('{"alpha": 1.0, "dt": 1.0}')
    out = tmp_path / "f.studypack"
    result = run_cli("create", example_study, "-o", out, "--no-image", "-q")
    assert result.returncode == 5
    assert "exited with code 1" in result.stderr and "unstable scheme" in result.stderr
    assert "Traceback" not in result.stderr.split("error output:")[0]
    assert not out.exists()
    again = run_cli("create", example_study, "-o", out, "--no-image", "-q", "--allow-failure")
    assert again.returncode == 0, again.stderr
    assert read_info(out).runs[0]["exit_code"] == 1


def test_existing_bundle_is_not_overwritten(example_study, tmp_path):
    out = tmp_path / "x.studypack"
    out.write_text("my precious file")
    result = run_cli("create", example_study, "-o", out, "--no-image", "-q")
    assert result.returncode == 2 and "already exists" in result.stderr
    assert out.read_text() == "my precious file"


def test_git_commit_and_dirty_diff_are_recorded(example_study, tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=example_study, check=True, capture_output=True)
    git("init", "-q")
    git("-c", "user.name=T", "-c", "user.email=t@example.org", "add", ".")
    git("-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-qm", "init")
    git("remote", "add", "origin", "https://alice:s3cr3t-t0ken-value@git.example.org/rod.git")
    (example_study / "analysis.py").write_text(
        (example_study / "analysis.py").read_text() + "\n# tweak\n")
    out = tmp_path / "g.studypack"
    result = run_cli("create", example_study, "-o", out, "--no-image", "-q")
    assert result.returncode == 0, result.stderr
    run = read_info(out).runs[0]
    assert len(run["git"]["commit"]) == 40 and run["git"]["dirty"] is True
    assert run["git"]["changed_files_read"] == {"analysis.py": "modified"}
    assert run["git"]["remote"] == "https://git.example.org/rod.git"
    with open(out, "rb") as fh:
        everything = zstandard.ZstdDecompressor().stream_reader(
            fh, read_across_frames=True).read()
    assert b"+# tweak" in everything  # the dirty diff
    assert b"s3cr3t-t0ken-value" not in everything


def test_missing_output_path_is_a_clear_error(example_study, tmp_path):
    spec = example_study / "studypack.toml"
    spec.write_text(spec.read_text().replace('paths = ["results/"]', 'paths = ["figures/"]'))
    result = run_cli("create", example_study, "-o", tmp_path / "m.studypack", "--no-image", "-q")
    assert result.returncode == 2 and "'figures/', which does not exist" in result.stderr


def test_data_by_reference_goes_to_fetch_txt(example_study, tmp_path):
    import hashlib
    big = example_study / "data" / "big.csv"
    big.write_text("x\n" + "1\n" * 5000)
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    spec = example_study / "studypack.toml"
    spec.write_text(spec.read_text().replace(
        '[outputs]',
        f'[[data.references]]\npath = "data/big.csv"\nurl = "http://127.0.0.1:9/big.csv"\n'
        f'size = {big.stat().st_size}\nsha256 = "{digest}"\n\n[outputs]'))
    out = tmp_path / "r.studypack"
    result = run_cli("create", example_study, "-o", out, "--no-image", "-q")
    assert result.returncode == 0, result.stderr
    with open(out, "rb") as fh:
        everything = zstandard.ZstdDecompressor().stream_reader(
            fh, read_across_frames=True).read()
    assert (f"http://127.0.0.1:9/big.csv {big.stat().st_size} data/study/data/big.csv"
            .encode() in everything)
    assert b"1\n1\n1\n1\n1\n1\n1\n1\n" not in everything  # the data itself stays outside
    verify = run_cli("verify", out, "--json")
    assert verify.returncode == 0, verify.stdout
    info = read_info(out).metadata
    assert info["data_references"][0]["sha256"] == digest
    # The spec copy inside the bundle keeps the reference intact (it is not a secret).
    assert f'sha256 = "{digest}"'.encode() in everything
    assert b'url = "http://127.0.0.1:9/big.csv"' in everything


def test_no_trace_packs_the_study_as_it_is(example_study, tmp_path):
    (example_study / "results").mkdir()
    (example_study / "results" / "old.csv").write_text("a\n1\n")
    out = tmp_path / "n.studypack"
    result = run_cli("create", example_study, "-o", out, "--no-trace", "--no-image", "-q")
    assert result.returncode == 0, result.stderr
    meta = read_info(out).metadata
    assert meta["runs"] == [] and meta["outputs"] == ["results/old.csv"]


def test_create_warns_about_names_macos_or_windows_cannot_hold(example_study, tmp_path):
    """#19: the bundle is made (Linux holds these names) and create says which names
    macOS or Windows cannot unpack; unpack on Windows then refuses them by name."""
    from studypack.bundle import reader
    from studypack.errors import UnsafeBundleError

    data = example_study / "data"
    (data / "aux.csv").write_text("a\n1\n")
    (data / "run:2.csv").write_text("a\n2\n")
    (data / "Initial.csv").write_text("a\n3\n")          # beside data/initial.csv
    (example_study / "results").mkdir()
    (example_study / "results" / "old.csv").write_text("a\n1\n")
    out = tmp_path / "w.studypack"
    result = run_cli("create", example_study, "-o", out, "--no-trace", "--no-image")
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert "data/study/data/aux.csv cannot be unpacked on Windows" in said
    assert "data/study/data/run:2.csv cannot be unpacked on Windows" in said
    assert "differ only by case" in said and "Initial.csv" in said
    assert any("aux.csv" in w for w in read_info(out).metadata["warnings"])
    assert reader.unpack(out, tmp_path / "linux", platform="linux").bag_dir.is_dir()
    with pytest.raises(UnsafeBundleError, match="cannot be unpacked on Windows"):
        reader.unpack(out, tmp_path / "windows", platform="win32")
    assert list((tmp_path / "windows").iterdir()) == []
