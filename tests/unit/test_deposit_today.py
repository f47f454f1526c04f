"""Depositing on Zenodo as it answers since InvenioRDM: the real client against local
servers answering as zenodo-rdm's legacy layer does (tests/support/zenodo_server.py) —
names cited right, tokens refused with the true reason (two local servers play
production and sandbox), Zenodo's own validation messages, metadata checked before any
byte, drafts reused per study version, pending new versions, publishing once, and the
links the bundle knows. Each refusal checks its sentence."""

from __future__ import annotations

import json

import pytest

from studypack.cli import main
from studypack.deposit.client import ZenodoClient
from studypack.deposit.errors import (AuthError, PendingVersionError, ServerError,
                                      ValidationError)
from studypack.deposit.metadata import MetadataError
from studypack.deposit.state import DepositState
from studypack.deposit.token import Secret
from studypack.deposit.workflow import plan_deposit, run_deposit
from studypack.errors import EXIT_REMOTE, EXIT_USAGE
from tests.support.deposit_bundles import PAPER_DOI, isolate_deposit_state, make_bundle
from tests.support.zenodo_server import FakeZenodo

TOKEN = "today-t0ken-not-to-print"
SANDBOX_TOKEN = "sandbox-t0ken-not-to-print"
PUBLISH = r"/api/deposit/depositions/\d+/actions/publish"
NEWVERSION = r"/api/deposit/depositions/\d+/actions/newversion"
GIT = {"remote": "git@github.com:soil-lab/cover-crops.git", "commit": "0123abcd" * 5,
       "dirty": False, "branch": "main"}


@pytest.fixture
def server():
    with FakeZenodo() as fake:
        fake.add_token(TOKEN)
        yield fake


@pytest.fixture
def sandbox():
    with FakeZenodo(doi_prefix="10.5072", first_id=5000) as fake:
        fake.add_token(SANDBOX_TOKEN)
        yield fake


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    isolate_deposit_state(tmp_path, monkeypatch, TOKEN)


def client_for(server, token=TOKEN, **kw) -> ZenodoClient:
    return ZenodoClient(server.url, Secret(token), backoff=0.01, sleep=lambda s: None, **kw)


