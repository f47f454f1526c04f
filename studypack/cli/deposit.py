"""``studypack deposit``: archive a bundle on Zenodo (draft, publish, new version)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..deposit.metadata import render
from ..deposit.refs import SANDBOX, ZENODO
from ..deposit.token import find_token
from ..deposit.workflow import (DepositPlan, check_spec_writable, plan_deposit,
                                  run_deposit, write_doi)
from ..errors import Cancelled, StudypackError, UsageError
from ..fsutil import human_size
from ._console import err_console, out_console, progress_bar, shown


def register(sub) -> None:
    parser = sub.add_parser(
        "deposit", help="archive a bundle on Zenodo and get a DOI",
        description="Upload a bundle and its .sha256 file to Zenodo (streamed, checked against "
                    "Zenodo's md5), with metadata taken from the bundle's study description. "
                    "Checks locally what Zenodo would refuse (authors as \"Family, Given\", "
                    "license, relation types, dates, ORCIDs) and shows what will be sent "
                    "first. Leaves a draft unless --publish. The token comes from "
                    "ZENODO_TOKEN (sandbox: ZENODO_SANDBOX_TOKEN only) or the system keyring "
                    "(service studypack-zenodo, user zenodo.org). Running it again — after an "
                    "interruption, or with the bundle made again after a metadata fix — "
                    "reuses the draft of the same study version.")
    parser.add_argument("bundle", type=Path, help="the .studypack file")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--sandbox", action="store_true",
                        help=f"deposit on {SANDBOX} (test DOIs, its own token)")
    target.add_argument("--url", metavar="BASE_URL",
                        help="another Zenodo-compatible server, e.g. a local test server")
    parser.add_argument("--publish", action="store_true",
                        help="publish at once (mints the DOI; files can never change after)")
    parser.add_argument("--new-version-of", metavar="ID_OR_DOI",
                        help="make this bundle a new version of a published record")
    parser.add_argument("--discard-pending", action="store_true",
                        help="with --new-version-of: delete a new version of it already "
                             "pending on Zenodo (its files and edits are lost) and start "
                             "from the published version")
    parser.add_argument("--spec", type=Path, metavar="PATH",
                        help="studypack.toml to record the DOI in ([study] doi) once published")
    parser.add_argument("--json", action="store_true",
                        help='print {"deposition_id", "doi", "record_url", "state"} as JSON')
    parser.add_argument("-y", "--yes", action="store_true",
                        help="do not ask for confirmation")
    parser.set_defaults(func=run)


def _show_plan(plan: DepositPlan) -> None:
    err_console.print(f"[bold]Deposit to {plan.base_url}[/bold]", soft_wrap=True)
    for f in plan.files:
        err_console.print(f"  file  {shown(f.name)}  ({human_size(f.size)})", soft_wrap=True)
    err_console.print("  metadata:", soft_wrap=True)
    err_console.print("    " + shown(render(plan.metadata), lines=True).replace("\n", "\n    "),
                      soft_wrap=True)   # the metadata comes from the bundle
    for note in plan.notes:
        err_console.print(f"  note  {shown(note)}", soft_wrap=True)


def _confirm(plan: DepositPlan) -> bool:
    verb = "Publish" if plan.publish else "Upload a draft"
    err_console.print(f"{verb} on {plan.base_url}? [y/N] ", end="")
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def run(args) -> int:
    base_url = SANDBOX if args.sandbox else (args.url or ZENODO)
    if args.discard_pending and not args.new_version_of:
        raise UsageError("--discard-pending only applies with --new-version-of.")
    plan = plan_deposit(args.bundle, base_url=base_url, publish=args.publish,
                        new_version_of=args.new_version_of,
                        discard_pending=args.discard_pending)
    if args.spec is not None:
        check_spec_writable(args.spec)
    token = find_token(base_url, sandbox=args.sandbox)
    _show_plan(plan)
    if not args.yes and sys.stdin.isatty():
        if not _confirm(plan):
            raise Cancelled("Nothing was sent.")
    with progress_bar(quiet=args.json) as (report, cancel):
        result = run_deposit(plan, token, report=report, cancel=cancel)
    if args.json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
        sys.stdout.flush()
    else:
        _print_result(result, args.spec)
    if result.doi and args.spec is not None:  # after the DOI is on screen, whatever happens
        try:
            write_doi(args.spec, result.doi)
        except StudypackError as err:
            raise type(err)(f"{err.message} The DOI {result.doi} was not recorded in it.",
                            err.hint) from None
        if not args.json:
            out_console.print(f"Wrote doi = \"{result.doi}\" to [study] in {args.spec}.",
                              soft_wrap=True, markup=False)
    return 0


def _print_result(result, spec) -> None:
    for note in result.notes:
        out_console.print(note, soft_wrap=True, markup=False)
    if result.resumed:
        out_console.print(f"Resumed the draft {result.deposition_id} kept from an earlier "
                          "attempt (no duplicate was made).", soft_wrap=True)
    if result.state == "published":
        out_console.print(f"Published. DOI: {result.doi}", soft_wrap=True)
        out_console.print(f"Record: {result.record_url}", soft_wrap=True)
        if spec is None:
            out_console.print("Pass --spec studypack.toml next time to record the DOI in the "
                              "study.", soft_wrap=True)
        out_console.print(f"Anyone can now replay it: studypack replay {result.doi}",
                          soft_wrap=True)
    else:
        out_console.print(f"Draft {result.deposition_id} is ready (not yet public, no DOI "
                          "registered).", soft_wrap=True)
        out_console.print(f"Review it: {result.record_url}", soft_wrap=True)
        out_console.print("Publish it there, or run the same command with --publish.",
                          soft_wrap=True)
