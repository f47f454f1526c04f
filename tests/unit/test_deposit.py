"""Depositing bundles on Zenodo: the real client against a local server that answers as
Zenodo's legacy layer does today (tests/support/zenodo_server.py) over loopback — drafts,
publishing, new versions, every failure a user meets, and resuming an interrupted
deposit without a duplicate. tests/unit/test_deposit_today.py has what changed with
InvenioRDM (tokens, names, pending versions, publishing once, record links)."""

from __future__ import annotations

import json
import logging

import pytest

from tests.support.deposit_bundles import PAPER_DOI, isolate_deposit_state, make_bundle
from studypack.cli import main
from studypack.deposit.client import ZenodoClient
from studypack.deposit.errors import (DepositLimitError, NotFoundError, PublishedRecordError,
                                      RateLimitedError, ScopeError, ServerError,
                                      ValidationError)
from studypack.deposit.metadata import MetadataError, build_metadata
from studypack.deposit.state import DepositState, key_for
from studypack.deposit.token import Secret, find_token
from studypack.deposit.workflow import plan_deposit, run_deposit, write_doi
from studypack.errors import BundleError, EXIT_REMOTE, EXIT_USAGE
from tests.support.zenodo_server import ACTIONS, WRITE, FakeZenodo

TOKEN = "tok-5ecret-d0-not-print-Zq81"
CREATE = r"/api/deposit/depositions"
UPLOAD = r"/api/files/[0-9a-f-]+/.+"


@pytest.fixture
def server():
    with FakeZenodo() as fake:
        fake.add_token(TOKEN)
        yield fake


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    isolate_deposit_state(tmp_path, monkeypatch, TOKEN)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle"))


class Sleeps(list):
    """Records each wait the client asks for, and waits a hundredth of it."""

    def __call__(self, seconds: float) -> None:
        import time
        self.append(seconds)
        time.sleep(seconds / 100)


def client_for(server, token=TOKEN, sleeps=None, **kw) -> ZenodoClient:
    return ZenodoClient(server.url, Secret(token), backoff=0.01,
                        sleep=sleeps if sleeps is not None else Sleeps(), **kw)


