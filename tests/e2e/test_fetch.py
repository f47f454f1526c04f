"""Fetching a bundle back from Zenodo by DOI or record URL (the first half of
``studypack replay DOI``): real client, fake Zenodo over loopback, real bundles."""

from __future__ import annotations

import json

import pytest

from tests.support.deposit_bundles import make_bundle
from studypack.bundle.reader import read_info, verify
from studypack.cli import main
from studypack.deposit.client import ZenodoClient
from studypack.deposit.refs import RecordRef, parse_ref
from studypack.deposit.state import DepositState
from studypack.deposit.token import Secret
from studypack.deposit.workflow import plan_deposit, run_deposit
from studypack.errors import EXIT_DAMAGED, BundleError, UsageError
from studypack.fetch import fetch_bundle, fetch_record
from tests.support.zenodo_server import FakeZenodo

TOKEN = "fetch-test-token"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A fake Zenodo holding one published bundle (and, later, its second version)."""
    folder = tmp_path_factory.mktemp("published")
    bundle = make_bundle(folder, payload_bytes=2 << 20)
    with FakeZenodo() as server:
        server.add_token(TOKEN)
        client = ZenodoClient(server.url, Secret(TOKEN), backoff=0.01)
        result = run_deposit(plan_deposit(bundle, base_url=server.url, publish=True),
                             client=client, state=DepositState(folder / "state.json"))
        yield server, bundle, result


def test_fetch_by_doi_gives_the_same_bundle_and_its_sidecar(published, tmp_path):
    server, bundle, deposited = published
    path = fetch_bundle(deposited.doi, tmp_path / "in", base_url=server.url)
    assert path == tmp_path / "in" / bundle.name
    assert path.read_bytes() == bundle.read_bytes()
    sidecar = path.with_name(path.name + ".sha256")
    assert sidecar.read_text() == bundle.with_name(bundle.name + ".sha256").read_text()
    assert read_info(path).metadata["study"]["title"] == "Soil carbon under cover crops"
    assert verify(path).ok


def test_fetch_by_record_url_and_by_concept_doi(published, tmp_path):
    server, bundle, deposited = published
    by_url = fetch_record(f"{server.url}/records/{deposited.deposition_id}", tmp_path / "a")
    assert by_url.record_id == deposited.deposition_id and by_url.sidecar_checked
    by_concept = fetch_record(deposited.concept_doi, tmp_path / "b", base_url=server.url)
    assert by_concept.record_id == deposited.deposition_id  # the latest version


def test_concept_doi_on_a_server_without_concept_redirects(tmp_path):
    bundle = make_bundle(tmp_path / "src", payload_bytes=1000)
    with FakeZenodo(concept_redirect=False) as server:
        server.add_token(TOKEN)
        result = run_deposit(plan_deposit(bundle, base_url=server.url, publish=True),
                             client=ZenodoClient(server.url, Secret(TOKEN)),
                             state=DepositState(tmp_path / "s.json"))
        fetched = fetch_record(result.concept_doi, tmp_path / "in", base_url=server.url)
        assert fetched.record_id == result.deposition_id
        assert server.count("GET", r"/api/records/\d+/versions/latest") == 1


def test_bad_checksum_is_refused_and_nothing_is_kept(tmp_path):
    bundle = make_bundle(tmp_path / "src", payload_bytes=1 << 20)
    with FakeZenodo() as server:
        server.add_token(TOKEN)
        result = run_deposit(plan_deposit(bundle, base_url=server.url, publish=True),
                             client=ZenodoClient(server.url, Secret(TOKEN)),
                             state=DepositState(tmp_path / "s.json"))
        server.corrupt_download(bundle.name)
        dest = tmp_path / "dest"
        with pytest.raises(BundleError, match="damaged") as err:
            fetch_bundle(result.doi, dest, base_url=server.url)
        assert "md5" in str(err.value)
        assert list(dest.iterdir()) == []   # no partial file that looks like a bundle
        code = main(["fetch", result.doi, "--url", server.url, "-o", str(dest)])
        assert code == EXIT_DAMAGED


def test_a_download_broken_off_is_started_again(published, tmp_path):
    server, bundle, deposited = published
    server.drop_download(bundle.name, after_bytes=1 << 20)
    client = ZenodoClient(server.url, backoff=0.01)
    content = rf"/api/records/\d+/files/{bundle.name}/content"
    before = server.count("GET", content)
    fetched = fetch_record(deposited.doi, tmp_path, base_url=server.url, client=client)
    assert fetched.path.read_bytes() == bundle.read_bytes()
    assert server.count("GET", content) == before + 2


def test_a_bundle_already_there_is_reused_a_different_file_is_left_alone(published, tmp_path):
    server, bundle, deposited = published
    first = fetch_record(deposited.doi, tmp_path, base_url=server.url)
    again = fetch_record(deposited.doi, tmp_path, base_url=server.url)
    assert again.reused and not first.reused
    other = tmp_path / "other"
    other.mkdir()
    (other / bundle.name).write_bytes(b"my own file")
    with pytest.raises(UsageError, match="left as it is"):
        fetch_bundle(deposited.doi, other, base_url=server.url)
    assert (other / bundle.name).read_bytes() == b"my own file"


def test_cli_fetch_json(published, tmp_path, capsys):
    server, bundle, deposited = published
    code = main(["fetch", deposited.doi, "--url", server.url, "-o", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["path"] == str(tmp_path / bundle.name) and out["sidecar_checked"] is True
    assert out["doi"] == deposited.doi


def test_unknown_record_and_record_without_bundle(published, tmp_path):
    server, _, _ = published
    with pytest.raises(Exception, match="404"):
        fetch_bundle("10.5281/zenodo.999999", tmp_path, base_url=server.url)
    client = ZenodoClient(server.url, Secret(TOKEN))
    draft = client.create_deposition()
    readme = tmp_path / "README.txt"
    readme.write_text("not a bundle")
    client.upload(draft["links"]["bucket"], readme.name, readme)
    client.update_metadata(draft["id"], {"upload_type": "other", "title": "Notes",
                                         "description": "n", "creators": [{"name": "Doe, J"}]})
    client.action(draft["id"], "publish")
    with pytest.raises(UsageError, match="holds no .studypack file .README.txt."):
        fetch_bundle(str(draft["id"]), tmp_path / "x", base_url=server.url)


@pytest.mark.parametrize("ref,expected", [
    ("10.5281/zenodo.123", RecordRef("https://zenodo.org", 123)),
    ("doi:10.5281/zenodo.123", RecordRef("https://zenodo.org", 123)),
    ("https://doi.org/10.5281/zenodo.123", RecordRef("https://zenodo.org", 123)),
    ("10.5072/zenodo.9", RecordRef("https://sandbox.zenodo.org", 9)),
    ("https://zenodo.org/records/123", RecordRef("https://zenodo.org", 123)),
    ("https://zenodo.org/record/123", RecordRef("https://zenodo.org", 123)),
    ("https://sandbox.zenodo.org/api/records/5", RecordRef("https://sandbox.zenodo.org", 5)),
    ("123", RecordRef("https://zenodo.org", 123)),
])
def test_refs_map_zenodo_dois_and_urls_to_records(ref, expected):
    assert parse_ref(ref) == expected


def test_refs_refuse_other_repositories():
    with pytest.raises(UsageError, match="not a Zenodo DOI"):
        parse_ref("10.1234/journal.paper.42")
    with pytest.raises(UsageError):
        parse_ref("https://example.org/some/page")


@pytest.mark.slow
def test_replay_straight_from_a_record_after_depositing_it(example_bundle, tmp_path):
    """The whole loop as two users would run it, in child processes: one deposits
    and publishes a real traced bundle, the other replays it from the record."""
    from tests.support.helpers import run_cli

    with FakeZenodo() as server:
        server.add_token(TOKEN)
        env = {"ZENODO_TOKEN": TOKEN, "XDG_STATE_HOME": str(tmp_path / "state"),
               "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
        done = run_cli("deposit", example_bundle, "--url", server.url, "--publish", "--yes",
                       "--json", env=env)
        assert done.returncode == 0, done.stderr
        record = json.loads(done.stdout)
        assert record["state"] == "published"
        replay = run_cli("replay", record["record_url"], "--mode", "directory", "--json",
                         env={"ZENODO_TOKEN": ""})
        assert replay.returncode == 0, replay.stderr + replay.stdout
        assert json.loads(replay.stdout)["reproduced"] is True
