"""Opening the draft of a new version, when Zenodo may already hold one.

Zenodo keeps at most one unpublished new version per record. Its legacy ``newversion``
action hands that pending draft back and copies the published files into it — and
refuses with ``files.enabled: "Please remove all files first."`` when the draft already
holds files (invenio-drafts-resources ``service.new_version`` + ``import_files``, see
docs/zenodo.md). So the pending draft is looked for first, among one's own
depositions, and then:

- it is studypack's own draft (kept in the local state): reused;
- ``--discard-pending``: deleted, and a fresh version opened;
- it holds only copies of the published files: reused (they are replaced);
- it holds other files: refused, naming them, since reusing would delete them.
"""

from __future__ import annotations

from ..progress import Progress
from .client import ZenodoClient
from .errors import PendingVersionError, PublishedRecordError, ValidationError
from .refs import parse_ref

PENDING_FILES_MESSAGE = "Please remove all files first"


def latest_version(client: ZenodoClient, ref_text: str, base_url: str, cancel) -> dict:
    """The published record that a new version follows: the latest of its concept."""
    ref = parse_ref(ref_text, base_url)
    record = client.get_record(ref.record_id, cancel=cancel)  # a concept id gives the latest
    latest = str((record.get("links") or {}).get("latest") or "").rstrip("/").rsplit("/", 1)[-1]
    if latest.isdigit() and int(latest) != int(record["id"]):
        record = client.get_record(int(latest), cancel=cancel)
    return record


def find_pending(client: ZenodoClient, record: dict, cancel) -> dict | None:
    """The unpublished new version of ``record``'s concept among one's depositions."""
    concept = str(record.get("conceptrecid") or "")
    for dep in client.list_depositions(cancel=cancel):
        if (str(dep.get("conceptrecid") or "") == concept and concept
                and not dep.get("submitted") and int(dep.get("id", 0)) != int(record["id"])):
            return dep
    return None


def foreign_files(draft: dict, record: dict) -> list[str]:
    """The draft's files that are neither copies of the record's files nor ``ours``."""
    published = {str(f.get("checksum", "")).removeprefix("md5:") for f in
                 record.get("files") or []}
    return sorted(str(f.get("filename")) for f in draft.get("files") or []
                  if str(f.get("checksum", "")).removeprefix("md5:") not in published)


def open_version_draft(client: ZenodoClient, new_version_of: str, base_url: str, *,
                       ours: set[int], discard_pending: bool, report, cancel
                       ) -> tuple[dict, list[str]]:
    """(the draft of the new version, notes for the user)."""
    record = latest_version(client, new_version_of, base_url, cancel)
    latest_id, notes = int(record["id"]), []
    pending = find_pending(client, record, cancel)
    if pending is not None:
        pid, opened = int(pending["id"]), str(pending.get("created", ""))[:10] or "earlier"
        if pid in ours and not discard_pending:
            notes.append(f"Reused draft {pid}, the new version studypack opened {opened}.")
            return client.get_deposition(pid, cancel=cancel), notes
        if discard_pending:
            report(Progress("deposit", message=f"Discarding the pending new version {pid}"))
            client.delete_deposition(pid, cancel=cancel)
            notes.append(f"Discarded the pending new version {pid} (opened {opened}), as "
                         "asked with --discard-pending.")
        else:
            draft = client.get_deposition(pid, cancel=cancel)
            extra = foreign_files(draft, record)
            if extra:
                raise PendingVersionError(
                    f"Record {latest_id} already has a new version being edited (draft "
                    f"{pid}, opened {opened}) that holds files not in the published "
                    f"version: {', '.join(extra)}. Reusing it would delete them, so "
                    "nothing was changed.",
                    f"Finish or discard that draft at {draft.get('links', {}).get('html') or base_url}, "
                    "or run the same command with --discard-pending to delete it (its files "
                    "and edits are lost) and start again from the published version.")
            notes.append(f"Reused the pending new version {pid} (opened {opened}): it only "
                         "held copies of the published files, which this bundle replaces.")
            return draft, notes
    report(Progress("deposit", message=f"Opening a new version of record {latest_id}"))
    try:
        answer = client.action(latest_id, "newversion", cancel=cancel)
    except ValidationError as exc:
        if PENDING_FILES_MESSAGE.lower() not in exc.message.lower():
            raise
        raise PendingVersionError(
            f"Zenodo refused to open a new version of record {latest_id}: one is already "
            "pending and holds files, and it is not among the depositions studypack can "
            f"list (Zenodo says: \"{PENDING_FILES_MESSAGE}.\").",
            f"Open {base_url}/me/uploads, finish or discard the draft of the new version of "
            "this record, then run the same command again.") from None
    # Today the answer is the new draft itself; the older API answered with the record
    # and pointed at the draft with links.latest_draft.
    url = (answer.get("links") or {}).get("latest_draft")
    if int(answer.get("id", latest_id)) != latest_id and not answer.get("submitted"):
        return answer, notes
    if not url:
        raise PublishedRecordError(f"Zenodo did not open a new version of {latest_id}.")
    return client.get_deposition_url(url, cancel=cancel), notes
