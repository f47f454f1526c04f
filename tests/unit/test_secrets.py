"""What the scrubber removes, and what it must leave alone."""

import hashlib

import pytest

from studypack.secrets import REDACTED, Scrubber, name_is_secret, value_is_secret


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "MY_DB_PASSWORD", "AWS_SECRET_ACCESS_KEY",
                                  "API_KEY", "ZENODO_TOKEN", "SSH_AUTH_SOCK", "DATABASE_URL"])
def test_secret_names(name):
    assert name_is_secret(name)


@pytest.mark.parametrize("name", ["PATH", "HOME", "LANG", "PYTHONPATH", "AWS_CA_BUNDLE",
                                  "OMP_NUM_THREADS", "KEYTIMEOUT"])
def test_harmless_names(name):
    assert not name_is_secret(name)


@pytest.mark.parametrize("value", [
    "ghp_" + "a1B2" * 9,
    "AKIA" + "ABCDEFGHIJKLMNOP",
    "xoxb-1234567890-abcdefghij",
    "https://alice:hunter22@example.org/repo.git",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "q8Zr2LmX0vT7nB4kP1sD9wE6yH3jU5cA",   # a random API key
])
def test_secret_values(value):
    assert value_is_secret(value)


@pytest.mark.parametrize("value", [
    hashlib.sha256(b"x").hexdigest(),                  # a checksum is published on purpose
    hashlib.sha1(b"x").hexdigest(),                    # a git commit
    hashlib.md5(b"x").hexdigest(),
    "/tmp/pytest-of-root/pytest-35/test_data_by_reference_goes_to0/heat-diffusion/data/big.csv",
    "file:///home/ada/Projects/HeatDiffusion2024/data/measurements_run17.csv",
    "/usr/lib/x86_64-linux-gnu:/usr/local/lib/python3.11/site-packages",
    "en_US.UTF-8",
])
def test_values_that_are_not_secrets(value):
    assert not value_is_secret(value)


def test_known_values_are_redacted_everywhere_and_arguments_after_secret_flags():
    scrubber = Scrubber()
    env = scrubber.scrub_environment({"MY_TOKEN": "tok-123456789", "LANG": "C.UTF-8"})
    assert env == {"LANG": "C.UTF-8"}
    argv = scrubber.scrub_argv(["python", "a.py", "--api-key", "k-abcdefgh", "--password=pw-1234567"])
    assert argv == ["python", "a.py", "--api-key", REDACTED, f"--password={REDACTED}"]
    text = scrubber.scrub_text("used tok-123456789 and k-abcdefgh and pw-1234567")
    assert "tok-" not in text and "k-abc" not in text and "pw-" not in text
    assert [line.split(" (")[0] for line in scrubber.summary()][0] == \
        "dropped environment variable MY_TOKEN"


def test_allow_list_keeps_a_variable():
    scrubber = Scrubber(allow={"MY_TOKEN"})
    assert scrubber.scrub_environment({"MY_TOKEN": "x" * 10}) == {"MY_TOKEN": "x" * 10}


@pytest.mark.parametrize("name", ["R_SESSION_TMPDIR", "XDG_SESSION_ID", "DESKTOP_SESSION",
                                  "DBUS_SESSION_BUS_ADDRESS", "SESSION_MANAGER"])
def test_session_bookkeeping_is_harmless(name):
    assert not name_is_secret(name)


@pytest.mark.parametrize("value", [
    # poetry and pipenv name their virtualenvs with a random-looking suffix
    "/home/ada/.cache/pypoetry/virtualenvs/heat-diffusion-Xk3pQ2rT-py3.11/bin:/usr/bin",
    "/home/ada/.local/share/virtualenvs/Heat-Diffusion-4Rt9kLm2/bin:/usr/local/bin:/bin",
    "/tmp/RtmpAbCdEf0123456789XYZabcdefGH",
])
def test_folder_lists_are_not_credentials(value):
    assert not value_is_secret(value)


def test_path_is_kept_and_a_drop_still_says_why():
    scrubber = Scrubber()
    env = {"PATH": "/home/ada/.cache/pypoetry/virtualenvs/rod-Xk3pQ2rT-py3.11/bin:/usr/bin",
           "R_SESSION_TMPDIR": "/tmp/RtmpQ2rTXk3p", "API_TOKEN": "x" * 12,
           "PROXY": "https://bob:s3cretpass@proxy.example.org:3128"}
    kept = scrubber.scrub_environment(env)
    assert set(kept) == {"PATH", "R_SESSION_TMPDIR"}
    assert scrubber.summary() == [
        "dropped environment variable API_TOKEN (its name looks like a secret)",
        "dropped environment variable PROXY (its value looks like a credential)"]
    # the venv's path printed by the study stays readable in its recorded output
    assert scrubber.scrub_text("using " + env["PATH"].split(":")[0]) == \
        "using " + env["PATH"].split(":")[0]