def deposit(server, bundle, *extra, capsys):
    code = main(["deposit", str(bundle), "--url", server.url, "--yes", "--json", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def host(server) -> str:
    return server.url.split("//")[1]


# ---------------------------------------------------------------- names

def test_zenodo_splits_a_name_only_on_one_comma(server):
    """What the issue is about: the server stores "Ada Lovelace" as a family name."""
    client = client_for(server)
    dep = client.create_deposition({"creators": [{"name": "Ada Lovelace"},
                                                 {"name": "Lovelace, Ada"}]})
    assert server.cited_names(dep["id"]) == [("Ada Lovelace", ""), ("Lovelace", "Ada")]
    assert [c["name"] for c in dep["metadata"]["creators"]] == ["Ada Lovelace", "Lovelace, Ada"]


def test_given_and_family_names_reach_zenodo_as_family_comma_given(server, tmp_path, capsys):
    from studypack.spec import Author
    bundle = make_bundle(tmp_path, payload_bytes=1000, authors=[
        Author(given="Ada", family="Lovelace", orcid="0000-0002-1825-0097"),
        Author(name="van der Berg, Anna Maria"), Author(family="Plato")])
    code, out, err = deposit(server, bundle, capsys=capsys)
    assert code == 0, err
    dep_id = json.loads(out)["deposition_id"]
    assert server.cited_names(dep_id) == [("Lovelace", "Ada"), ("van der Berg", "Anna Maria"),
                                          ("Plato", "")]


def test_a_name_that_cannot_be_split_is_asked_about_before_anything_is_sent(server, tmp_path,
                                                                          capsys):
    from studypack.spec import Author
    bundle = make_bundle(tmp_path, payload_bytes=1000, authors=[Author(name="Ada Lovelace")])
    code, _, err = deposit(server, bundle, capsys=capsys)
    assert code == EXIT_USAGE
    assert ("the author name 'Ada Lovelace' does not say which part is the family name; "
            "Zenodo would cite all of it as a family name. Write it as given = \"Ada\" and "
            "family = \"Lovelace\" (or name = \"Lovelace, Ada\")") in " ".join(err.split())
    assert server.log == []


# ---------------------------------------------------------------- tokens

def test_a_token_of_the_other_site_is_named_as_such(server, sandbox, tmp_path):
    """Production refuses a sandbox token; the sandbox (a second local server) takes it,
    so the error says where the token belongs."""
    bundle = make_bundle(tmp_path, payload_bytes=1000)
    plan = plan_deposit(bundle, base_url=server.url, other_site=sandbox.url)
    with pytest.raises(AuthError) as err:
        run_deposit(plan, Secret(SANDBOX_TOKEN), state=DepositState(tmp_path / "s.json"))
    assert err.value.message == (
        f'Zenodo ({host(server)}) did not accept the access token (403 "Permission '
        f'denied."): it is a token for {host(sandbox)}, which works there but not here.')
    assert server.depositions == {} and sandbox.depositions == {}
    assert sandbox.count("GET", r"/api/deposit/depositions") == 1  # only asked, nothing made


def test_a_token_no_site_takes_is_called_wrong_or_expired(server, sandbox, tmp_path):
    plan = plan_deposit(make_bundle(tmp_path, payload_bytes=1000), base_url=server.url,
                        other_site=sandbox.url)
    with pytest.raises(AuthError) as err:
        run_deposit(plan, Secret("expired-token"), state=DepositState(tmp_path / "s.json"))
    assert err.value.message == (
        f'Zenodo ({host(server)}) did not accept the access token (403 "Permission '
        f'denied."): it is wrong, expired or revoked; {host(sandbox)} does not take it '
        "either.")


def test_when_the_other_site_cannot_be_asked_the_error_says_so(server, tmp_path):
    import socket
    with socket.socket() as probe:   # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    plan = plan_deposit(make_bundle(tmp_path, payload_bytes=1000), base_url=server.url,
                        other_site=closed)
    with pytest.raises(AuthError) as err:
        run_deposit(plan, client=client_for(server, token="expired-token", other_site=closed),
                    state=DepositState(tmp_path / "s.json"))
    assert err.value.message == (
        f'Zenodo ({host(server)}) did not accept the access token (403 "Permission '
        f'denied."): it is wrong, expired or revoked, or it was made on {closed[7:]}, which '
        "could not be asked.")


def test_sandbox_never_falls_back_to_the_production_token(tmp_path, capsys, monkeypatch):
    bundle = make_bundle(tmp_path, payload_bytes=1000)
    monkeypatch.setattr("studypack.deposit.client.ZenodoClient.request",
                        lambda *a, **k: pytest.fail("nothing may be sent"))
    code = main(["deposit", str(bundle), "--sandbox", "--yes"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == EXIT_USAGE
    assert ("No Zenodo access token was found for sandbox.zenodo.org. ZENODO_TOKEN is set, "
            "but it holds a token for zenodo.org, which sandbox.zenodo.org does not "
            "accept.") in err
    assert TOKEN not in err


# ---------------------------------------------------------------- metadata checked first

def test_metadata_zenodo_would_refuse_is_found_before_any_byte_is_sent(server, tmp_path, capsys):
    from studypack.spec import Author
    bundle = make_bundle(
        tmp_path, payload_bytes=1000, license="Not-A-License", publication_date="2024-13-01",
        authors=[Author("Doe, Jane", "0000-0002-1694-2330")],
        related=[{"identifier": PAPER_DOI, "relation": "supplements"}])
    code, _, err = deposit(server, bundle, capsys=capsys)
    assert code == EXIT_USAGE and server.log == []
    text = " ".join(err.split())
    for sentence in ("'0000-0002-1694-2330' (Jane Doe) is not a valid ORCID iD",
                     "the license 'Not-A-License' is not an SPDX license id",
                     f"'supplements' (for {PAPER_DOI}) is not a DataCite relation type",
                     "the publication date '2024-13-01' is not a real date written YYYY-MM-DD"):
        assert sentence in text


# ---------------------------------------------------------------- drafts per study version

def test_a_metadata_fix_goes_into_the_same_draft(server, tmp_path, capsys):
    """Fix the study description, make the bundle again, deposit again: the draft of that
    study version is reused, its file replaced — no orphan left holding the old one."""
    first = make_bundle(tmp_path / "a", payload_bytes=5000, title="Soil carbon (typo")
    code, out, _ = deposit(server, first, capsys=capsys)
    draft_id = json.loads(out)["deposition_id"]
    fixed = make_bundle(tmp_path / "b", payload_bytes=5000, title="Soil carbon under cover crops")
    code, out, err = deposit(server, fixed, capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["deposition_id"] == draft_id
    assert list(server.depositions) == [draft_id]
    assert server.count("POST", r"/api/deposit/depositions") == 1
    dep = server.depositions[draft_id]
    assert server.stored_bytes(draft_id, fixed.name) == fixed.read_bytes()
    assert sorted(dep.bucket.files) == [fixed.name, fixed.name + ".sha256"]
    assert dep.metadata["title"] == "Soil carbon under cover crops"


# ---------------------------------------------------------------- pending new versions

@pytest.fixture
def published_v1(server, tmp_path):
    bundle = make_bundle(tmp_path / "v1", payload_bytes=2000)
    result = run_deposit(plan_deposit(bundle, base_url=server.url, publish=True),
                         client=client_for(server), state=DepositState(tmp_path / "v1.json"))
    return result


def test_newversion_is_refused_while_a_version_with_files_is_pending(server, published_v1):
    server.open_new_version(published_v1.deposition_id)   # on the website: files copied in
    with pytest.raises(ValidationError) as err:
        client_for(server).action(published_v1.deposition_id, "newversion")
    assert err.value.message == ("Zenodo refused to create a new version: files.enabled: "
                                 "Please remove all files first.")


def test_a_pending_version_holding_only_copies_is_found_and_reused(server, published_v1,
                                                                   tmp_path, capsys):
    pending = server.open_new_version(published_v1.deposition_id)
    v2 = make_bundle(tmp_path / "v2", payload_bytes=2000, version="2.0")
    code, out, err = deposit(server, v2, "--publish", "--new-version-of", published_v1.doi,
                             capsys=capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["deposition_id"] == pending.id and result["state"] == "published"
    assert server.count("POST", NEWVERSION) == 0
    assert sorted(server.depositions[pending.id].bucket.files) == [v2.name, v2.name + ".sha256"]


def test_a_pending_version_with_other_files_is_refused_then_discarded_with_consent(
        server, published_v1, tmp_path, capsys):
    pending = server.open_new_version(published_v1.deposition_id)
    server.add_draft_file(pending.id, "notes.txt", b"added on the website")
    v2 = make_bundle(tmp_path / "v2", payload_bytes=2000, version="2.0")
    code, _, err = deposit(server, v2, "--new-version-of", published_v1.doi, capsys=capsys)
    assert code == EXIT_REMOTE
    assert (f"Record {published_v1.deposition_id} already has a new version being edited "
            f"(draft {pending.id}, opened ") in " ".join(err.split())
    assert ("that holds files not in the published version: notes.txt. Reusing it would "
            "delete them, so nothing was changed.") in " ".join(err.split())
    assert "notes.txt" in server.depositions[pending.id].bucket.files

    code, out, err = deposit(server, v2, "--new-version-of", published_v1.doi,
                             "--discard-pending", capsys=capsys)
    assert code == 0, err
    new_id = json.loads(out)["deposition_id"]
    assert pending.id not in server.depositions and new_id != pending.id
    assert sorted(server.depositions[new_id].bucket.files) == [v2.name, v2.name + ".sha256"]


def test_a_pending_version_that_cannot_be_found_is_explained(server, published_v1, tmp_path):
    """Zenodo's search index can lag behind: the listing misses the pending draft, and
    Zenodo's own refusal is turned into what to do."""
    pending = server.open_new_version(published_v1.deposition_id)
    server.unlisted.add(pending.id)
    v2 = make_bundle(tmp_path / "v2", payload_bytes=2000, version="2.0")
    plan = plan_deposit(v2, base_url=server.url, new_version_of=str(published_v1.deposition_id))
    with pytest.raises(PendingVersionError) as err:
        run_deposit(plan, client=client_for(server), state=DepositState(tmp_path / "s.json"))
    assert err.value.message == (
        f"Zenodo refused to open a new version of record {published_v1.deposition_id}: one is "
        "already pending and holds files, and it is not among the depositions studypack can "
        "list (Zenodo says: \"Please remove all files first.\").")
    assert pending.id in server.depositions


def test_a_draft_begun_as_a_separate_record_makes_way_for_the_new_version(
        server, published_v1, tmp_path, capsys):
    v2 = make_bundle(tmp_path / "v2", payload_bytes=2000, version="2.0")
    code, out, _ = deposit(server, v2, capsys=capsys)       # forgot --new-version-of
    separate = json.loads(out)["deposition_id"]
    assert server.depositions[separate].conceptrecid != \
        server.depositions[published_v1.deposition_id].conceptrecid
    code = main(["deposit", str(v2), "--url", server.url, "--yes", "--new-version-of",
                 published_v1.doi])
    out = capsys.readouterr().out
    assert code == 0
    assert (f"Deleted draft {separate}, which studypack had begun as a separate record; "
            f"this bundle goes into a new version of {published_v1.doi}.") in " ".join(out.split())
    assert separate not in server.depositions
    [draft] = [d for d in server.depositions.values() if not d.submitted]
    assert draft.conceptrecid == server.depositions[published_v1.deposition_id].conceptrecid


def test_a_concept_doi_resolves_through_versions_latest(server, published_v1, tmp_path):
    v2 = make_bundle(tmp_path / "v2", payload_bytes=2000, version="2.0")
    result = run_deposit(plan_deposit(v2, base_url=server.url, publish=True,
                                      new_version_of=published_v1.concept_doi),
                         client=client_for(server), state=DepositState(tmp_path / "s.json"))
    assert server.count("GET", r"/api/records/\d+/versions/latest") == 1
    assert server.depositions[result.deposition_id].conceptrecid == \
        server.depositions[published_v1.deposition_id].conceptrecid


# ---------------------------------------------------------------- publishing once

def test_a_publish_answered_504_is_read_back_not_repeated(server, tmp_path):
    server.fail("POST", PUBLISH, 504, after_handling=True)   # published, then timed out
    plan = plan_deposit(make_bundle(tmp_path, payload_bytes=1000), base_url=server.url,
                        publish=True)
    result = run_deposit(plan, client=client_for(server), state=DepositState(tmp_path / "s"))
    assert result.state == "published" and result.doi
    assert server.count("POST", PUBLISH) == 1


def test_a_publish_that_failed_says_so_and_the_next_run_publishes(server, tmp_path):
    server.fail("POST", PUBLISH, 502)
    state = DepositState(tmp_path / "s.json")
    plan = plan_deposit(make_bundle(tmp_path, payload_bytes=1000), base_url=server.url,
                        publish=True)
    with pytest.raises(ServerError) as err:
        run_deposit(plan, client=client_for(server), state=state)
    dep_id = next(iter(server.depositions))
    assert err.value.message == (
        "Zenodo had a server error (502) while trying to publish the deposition. Deposition "
        f"{dep_id} is still a draft afterwards, so it was not published; studypack does not "
        "publish blindly again.")
    assert server.count("POST", PUBLISH) == 1
    result = run_deposit(plan, client=client_for(server), state=state)
    assert result.state == "published" and result.deposition_id == dep_id
    assert server.count("POST", PUBLISH) == 2


# ---------------------------------------------------------------- links and settings

def test_the_record_links_the_paper_the_earlier_version_and_the_code(server, tmp_path, capsys):
    bundle = make_bundle(tmp_path, payload_bytes=1000, git=GIT, doi="10.5281/zenodo.41",
                         upload_type="software", communities=["soil-lab"])
    code, out, err = deposit(server, bundle, "--publish", capsys=capsys)
    assert code == 0, err
    assert ("The code repository is linked as isSupplementTo: https://github.com/soil-lab/"
            f"cover-crops/tree/{GIT['commit']}") in " ".join(err.split())
    dep = server.depositions[json.loads(out)["deposition_id"]]
    assert dep.metadata["related_identifiers"] == [
        {"identifier": PAPER_DOI, "relation": "isSupplementTo"},
        {"identifier": "10.5281/zenodo.41", "relation": "isNewVersionOf"},
        {"identifier": f"https://github.com/soil-lab/cover-crops/tree/{GIT['commit']}",
         "relation": "isSupplementTo", "resource_type": "software"}]
    assert dep.metadata["upload_type"] == "software" and dep.communities == ["soil-lab"]


@pytest.mark.parametrize("git,expected", [
    ({**GIT, "dirty": True},
     {"identifier": f"https://github.com/soil-lab/cover-crops/tree/{GIT['commit']}",
      "relation": "isDerivedFrom", "resource_type": "software"}),
    ({"remote": "https://git.example.org/lab/study.git", "commit": "abc1234", "dirty": False},
     {"identifier": "https://git.example.org/lab/study", "relation": "isSupplementTo",
      "resource_type": "software"}),
    ({"remote": "/home/me/study", "commit": "abc1234", "dirty": False}, None),
])
def test_code_link_relation_follows_what_the_bundle_holds(git, expected):
    from studypack.deposit.metadata import code_link
    assert code_link(git) == expected


def test_fetch_and_replay_take_the_site_like_deposit(capsys):
    code = main(["fetch", "10.5281/zenodo.5", "--sandbox"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == EXIT_USAGE
    assert ("10.5281/zenodo.5 is a record on https://zenodo.org, not on "
            "https://sandbox.zenodo.org.") in err
    with pytest.raises(SystemExit) as exit_:   # one site at a time, as for deposit
        main(["replay", "10.5072/zenodo.5", "--url", "http://127.0.0.1:9", "--sandbox"])
    assert exit_.value.code == EXIT_USAGE
    assert "argument --sandbox: not allowed with argument --url" in capsys.readouterr().err


def test_replay_fetches_a_record_number_from_the_given_server(server, published_v1, tmp_path,
                                                             capsys):
    """`replay N --url` reaches the record on that server (the replay itself is the
    replay tests' business: this bundle has no run to replay, which it says)."""
    code = main(["replay", str(published_v1.deposition_id), "--url", server.url, "--json"])
    capsys.readouterr()
    assert server.count("GET", rf"/api/records/{published_v1.deposition_id}/files/.+") == 2
    assert code != 0


def test_metadata_error_lists_every_problem_once():
    from studypack.deposit.metadata import build_metadata
    with pytest.raises(MetadataError) as err:
        build_metadata({"title": "T", "description": "d", "authors": [{"name": "Plato"}],
                        "communities": ["Soil Lab"], "upload_type": "publication"})
    text = str(err.value)
    assert text.count("  - ") == 3
    assert "'Soil Lab' is not a Zenodo community id" in text
    assert "`upload_type = \"publication\"` is not one studypack can send" in text