def deposit_cli(server, bundle, *extra, capsys):
    code = main(["deposit", str(bundle), "--url", server.url, "--yes", "--json", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------- metadata (pure)

def test_metadata_is_built_from_the_study_description():
    md = build_metadata({
        "name": "s", "title": "T", "description": "a <b>\n\nsecond", "license": "CC-BY-4.0",
        "keywords": ["k"], "version": "2.0", "doi": "10.5281/zenodo.99",
        "authors": [{"name": "Doe, Jane", "orcid": "0000-0002-1694-233X", "affiliation": "U"}],
        "related_identifiers": [{"identifier": PAPER_DOI}]})
    assert md["license"] == "cc-by-4.0"
    assert md["creators"] == [{"name": "Doe, Jane", "affiliation": "U",
                               "orcid": "0000-0002-1694-233X"}]
    assert md["description"] == "<p>a &lt;b&gt;</p><p>second</p>"
    # the study's earlier DOI is linked as the version this one follows, never claimed
    assert md["related_identifiers"] == [
        {"identifier": PAPER_DOI, "relation": "isSupplementTo"},
        {"identifier": "10.5281/zenodo.99", "relation": "isNewVersionOf"}]
    assert md["upload_type"] == "dataset" and md["version"] == "2.0"
    assert "doi" not in md


def test_missing_required_metadata_names_every_key():
    with pytest.raises(MetadataError) as err:
        build_metadata({"name": "s", "title": "T", "authors": []})
    assert str(err.value) == (
        "Zenodo would refuse this bundle's study description or cite it wrongly, so nothing "
        "was sent:\n  - `description` is missing (Zenodo requires one)\n  - there is no "
        "author ([[study.authors]])")


# ---------------------------------------------------------------- happy paths

def test_deposit_leaves_a_draft_with_both_files_and_the_metadata(server, bundle, capsys):
    code, out, err = deposit_cli(server, bundle, capsys=capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["state"] == "draft" and result["doi"] is None
    dep = server.depositions[result["deposition_id"]]
    assert not dep.submitted
    assert server.count("POST", r".*/actions/publish") == 0
    assert server.stored_bytes(dep.id, bundle.name) == bundle.read_bytes()
    sidecar = bundle.with_name(bundle.name + ".sha256")
    assert server.stored_bytes(dep.id, sidecar.name) == sidecar.read_bytes()
    assert dep.metadata["title"] == "Soil carbon under cover crops"
    assert dep.metadata["creators"][0]["orcid"] == "0000-0002-1694-233X"
    assert server.cited_names(dep.id) == [("Doe", "Jane"), ("Roe", "Rick")]
    assert dep.metadata["related_identifiers"][0]["identifier"] == PAPER_DOI
    assert result["record_url"] == f"{server.url}/deposit/{dep.id}"
    assert "Soil carbon under cover crops" in err  # what is sent was shown first
    # uploads carry a Content-Length (Zenodo's bucket API needs the size up front)
    uploads = [h for h in server.headers_seen if h.get("Content-Type") ==
               "application/octet-stream"]
    assert uploads and all("Content-Length" in h for h in uploads)


def test_publish_prints_the_doi_and_writes_it_into_the_spec(server, bundle, tmp_path, capsys):
    spec = tmp_path / "studypack.toml"
    spec.write_text('# my study\n[study]\nname = "soil-carbon"  # keep me\ntitle = "T"\n\n'
                    '[run]\ncommand = ["python", "run.py"]\n')
    code = main(["deposit", str(bundle), "--url", server.url, "--yes", "--publish",
                 "--spec", str(spec)])
    out = capsys.readouterr().out
    assert code == 0
    dep = next(iter(server.depositions.values()))
    assert dep.submitted and dep.doi == f"10.5281/zenodo.{dep.id}"
    assert f"DOI: {dep.doi}" in out and f"{server.url}/records/{dep.id}" in out
    text = spec.read_text()
    assert f'doi = "{dep.doi}"' in text
    assert "# my study" in text and "# keep me" in text  # formatting kept
    import tomllib
    assert tomllib.loads(text)["run"]["command"] == ["python", "run.py"]


def test_new_version_replaces_files_keeps_curated_metadata(server, tmp_path, capsys):
    first = make_bundle(tmp_path / "v1", payload_bytes=1000)
    code, out, _ = deposit_cli(server, first, "--publish", capsys=capsys)
    v1 = json.loads(out)
    # a curator adds references on Zenodo; a new version must keep them
    server.depositions[v1["deposition_id"]].metadata["references"] = ["Doe J (2020)."]
    second = make_bundle(tmp_path / "v2", name="soil-carbon-v2", payload_bytes=1000,
                         version="2.0")
    code, out, err = deposit_cli(server, second, "--publish", "--new-version-of", v1["doi"],
                                 capsys=capsys)
    assert code == 0, err
    v2 = json.loads(out)
    assert v2["state"] == "published" and v2["doi"] != v1["doi"]
    d1, d2 = server.depositions[v1["deposition_id"]], server.depositions[v2["deposition_id"]]
    assert d1.conceptrecid == d2.conceptrecid
    assert sorted(d2.bucket.files) == [second.name, second.name + ".sha256"]
    assert sorted(d1.bucket.files) == [first.name, first.name + ".sha256"]  # v1 untouched
    assert d2.metadata["version"] == "2.0" and d2.metadata["references"] == ["Doe J (2020)."]
    assert server.count("POST", CREATE) == 1  # a version, not a second concept
    # the concept DOI leads to the latest version
    concept_doi = f"10.5281/zenodo.{d1.conceptrecid}"
    third = make_bundle(tmp_path / "v3", name="soil-carbon-v3", payload_bytes=1000,
                        version="3.0")
    code, out, _ = deposit_cli(server, third, "--publish", "--new-version-of", concept_doi,
                               capsys=capsys)
    assert code == 0 and server.depositions[json.loads(out)["deposition_id"]].conceptrecid \
        == d1.conceptrecid


# ---------------------------------------------------------------- authentication

def test_on_a_terminal_nothing_is_sent_without_a_yes(server, bundle, monkeypatch, capsys):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    code = main(["deposit", str(bundle), "--url", server.url, "--publish"])
    err = capsys.readouterr().err
    assert code == 130 and "Publish on" in err and "Nothing was sent" in err
    assert server.log == []


def test_wrong_token_is_named_as_such_and_never_printed(server, bundle, monkeypatch, capsys):
    monkeypatch.setenv("ZENODO_TOKEN", "wrong-" + TOKEN)
    code, out, err = deposit_cli(server, bundle, capsys=capsys)
    assert code == EXIT_REMOTE
    assert ('did not accept the access token (403 "Permission denied."): it is wrong, '
            "expired or revoked, or it was made on another Zenodo site.") in err
    assert "scope" not in err.split("Create a personal")[0]
    assert TOKEN not in out + err


@pytest.mark.parametrize("scopes,missing,extra", [
    ((WRITE,), ACTIONS, ["--publish"]),
    ((ACTIONS,), WRITE, []),
])
def test_missing_scope_is_named(server, bundle, monkeypatch, capsys, scopes, missing, extra):
    server.add_token("limited", scopes=scopes)
    monkeypatch.setenv("ZENODO_TOKEN", "limited")
    code, _, err = deposit_cli(server, bundle, *extra, capsys=capsys)
    assert code == EXIT_REMOTE
    assert (f'(403 "Permission denied."): the access token works on '
            f"{server.url.split('//')[1]}, so it lacks the `{missing}` scope") in err


def test_no_token_anywhere_says_how_to_provide_one(monkeypatch):
    monkeypatch.delenv("ZENODO_TOKEN")
    with pytest.raises(Exception) as err:
        find_token("https://sandbox.zenodo.org", sandbox=True)
    assert err.value.message == "No Zenodo access token was found for sandbox.zenodo.org."
    assert "Set ZENODO_SANDBOX_TOKEN, or store it with" in err.value.hint
    monkeypatch.setenv("ZENODO_SANDBOX_TOKEN", "sb")
    assert find_token("https://sandbox.zenodo.org", sandbox=True).reveal() == "sb"
    assert "sb" not in repr(find_token("https://sandbox.zenodo.org", sandbox=True))


def test_token_from_the_system_keyring(server, bundle, monkeypatch, capsys):
    import keyring
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        priority = 1
        store: dict = {}

        def get_password(self, service, username):
            return self.store.get((service, username))

        def set_password(self, service, username, password):
            self.store[(service, username)] = password

        def delete_password(self, service, username):
            self.store.pop((service, username), None)

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        monkeypatch.delenv("ZENODO_TOKEN")
        keyring.set_password("studypack-zenodo", "127.0.0.1", TOKEN)
        code, out, err = deposit_cli(server, bundle, capsys=capsys)
    finally:
        keyring.set_keyring(previous)
    assert code == 0, err
    assert json.loads(out)["state"] == "draft"


def test_upload_streams_without_holding_the_file_in_memory(server, tmp_path):
    import tracemalloc
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        for _ in range(48):
            fh.write(b"\0" * (1 << 20))
    client = client_for(server)
    draft = client.create_deposition()
    tracemalloc.start()
    try:
        sent = client.upload(draft["links"]["bucket"], big.name, big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent.size == 48 << 20
    assert peak < 12 << 20, f"peak Python memory {peak >> 20} MB for a 48 MB upload"


def test_token_never_reaches_output_logs_state_spec_or_upload(server, bundle, tmp_path,
                                                              capsys, caplog):
    caplog.set_level(logging.DEBUG)
    spec = tmp_path / "studypack.toml"
    spec.write_text('[study]\nname = "x"\n')
    server.fail("PUT", UPLOAD, 500, times=1)
    code = main(["deposit", str(bundle), "--url", server.url, "--yes", "--publish",
                 "--spec", str(spec)])
    captured = capsys.readouterr()
    assert code == 0
    state = DepositState().path.read_text()
    stored = b"".join(f.path.read_bytes() for d in server.depositions.values()
                      for f in d.bucket.files.values())
    for text in (captured.out, captured.err, caplog.text, state, spec.read_text()):
        assert TOKEN not in text
    assert TOKEN.encode() not in stored
    # it went only in the Authorization header, never in a URL
    assert all(TOKEN not in path for _, path, _ in server.log)
    assert any(h.get("Authorization") == f"Bearer {TOKEN}" for h in server.headers_seen)


# ---------------------------------------------------------------- retries

def test_rate_limit_waits_as_told_then_succeeds(server, bundle, tmp_path):
    server.fail("POST", CREATE, 429, retry_after=3)
    sleeps, told = Sleeps(), []
    plan = plan_deposit(bundle, base_url=server.url)
    result = run_deposit(plan, client=client_for(server, sleeps=sleeps),
                         state=DepositState(tmp_path / "s.json"), report=told.append)
    assert result.state == "draft"
    assert sleeps == [3.0]
    assert [p.message for p in told if p.phase == "wait"] == [
        "Zenodo asks to slow down (429); retrying in 3 seconds"]
    assert [s for m, p, s in server.log if m == "POST"] == [429, 201]


def test_rate_limit_reset_header_alone_is_honoured(server, bundle, tmp_path):
    server.fail("POST", CREATE, 429, retry_after=5, only_reset_header=True)
    sleeps = Sleeps()
    run_deposit(plan_deposit(bundle, base_url=server.url),
                client=client_for(server, sleeps=sleeps), state=DepositState(tmp_path / "s"))
    assert len(sleeps) == 1 and 3.5 <= sleeps[0] <= 6


def test_rate_limit_longer_than_the_bound_gives_up_with_the_wait(server, bundle, tmp_path):
    server.fail("POST", CREATE, 429, retry_after=3600)
    plan = plan_deposit(bundle, base_url=server.url)
    with pytest.raises(RateLimitedError) as err:
        run_deposit(plan, client=client_for(server), state=DepositState(tmp_path / "s.json"))
    assert "60 minutes" in err.value.hint
    assert server.count("POST", CREATE) == 1


def test_server_errors_and_a_dropped_upload_are_retried(server, bundle, tmp_path):
    server.fail("PUT", UPLOAD, 500, times=2)
    server.drop_upload(after_bytes=1 << 20)
    plan = plan_deposit(bundle, base_url=server.url)
    result = run_deposit(plan, client=client_for(server), state=DepositState(tmp_path / "s.json"))
    assert result.state == "draft"
    assert server.stored_bytes(result.deposition_id, bundle.name) == bundle.read_bytes()
    assert server.count("POST", CREATE) == 1


def test_damaged_upload_is_detected_by_md5_and_sent_again(server, bundle, tmp_path):
    server.corrupt_upload(times=1)
    plan = plan_deposit(bundle, base_url=server.url)
    result = run_deposit(plan, client=client_for(server), state=DepositState(tmp_path / "s.json"))
    assert server.stored_bytes(result.deposition_id, bundle.name) == bundle.read_bytes()
    assert server.count("PUT", UPLOAD) == 3  # bundle twice, sidecar once


def test_interrupted_deposit_resumes_the_same_draft(server, bundle, tmp_path, capsys):
    """The connection drops in the middle of the upload more often than the client
    retries; running the same command again finishes the same draft."""
    client = client_for(server, attempts=3)
    server.drop_upload(after_bytes=1 << 20, times=3)
    plan = plan_deposit(bundle, base_url=server.url)
    with pytest.raises(ServerError) as err:
        run_deposit(plan, client=client)
    assert "connection" in str(err.value) and "run the same command again" in err.value.hint
    assert [status for method, _, status in server.log if method == "PUT"] == [0, 0, 0]
    assert len(server.depositions) == 1
    draft_id = next(iter(server.depositions))
    assert not server.depositions[draft_id].bucket.files

    code, out, _ = deposit_cli(server, bundle, "--publish", capsys=capsys)
    assert code == 0
    result = json.loads(out)
    assert result["deposition_id"] == draft_id and result["state"] == "published"
    assert server.count("POST", CREATE) == 1  # never two drafts for one bundle
    assert server.stored_bytes(draft_id, bundle.name) == bundle.read_bytes()


def test_cancel_during_upload_stops_and_the_next_run_resumes(server, bundle, tmp_path):
    from studypack.errors import Cancelled
    from studypack.progress import CancelToken

    state, cancel = DepositState(tmp_path / "s.json"), CancelToken()

    def report(p):
        if p.phase == "upload" and p.done >= 1 << 20:
            cancel.cancel()

    plan = plan_deposit(bundle, base_url=server.url)
    with pytest.raises(Cancelled):
        run_deposit(plan, client=client_for(server), state=state, report=report, cancel=cancel)
    assert not next(iter(server.depositions.values())).bucket.files
    result = run_deposit(plan, client=client_for(server), state=state)
    assert result.resumed and server.count("POST", CREATE) == 1
    assert server.stored_bytes(result.deposition_id, bundle.name) == bundle.read_bytes()


def test_resume_does_not_upload_finished_files_again(server, bundle, tmp_path):
    state = DepositState(tmp_path / "s.json")
    server.fail("PUT", r"/api/deposit/depositions/\d+", 500, times=3)
    plan = plan_deposit(bundle, base_url=server.url)
    with pytest.raises(ServerError):
        run_deposit(plan, client=client_for(server, attempts=3), state=state)
    assert server.count("PUT", UPLOAD) == 2
    result = run_deposit(plan, client=client_for(server), state=state)
    assert result.resumed and result.skipped == [bundle.name, bundle.name + ".sha256"]
    assert server.count("PUT", UPLOAD) == 2


# ---------------------------------------------------------------- refusals

def test_metadata_refused_by_zenodo_shows_zenodo_s_own_messages(server, tmp_path, capsys):
    # an SPDX license newer than Zenodo's list passes the local check; Zenodo says why not
    odd = make_bundle(tmp_path, payload_bytes=100, license="Unlicense")
    code, _, err = deposit_cli(server, odd, capsys=capsys)
    assert code == EXIT_REMOTE
    assert "Zenodo refused to set the metadata: license: Invalid license provided: unlicense." \
        in err
    # InvenioRDM saves an incomplete draft, and refuses it when publishing, listing each
    # field with its messages
    client = client_for(server)
    draft = client.create_deposition()
    client.update_metadata(draft["id"], {"upload_type": "dataset"})
    with pytest.raises(ValidationError) as verr:
        client.action(draft["id"], "publish")
    assert {e["field"] for e in verr.value.errors} == {
        "metadata.title", "metadata.creators", "files.enabled"}
    assert verr.value.message == (
        "Zenodo refused to publish the deposition: title: Missing data for required field; "
        "creators: Missing data for required field; files.enabled: Missing uploaded files. "
        "To disable files for this record please mark it as metadata-only.")


def test_published_record_cannot_change_and_the_error_explains_new_versions(server, bundle,
                                                                            tmp_path):
    state = DepositState(tmp_path / "s.json")
    plan = plan_deposit(bundle, base_url=server.url, publish=True)
    result = run_deposit(plan, client=client_for(server), state=state)
    # the same study version made again with other bytes cannot go into that record
    again = make_bundle(tmp_path / "again", payload_bytes=1000)
    with pytest.raises(PublishedRecordError) as err:
        run_deposit(plan_deposit(again, base_url=server.url), client=client_for(server),
                    state=state)
    doi = result.doi
    assert err.value.message == (
        f"Version 1.0 of study soil-carbon is already published on "
        f"{server.url.split('//')[1]} as {doi}, with another bundle; a published record's "
        "files can never change.")
    assert f"deposit it with --new-version-of {doi}" in err.value.hint
    # and Zenodo itself refuses: its files are locked, the deposition is gone as a draft
    client = client_for(server)
    dep = client.get_deposition(result.deposition_id)
    with pytest.raises(ScopeError) as scope:
        client.upload(dep["links"]["bucket"], bundle.name, bundle)
    assert "the record is already published (its files can never change)" in str(scope.value)
    with pytest.raises(NotFoundError):
        client.update_metadata(result.deposition_id, plan.metadata)


def test_draft_published_meanwhile_on_the_website_is_reported_not_duplicated(server, bundle,
                                                                             capsys):
    code, out, _ = deposit_cli(server, bundle, capsys=capsys)
    draft_id = json.loads(out)["deposition_id"]
    server.publish_directly(draft_id)
    code, out, _ = deposit_cli(server, bundle, "--publish", capsys=capsys)
    assert code == 0
    result = json.loads(out)
    assert result == {"deposition_id": draft_id, "doi": f"10.5281/zenodo.{draft_id}",
                      "record_url": f"{server.url}/records/{draft_id}", "state": "published"}
    assert server.count("POST", CREATE) == 1


def test_bundle_over_zenodo_limit_is_refused_before_any_upload(server, tmp_path, capsys):
    big = tmp_path / "huge.studypack"
    with open(big, "wb") as fh:   # sparse: 51 GB on paper, nothing on disk
        fh.truncate(51 * 10**9)
    big.with_name(big.name + ".sha256").write_text("0" * 64 + "  huge.studypack\n")
    with pytest.raises(DepositLimitError):
        plan_deposit(big, base_url=server.url, study={})
    code, _, err = deposit_cli(server, big, capsys=capsys)
    assert code == EXIT_USAGE and "50.0 GB" in err
    assert server.log == []


def test_bundle_changed_after_its_sidecar_is_refused(server, tmp_path):
    bundle = make_bundle(tmp_path, payload_bytes=1000)
    sidecar = bundle.with_name(bundle.name + ".sha256")
    sidecar.write_text("f" * 64 + f"  {bundle.name}\n")
    plan = plan_deposit(bundle, base_url=server.url)
    state = DepositState(tmp_path / "s.json")
    with pytest.raises(BundleError, match="does not match its .sha256"):
        run_deposit(plan, client=client_for(server), state=state)
    assert server.depositions == {}  # no orphan draft is left behind
    assert state.get(key_for(server.url, "soil-carbon", "1.0")) is None


def test_sandbox_doi_is_refused_for_a_production_deposit(bundle):
    with pytest.raises(Exception, match="sandbox"):
        plan_deposit(bundle, new_version_of="10.5072/zenodo.5")


def test_doi_write_back_adds_study_table_and_keeps_comments(tmp_path):
    spec = tmp_path / "studypack.toml"
    spec.write_text("# top\n[run]\ncommand = ['x']\n")
    write_doi(spec, "10.5281/zenodo.7")
    assert spec.read_text().startswith("# top\n")
    import tomllib
    assert tomllib.loads(spec.read_text())["study"]["doi"] == "10.5281/zenodo.7"
