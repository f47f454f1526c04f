"""Secrets, end to end: a study run with credentials planted everywhere they could leak —
environment variables (secret by name and secret by shape), the study's command line,
a `.env` file in the code folder, ~/.aws/credentials, a git remote URL with a token —
is traced and packed for real. No byte of the decompressed bundle, of the bundle file,
of its sidecar, nor of what `studypack create` printed contains any of them; and the
user is told what was removed."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

pytestmark = pytest.mark.slow


def _token(prefix: str, n: int = 24) -> str:
    return prefix + secrets.token_hex(n // 2)


# Each value is unique to this session, so a hit can only be a leak.
PLANTED = {
    "env var with a secret name": _token("env-name-secret-"),
    "env var holding a GitHub token": "ghp_" + secrets.token_hex(18),
    "argument after --api-key": _token("argv-apikey-"),
    "argument --password=VALUE": _token("argv-password-"),
    "harmless-named env var expanded into --password": _token("shell-expanded-"),
    "password in .env": _token("dotenv-password-"),
    "AWS secret in ~/.aws/credentials": _token("aws-secret-"),
    "token in the git remote URL": "ghp_" + secrets.token_hex(18),
}

ANALYSIS = """\
import os, pathlib, sys

settings = pathlib.Path(".env").read_text()          # like python-dotenv would
aws = (pathlib.Path.home() / ".aws" / "credentials").read_text()
token = os.environ["STUDY_SERVICE_TOKEN"]
print("argv:", sys.argv)                              # a careless log line...
print("connecting with", token)                       # ...and a worse one
print("github:", os.environ["EXTRA_SETTING"], file=sys.stderr)
pathlib.Path("results").mkdir(exist_ok=True)
pathlib.Path("results/answer.txt").write_text("42\\n")
"""


@pytest.fixture(scope="module")
def planted_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("secrets-e2e")
    home = root / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        f"aws_secret_access_key = {PLANTED['AWS secret in ~/.aws/credentials']}\n")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    study = root / "study"
    study.mkdir()
    (study / "analysis.py").write_text(ANALYSIS)
    (study / ".env").write_text(f"DB_PASSWORD={PLANTED['password in .env']}\n")
    (study / "studypack.toml").write_text(f"""\
[study]
name = "leaky"
title = "A study run with credentials all around it"
license = "CC0-1.0"

[[study.authors]]
name = "Test Author"

[[runs]]
command = ["python", "analysis.py", "--api-key", "{PLANTED['argument after --api-key']}",
           "--password={PLANTED['argument --password=VALUE']}"]

[[runs]]
command = ["bash", "-c", "python analysis.py --password $RUN_OPTION"]

[outputs]
paths = ["results/"]

[environment]
kind = "venv"
python = "{venv / 'bin' / 'python'}"
""")
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=study, check=True)
    remote = f"https://alice:{PLANTED['token in the git remote URL']}@github.com/alice/leaky.git"
    subprocess.run([*git, "remote", "add", "origin", remote], cwd=study, check=True)
    subprocess.run([*git, "add", "analysis.py", "studypack.toml"], cwd=study, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "study"], cwd=study, check=True)
    with (study / "analysis.py").open("a") as fh:          # a dirty tree: git.diff is packed
        fh.write("# tweaked after the commit\n")

    env = {**os.environ, "HOME": str(home), "TMPDIR": str(root),
           "STUDY_SERVICE_TOKEN": PLANTED["env var with a secret name"],
           "EXTRA_SETTING": PLANTED["env var holding a GitHub token"],
           "RUN_OPTION": PLANTED["harmless-named env var expanded into --password"]}
    out = root / "leaky.studypack"
    done = subprocess.run([sys.executable, "-m", "studypack", "create", str(study), "-o", str(out),
                           "--no-image", "--json"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return out, done


def leaks_in(data: bytes) -> list[str]:
    return [where for where, value in PLANTED.items() if value.encode() in data]


def test_no_planted_secret_in_any_byte_of_the_bundle(planted_study):
    bundle, _ = planted_study
    with open(bundle, "rb") as fh:
        raw_tar = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
    assert leaks_in(raw_tar) == []            # headers, pax records, every member, padding
    assert leaks_in(bundle.read_bytes()) == []
    assert leaks_in(Path(f"{bundle}.sha256").read_bytes()) == []

    import io
    with tarfile.open(fileobj=io.BytesIO(raw_tar)) as tar:
        names = tar.getnames()
        # what was traced and recorded is really there (so the search above is meaningful)
        assert "leaky/data/runs/1/stdout.txt" in names
        assert "leaky/data/trace/trace.sqlite3" in names
        stdout = tar.extractfile("leaky/data/runs/1/stdout.txt").read().decode()
        assert "connecting with [REDACTED]" in stdout
        run = json.loads(tar.extractfile("leaky/data/runs/1/run.json").read())
        assert run["git"]["remote"] == "https://github.com/alice/leaky.git"
        assert not any(n.endswith((".env", "credentials")) for n in names), names


def test_no_planted_secret_in_what_create_printed(planted_study):
    _, done = planted_study
    assert leaks_in(done.stdout.encode()) == []
    assert leaks_in(done.stderr.encode()) == []


def test_the_user_is_told_what_was_removed(planted_study):
    _, done = planted_study
    result = json.loads(done.stdout)
    assert {"STUDY_SERVICE_TOKEN", "EXTRA_SETTING"} <= set(result["secrets_dropped"])
    told = "\n".join(result["messages"])
    assert "dropped environment variable STUDY_SERVICE_TOKEN" in told
    assert "command-line argument" in told
    assert ".aws/credentials" in told and ".env" in told
