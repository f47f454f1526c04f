"""Deposit a bundle on Zenodo: plan first (no network), then run.

:func:`plan_deposit` reads the bundle's metadata, checks Zenodo's limits and builds
the metadata to send — the caller shows it and asks before anything leaves the
machine. :func:`run_deposit` creates (or resumes) the draft, streams the bundle and
its ``.sha256`` sidecar into the bucket, checks Zenodo's md5 of each, sets the
metadata and, if asked, publishes. The draft id is saved as soon as it exists, keyed
by the bundle's sha256, so running the same command after any failure resumes that
draft instead of creating a second one.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import BundleError, UsageError
from ..fsutil import utc_now_iso
from ..progress import CancelToken, Progress, Reporter, reporter, token as cancel_token
from .client import NEW_VERSION_HINT, ZenodoClient
from .errors import DepositLimitError, NotFoundError, PublishedRecordError
from .metadata import build_metadata, merge_for_new_version
from .refs import SANDBOX, SITE_OF_PREFIX, ZENODO, parse_ref
from .state import DepositState, key_for
from .token import Secret

# Zenodo's published per-record limits (https://help.zenodo.org, "File size limits").
MAX_RECORD_BYTES = 50 * 10**9
MAX_FILES = 100
_SHA256_LINE = re.compile(r"^([0-9a-fA-F]{64})\s")


@dataclass
class PlannedFile:
    name: str
    path: Path
    size: int


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


def _bundle_study(bundle: Path) -> tuple[dict, object]:
    from ..bundle.reader import read_info  # the reader is only needed when planning
    info = read_info(bundle)
    meta = info.metadata or {}
    version = meta.get("format_version") or getattr(info, "format_version", None)
    return dict(meta.get("study") or {}), version


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
                 new_version_of: str | None = None, study: dict | None = None) -> DepositPlan:
    """Everything :func:`run_deposit` will do, computed without touching the network."""
    bundle = Path(bundle)
    if not bundle.is_file():
        raise UsageError(f"{bundle} does not exist or is not a file.")
    sidecar = bundle.with_name(bundle.name + ".sha256")
    sha256 = read_sidecar(sidecar)
    files = [PlannedFile(bundle.name, bundle, bundle.stat().st_size),
             PlannedFile(sidecar.name, sidecar, sidecar.stat().st_size)]
    check_limits(files)
    format_version = None
    if study is None:
        study, format_version = _bundle_study(bundle)
    metadata = build_metadata(study, format_version=format_version)
    base_url = base_url.rstrip("/")
    notes = []
    if new_version_of:
        ref = parse_ref(new_version_of, base_url)
        implied = _implied_site(new_version_of)
        if implied and base_url in (ZENODO, SANDBOX) and implied != base_url:
            raise UsageError(f"{new_version_of} is a record on {implied}, but this deposit "
                             f"goes to {base_url}.",
                             "Use --sandbox for sandbox DOIs (10.5072/…), or leave it out.")
        notes.append(f"A new version of record {ref.record_id}: its files are replaced by "
                     "this bundle; its other metadata is kept unless the bundle changes it.")
    elif study.get("doi"):
        notes.append(f"This study already has the DOI {study['doi']}. This deposit makes a "
                     f"separate record; to add a version to it instead, use "
                     f"--new-version-of {study['doi']}.")
    notes.append("It will be published (a DOI is minted; files can never change afterwards)."
                 if publish else "It stays a draft: review it on Zenodo, then publish "
                                 "(or run again with --publish).")
    return DepositPlan(bundle, sidecar, sha256, files, metadata, base_url, publish,
                       new_version_of, notes)


def _implied_site(ref: str) -> str | None:
    m = re.search(r"(10\.\d{4,9})/zenodo\.\d+", ref)
    return SITE_OF_PREFIX.get(m.group(1)) if m else None


def run_deposit(plan: DepositPlan, token: Secret | None = None, *, report: Reporter | None = None,
                cancel: CancelToken | None = None, client: ZenodoClient | None = None,
                state: DepositState | None = None) -> DepositResult:
    report, cancel = reporter(report), cancel_token(cancel)
    client = client or ZenodoClient(plan.base_url, token)
    client.report = report
    state = state or DepositState()
    key = key_for(plan.base_url, plan.sha256)
    entry = state.get(key)
    dep, resumed = None, False

    if entry:
        try:
            dep = client.get_deposition(entry["deposition_id"], cancel=cancel)
            resumed = True
        except NotFoundError:  # the draft was deleted on Zenodo: start over
            state.remove(key)
            entry = None
    if dep is not None and dep.get("submitted"):
        return _already_published(plan, dep, entry, state, key)

    if dep is None:
        cancel.check()
        if plan.new_version_of:
            report(Progress("deposit", message=f"Creating a new version of {plan.new_version_of}"))
            dep = _new_version_draft(client, plan, cancel)
        else:
            report(Progress("deposit", message="Creating the deposition"))
            dep = client.create_deposition(cancel=cancel)
        entry = {"deposition_id": dep["id"], "bundle": str(plan.bundle.resolve()),
                 "created": utc_now_iso(), "new_version_of": plan.new_version_of,
                 "md5": {}, "published": False}
        state.put(key, entry)
    else:
        report(Progress("deposit", message=f"Resuming draft {dep['id']}"))

    dep_id = dep["id"]
    known_md5: dict = dict(entry.get("md5") or {})
    present = {f["filename"]: f for f in dep.get("files") or []}
    wanted = {f.name for f in plan.files}
    # Anything not exactly ours goes: files of the previous version, or a damaged upload.
    for name, f in present.items():
        if name not in wanted or known_md5.get(name) != f.get("checksum"):
            cancel.check()
            client.delete_deposition_file(dep_id, f["id"], cancel=cancel)
    uploaded, skipped = [], []
    bucket = dep["links"]["bucket"]
    for planned in plan.files:
        f = present.get(planned.name)
        if f is not None and known_md5.get(planned.name) == f.get("checksum"):
            skipped.append(planned.name)
            continue
        transfer = client.upload(bucket, planned.name, planned.path, report=report,
                                 cancel=cancel)
        if planned.path == plan.bundle and transfer.sha256 != plan.sha256:
            # The draft is keyed by a checksum the bundle does not have: remove it, so
            # that a corrected bundle does not leave an orphan draft behind.
            client.delete_deposition(dep_id, cancel=cancel)
            state.remove(key)
            raise BundleError(f"{plan.bundle.name} does not match its .sha256 sidecar: it is "
                              "damaged or was changed after it was made. Its draft on Zenodo "
                              "was removed.", "Run `studypack verify` on it.")
        known_md5[planned.name] = transfer.md5
        state.update(key, md5=known_md5)
        uploaded.append(planned.name)

    cancel.check()
    report(Progress("deposit", message="Setting the metadata"))
    metadata = plan.metadata
    if plan.new_version_of or entry.get("new_version_of"):  # also when resumed without it
        metadata = merge_for_new_version(dep.get("metadata") or {}, metadata)
    dep = client.update_metadata(dep_id, metadata, cancel=cancel)

    if plan.publish:
        cancel.check()
        report(Progress("deposit", message="Publishing"))
        dep = client.action(dep_id, "publish", cancel=cancel)
        state.update(key, published=True, doi=dep.get("doi"))
    result = _result(dep, resumed)
    result.uploaded, result.skipped = uploaded, skipped
    return result


def _new_version_draft(client: ZenodoClient, plan: DepositPlan, cancel) -> dict:
    ref = parse_ref(plan.new_version_of, plan.base_url)
    record = client.get_record(ref.record_id, cancel=cancel)   # a concept id gives the latest
    latest = str((record.get("links") or {}).get("latest") or "")
    latest_id = int(latest.rstrip("/").rsplit("/", 1)[-1]) if latest.rstrip("/").rsplit(
        "/", 1)[-1].isdigit() else int(record["id"])
    original = client.action(latest_id, "newversion", cancel=cancel)
    draft_url = (original.get("links") or {}).get("latest_draft")
    if not draft_url:
        raise PublishedRecordError(f"Zenodo did not open a new version of {latest_id}.")
    return client.get_deposition_url(draft_url, cancel=cancel)


def _already_published(plan: DepositPlan, dep: dict, entry: dict, state, key) -> DepositResult:
    """The saved draft was published (by us or in the web interface) meanwhile."""
    ours = (entry or {}).get("md5", {}).get(plan.bundle.name)
    files = {f["filename"]: f.get("checksum") for f in dep.get("files") or []}
    if ours and files.get(plan.bundle.name) == ours:
        state.update(key, published=True, doi=dep.get("doi"))
        return _result(dep, resumed=True)
    raise PublishedRecordError(
        f"The draft {dep['id']} kept for this bundle was published without it "
        f"(DOI {dep.get('doi')}).", NEW_VERSION_HINT.replace("DOI", str(dep.get("doi"))))


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
