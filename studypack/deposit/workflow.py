"""Deposit a bundle on Zenodo: plan first (no network), then run.

:func:`plan_deposit` reads the bundle's metadata, checks Zenodo's limits and every field
Zenodo would refuse or store wrongly, and builds the metadata to send — the caller shows
it and asks before anything leaves the machine. :func:`run_deposit` creates (or finds
again) the draft, streams the bundle and its ``.sha256`` sidecar into the bucket, checks
Zenodo's md5 of each, sets the metadata and, if asked, publishes — once: after a server
error it reads the deposition back rather than publishing again. The draft is saved as
soon as it exists, keyed by the study's name and version, so running the command again —
after any failure, or with a bundle made again after a metadata fix — uses that draft
instead of leaving it behind.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import BundleError, UsageError
from ..fsutil import utc_now_iso
from ..hashing import sha256_file
from ..progress import CancelToken, Progress, Reporter, reporter, token as cancel_token
from .client import ZenodoClient
from .drafts import open_version_draft
from .errors import DepositLimitError, NotFoundError, PublishedRecordError, ServerError
from .metadata import build_metadata, code_link, merge_for_new_version
from .refs import SANDBOX, ZENODO, implied_site, other_site_of, parse_ref
from .state import DepositState, key_for
from .token import Secret

# Zenodo's published per-record limits (https://help.zenodo.org, "File size limits").
MAX_RECORD_BYTES = 50 * 10**9
MAX_FILES = 100
_SHA256_LINE = re.compile(r"^([0-9a-fA-F]{64})\s")
PUBLISH_READ_BACKS = 3


@dataclass
class PlannedFile:
    name: str
    path: Path
    size: int
    sha256: str = ""


@dataclass
class DepositPlan:
    bundle: Path
    sidecar: Path
    sha256: str
    files: list[PlannedFile]
    metadata: dict
    base_url: str
    publish: bool = False
    new_version_of: str | None = None
    notes: list[str] = field(default_factory=list)
    study_name: str = ""
    version: str = ""
    discard_pending: bool = False
    other_site: str | None = None   # where a refused token may belong (asked to explain)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass
class DepositResult:
    deposition_id: int
    doi: str | None
    record_url: str
    state: str                      # "draft" | "published"
    concept_doi: str | None = None
    resumed: bool = False
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"deposition_id": self.deposition_id, "doi": self.doi,
                "record_url": self.record_url, "state": self.state}


def read_sidecar(sidecar: Path) -> str:
    try:
        first = sidecar.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except FileNotFoundError:
        raise UsageError(f"{sidecar.name} is missing beside the bundle.",
                         "studypack create writes it; it lets anyone check the download "
                         "with `sha256sum -c`.") from None
    m = _SHA256_LINE.match((first[0] + " ") if first else "")
    if not m:
        raise BundleError(f"{sidecar} is not a sha256sum line.",
                          "Run `studypack verify` on the bundle.")
    return m.group(1).lower()


def bundle_facts(bundle: Path) -> tuple[dict, object, dict | None]:
    """(study description, format version, git facts of the first run that has them)."""
    from ..bundle.reader import read_info  # the reader is only needed when planning
    info = read_info(bundle)
    meta = info.metadata or {}
    version = meta.get("format_version") or getattr(info, "format_version", None)
    git = next((r.get("git") for r in meta.get("runs") or []
                if isinstance(r, dict) and isinstance(r.get("git"), dict)), None)
    return dict(meta.get("study") or {}), version, git


def check_limits(files: list[PlannedFile]) -> None:
    total = sum(f.size for f in files)
    if total > MAX_RECORD_BYTES:
        from ..fsutil import human_size
        raise DepositLimitError(
            f"The bundle and its checksum file take {human_size(total)}, over Zenodo's limit "
            f"of {human_size(MAX_RECORD_BYTES)} per record; nothing was uploaded.",
            "Keep large input data outside the bundle by reference ([[data.references]] "
            "in studypack.toml: URL, size, sha256) and create it again, or ask Zenodo "
            "support for a larger quota.")
    if len(files) > MAX_FILES:
        raise DepositLimitError(f"{len(files)} files are over Zenodo's limit of {MAX_FILES} "
                                "per record; nothing was uploaded.")


def plan_deposit(bundle: str | Path, *, base_url: str = ZENODO, publish: bool = False,
                 new_version_of: str | None = None, study: dict | None = None,
                 git: dict | None = None, discard_pending: bool = False,
                 other_site: str | None = None) -> DepositPlan:
    """Everything :func:`run_deposit` will do, computed without touching the network."""
    bundle = Path(bundle)
    if not bundle.is_file():
        raise UsageError(f"{bundle} does not exist or is not a file.")
    sidecar = bundle.with_name(bundle.name + ".sha256")
    sha256 = read_sidecar(sidecar)
    files = [PlannedFile(bundle.name, bundle, bundle.stat().st_size, sha256),
             PlannedFile(sidecar.name, sidecar, sidecar.stat().st_size, sha256_file(sidecar))]
    check_limits(files)
    format_version = None
    if study is None:
        study, format_version, git = bundle_facts(bundle)
    metadata = build_metadata(study, format_version=format_version, git=git)
    base_url = base_url.rstrip("/")
    notes = []
    if new_version_of:
        ref = parse_ref(new_version_of, base_url)
        implied = implied_site(new_version_of)
        if implied and base_url in (ZENODO, SANDBOX) and implied != base_url:
            raise UsageError(f"{new_version_of} is a record on {implied}, but this deposit "
                             f"goes to {base_url}.",
                             "Use --sandbox for sandbox DOIs (10.5072/…), or leave it out.")
        notes.append(f"A new version of record {ref.record_id}: its files are replaced by "
                     "this bundle; its other metadata is kept unless the bundle changes it.")
        if discard_pending:
            notes.append("A new version of it already pending on Zenodo is discarded first "
                         "(--discard-pending).")
    elif study.get("doi"):
        notes.append(f"This study already has the DOI {study['doi']}. This deposit makes a "
                     f"separate record, linked to it as a newer version; to add a version "
                     f"to that record instead, use --new-version-of {study['doi']}.")
    link = code_link(git)
    if link:
        notes.append(f"The code repository is linked as {link['relation']}: "
                     f"{link['identifier']}.")
    if study.get("communities"):
        notes.append("Once published, it is submitted to the communities: "
                     f"{', '.join(map(str, study['communities']))}.")
    notes.append("It will be published (a DOI is minted; files can never change afterwards)."
                 if publish else "It stays a draft: review it on Zenodo, then publish "
                                 "(or run again with --publish).")
    return DepositPlan(bundle, sidecar, sha256, files, metadata, base_url, publish,
                       new_version_of, notes, study_name=str(study.get("name") or bundle.stem),
                       version=str(study.get("version") or ""), discard_pending=discard_pending,
                       other_site=other_site if other_site is not None else other_site_of(base_url))


def run_deposit(plan: DepositPlan, token: Secret | None = None, *, report: Reporter | None = None,
                cancel: CancelToken | None = None, client: ZenodoClient | None = None,
                state: DepositState | None = None) -> DepositResult:
    report, cancel = reporter(report), cancel_token(cancel)
    client = client or ZenodoClient(plan.base_url, token, other_site=plan.other_site)
    client.report = report
    state = state or DepositState()
    key = key_for(plan.base_url, plan.study_name, plan.version)
    entry = state.get(key)
    dep, resumed, created_now, notes = None, False, False, []

    if entry:
        try:
            dep = client.get_deposition(entry["deposition_id"], cancel=cancel)
            resumed = True
        except NotFoundError:  # the draft was deleted on Zenodo: start over
            state.remove(key)
            entry = None
    if dep is not None and dep.get("submitted") and dep.get("state") != "inprogress":
        return _already_published(plan, dep, entry, state, key)
    if dep is not None and plan.new_version_of and not entry.get("new_version_of"):
        # studypack's own draft, begun as a separate record: it cannot become a version
        client.delete_deposition(dep["id"], cancel=cancel)
        state.remove(key)
        notes.append(f"Deleted draft {dep['id']}, which studypack had begun as a separate "
                     f"record; this bundle goes into a new version of {plan.new_version_of}.")
        dep, entry, resumed = None, None, False

    if dep is None:
        cancel.check()
        if plan.new_version_of:
            report(Progress("deposit", message=f"Creating a new version of {plan.new_version_of}"))
            dep, opened = open_version_draft(
                client, plan.new_version_of, plan.base_url, ours=state.deposition_ids(
                    plan.base_url), discard_pending=plan.discard_pending, report=report,
                cancel=cancel)
            notes += opened
        else:
            report(Progress("deposit", message="Creating the deposition"))
            dep = client.create_deposition(cancel=cancel)
            created_now = True
        entry = {"deposition_id": dep["id"], "bundle": str(plan.bundle.resolve()),
                 "created": utc_now_iso(), "new_version_of": plan.new_version_of,
                 "files": {}, "published": False}
        state.put(key, entry)
    else:
        report(Progress("deposit", message=f"Resuming draft {dep['id']}"))

    uploaded, skipped = _send_files(client, plan, dep, entry, state, key, created_now,
                                    report, cancel)
    cancel.check()
    report(Progress("deposit", message="Setting the metadata"))
    metadata = plan.metadata
    if plan.new_version_of or entry.get("new_version_of"):  # also when resumed without it
        metadata = merge_for_new_version(dep.get("metadata") or {}, metadata)
    dep = client.update_metadata(dep["id"], metadata, cancel=cancel)

    if plan.publish:
        cancel.check()
        report(Progress("deposit", message="Publishing"))
        dep = _publish_once(client, dep, report, cancel)
        state.update(key, published=True, doi=dep.get("doi"))
    result = _result(dep, resumed)
    result.uploaded, result.skipped, result.notes = uploaded, skipped, notes
    return result


def _send_files(client: ZenodoClient, plan: DepositPlan, dep: dict, entry: dict, state, key,
                created_now: bool, report, cancel) -> tuple[list[str], list[str]]:
    """Make the draft hold exactly the planned files; send only what is not there yet.
    A file is kept only if it is the one studypack sent (md5) of these very bytes (sha256)."""
    dep_id = dep["id"]
    sent: dict = dict(entry.get("files") or {})
    present = {f["filename"]: f for f in dep.get("files") or []}
    planned = {f.name: f for f in plan.files}

    def ours(name: str) -> bool:
        mine, there = sent.get(name) or {}, present.get(name) or {}
        return (name in planned and mine.get("sha256") == planned[name].sha256
                and mine.get("md5") == there.get("checksum"))

    # Anything else goes: the previous version's files, an older bundle, a damaged upload.
    for name, f in present.items():
        if not ours(name):
            cancel.check()
            client.delete_deposition_file(dep_id, f["id"], cancel=cancel)
            sent.pop(name, None)
    state.update(key, files=sent)
    uploaded, skipped = [], []
    bucket = dep["links"]["bucket"]
    for item in plan.files:
        if item.name in present and ours(item.name):
            skipped.append(item.name)
            continue
        transfer = client.upload(bucket, item.name, item.path, report=report, cancel=cancel)
        if transfer.sha256 != item.sha256:
            _drop_damaged(client, plan, dep_id, bucket, item.name, created_now, state, key,
                          cancel)
        sent[item.name] = {"md5": transfer.md5, "sha256": transfer.sha256}
        state.update(key, files=sent)
        uploaded.append(item.name)
    return uploaded, skipped


def _drop_damaged(client, plan, dep_id, bucket, name, created_now, state, key, cancel):
    """The bytes sent are not the ones the sidecar vouches for: take them back out, so a
    corrected bundle does not find a wrong file (or an orphan draft) behind it."""
    if created_now:
        client.delete_deposition(dep_id, cancel=cancel)
        state.remove(key)
        where = "Its draft on Zenodo was removed."
    else:
        client.delete_bucket_file(bucket, name, cancel=cancel)
        where = f"It was taken out of draft {dep_id} again."
    raise BundleError(f"{plan.bundle.name} does not match its .sha256 sidecar: it is damaged "
                      f"or was changed after it was made. {where}",
                      "Run `studypack verify` on it.")


def _publish_once(client: ZenodoClient, dep: dict, report, cancel) -> dict:
    """Publish, never twice: publishing cannot be undone, and a 5xx or a broken
    connection may come after Zenodo did publish. So read the deposition back, and only
    say "not published" when it is still a draft."""
    try:
        return client.action(dep["id"], "publish", cancel=cancel)
    except ServerError as exc:
        if not exc.uncertain:
            raise
        failure = exc
    for attempt in range(1, PUBLISH_READ_BACKS + 1):
        client._wait(client._backoff(attempt), cancel,
                     f"{failure.message} Reading deposition {dep['id']} back")
        now = client.get_deposition(dep["id"], cancel=cancel)
        if now.get("submitted"):
            report(Progress("deposit", message="Zenodo published it after all"))
            return now
    raise ServerError(
        f"{failure.message} Deposition {dep['id']} is still a draft afterwards, so it was "
        "not published; studypack does not publish blindly again.",
        f"Check {(dep.get('links') or {}).get('html') or client.base_url}, then run the same "
        "command again to publish it: the draft and its files are reused.",
        status=failure.status)


def _already_published(plan: DepositPlan, dep: dict, entry: dict, state, key) -> DepositResult:
    """The draft kept for this study version was published (by us or on the website)."""
    sent = ((entry or {}).get("files") or {}).get(plan.bundle.name) or {}
    files = {f["filename"]: f.get("checksum") for f in dep.get("files") or []}
    if sent.get("sha256") == plan.sha256 and files.get(plan.bundle.name) == sent.get("md5"):
        state.update(key, published=True, doi=dep.get("doi"))
        return _result(dep, resumed=True)
    which = f"Version {plan.version} of" if plan.version else "The unversioned"
    doi = dep.get("doi") or f"deposition {dep['id']}"
    raise PublishedRecordError(
        f"{which} study {plan.study_name} is already published on "
        f"{urlsplit(plan.base_url).netloc} as {doi}, with another bundle; a published "
        "record's files can never change.",
        f"Give the study a new version (version = \"…\" in [study] of studypack.toml), "
        f"create the bundle again, and deposit it with --new-version-of {doi}.")


def _result(dep: dict, resumed: bool) -> DepositResult:
    links = dep.get("links") or {}
    published = bool(dep.get("submitted")) and dep.get("state") == "done"
    url = (dep.get("record_url") or links.get("record_html") or links.get("html", "")) \
        if published else links.get("html", "")
    return DepositResult(
        deposition_id=int(dep["id"]), doi=dep.get("doi") if published else None,
        record_url=url, state="published" if published else "draft",
        concept_doi=dep.get("conceptdoi"), resumed=resumed)


def _spec_document(spec_path: str | Path):
    import tomlkit

    path = Path(spec_path)
    if path.is_dir():
        path = path / "studypack.toml"
    try:
        return path, tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist.", "Give the study's studypack.toml.") \
            from None
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror}.") from None
    except (tomlkit.exceptions.ParseError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid TOML ({exc}).") from None


def check_spec_writable(spec_path: str | Path) -> Path:
    """Before anything is sent: the DOI must be writable into this spec afterwards."""
    import os

    path, _ = _spec_document(spec_path)
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise UsageError(f"No permission to write {path}, where the DOI would be recorded.")
    return path


def write_doi(spec_path: str | Path, doi: str) -> None:
    """Record ``doi`` as ``[study] doi`` in studypack.toml, keeping its formatting."""
    import tomlkit

    from ..fsutil import atomic_write_text

    path, doc = _spec_document(spec_path)
    if "study" not in doc:
        doc["study"] = tomlkit.table()
    doc["study"]["doi"] = doi
    atomic_write_text(path, tomlkit.dumps(doc))


def plan_as_dict(plan: DepositPlan) -> dict:
    """The plan in plain JSON types (for ``--json`` and the GUI)."""
    return {"target": plan.base_url, "publish": plan.publish,
            "new_version_of": plan.new_version_of,
            "files": [{**asdict(f), "path": str(f.path)} for f in plan.files],
            "metadata": plan.metadata, "notes": plan.notes}
