"""studypack create: plan, trace the study's run, capture its environment, pack a bundle.

A thin caller of :class:`studypack.create.CreateSession`, the session the wizard drives.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.markup import escape

from ..create import STEPS, CreateOptions, CreateSession
from ..fsutil import human_size
from ..safetext import printable
from ..spec import load_spec
from ._console import err_console, out_console, progress_bar


def register(sub) -> None:
    p = sub.add_parser(
        "create", help="trace the study's run and write a .studypack bundle",
        description="Check the study and plan its environment, run its command(s) under a "
                    "ReproZip trace, record the run (command, exit code, duration, output, "
                    "host, git state), lock and vendor the software the run used, and write "
                    "one zstd-compressed, checksummed .studypack bundle plus its .sha256 "
                    "file. Environment variables that look like secrets are dropped and "
                    "listed; every file left out of the bundle is listed with its reason.")
    p.add_argument("spec", nargs="?", default=".", metavar="SPEC_OR_DIR",
                   help="studypack.toml, or the folder holding it (default: here)")
    p.add_argument("-o", "--output", metavar="OUT.studypack",
                   help="where to write the bundle (default: ./NAME.studypack)")
    p.add_argument("--allow-failure", action="store_true",
                   help="pack the run even when the command exits non-zero")
    p.add_argument("--no-trace", action="store_true",
                   help="do not run the study: pack code, data and existing outputs only")
    p.add_argument("--no-image", action="store_true",
                   help="do not build a container image (no Docker daemon needed)")
    p.add_argument("--save-image", action="store_true",
                   help="store the built image in the bundle, so replay needs no build")
    p.add_argument("--base-image", metavar="REF",
                   help="base image for the Dockerfile (default: python:X.Y-slim)")
    p.add_argument("--tag", metavar="NAME[:TAG]",
                   help="name of the built image (default: studypack/NAME:VERSION)")
    p.add_argument("--find-links", action="append", default=[], metavar="DIR",
                   help="a folder of wheels to vendor from first (repeatable; also "
                        "[environment] find_links)")
    p.add_argument("--lock", choices=("used", "all"),
                   help="lock the distributions the run used (default) or the whole "
                        "environment")
    p.add_argument("--show-dockerfile", action="store_true",
                   help="print the rendered Dockerfile")
    p.add_argument("--level", type=int, default=3, metavar="N",
                   help="zstd level, 1 (fast) to 19 (small); default 3")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also list the environment item by item (each Debian package "
                        "and what became of it)")
    p.set_defaults(func=run)


def run(args) -> int:
    options = CreateOptions(
        allow_failure=args.allow_failure, trace=not args.no_trace,
        build_image=False if args.no_image else None, save_image=args.save_image,
        base_image=args.base_image, level=args.level, overwrite=args.force, tag=args.tag,
        find_links=[str(Path(d).resolve()) for d in args.find_links], lock=args.lock)
    quiet = args.quiet or args.json
    with CreateSession(load_spec(args.spec), options, args.output) as session, \
            progress_bar(quiet=quiet) as (report, cancel):
        def step(number: int) -> None:
            if not quiet:
                err_console.print(f"step {number}/{len(STEPS)}: {STEPS[number - 1]}",
                                  markup=False, style="bold")

        step(1)
        planned = session.plan(report, cancel)
        if not quiet:
            for line in planned.messages:
                err_console.print(f"  · {printable(line)}", markup=False)
        step(2)
        session.trace(report, cancel)
        cancel.check()
        step(3)
        session.capture_environment(report=report, cancel=cancel)
        cancel.check()
        step(4)
        result = session.pack(report=report, cancel=cancel)
    if args.json:
        out_console.print_json(json.dumps({
            "bundle": str(result.path), "sha256": result.sha256, "size": result.size,
            "files": result.files, "payload_bytes": result.payload_bytes,
            "secrets_dropped": result.secrets_dropped, "warnings": result.warnings,
            "messages": result.messages, "environment": result.environment,
            "left_out": [{"path": i.path, "reason": i.reason} for i in result.left_out]}))
        return 0
    if args.show_dockerfile:
        out_console.print(result.dockerfile or "(no Dockerfile: see the notes above)",
                          markup=False)
    for line in result.messages:
        err_console.print(f"  · {printable(line)}", markup=False)
    for line in result.details if args.verbose else []:
        err_console.print(f"    {printable(line)}", markup=False)
    for line in result.warnings:
        err_console.print(f"  [yellow]warning:[/] {escape(printable(line))}")
    out_console.print(f"Wrote {result.path} ({human_size(result.size)}, {result.files} files, "
                      f"{human_size(result.payload_bytes)} uncompressed)", markup=False)
    out_console.print(f"sha256 {result.sha256}  (also in {Path(str(result.path) + '.sha256').name})",
                      markup=False)
    return 0
