"""studypack create: trace the study's run and write one checksummed bundle."""

from __future__ import annotations

import json
from pathlib import Path

from rich.markup import escape

from ..create import CreateOptions, create_bundle
from ..fsutil import human_size
from ..safetext import printable
from ._console import err_console, out_console, progress_bar


def register(sub) -> None:
    p = sub.add_parser(
        "create", help="trace the study's run and write a .studypack bundle",
        description="Run the study's command(s) under a ReproZip trace, record the run "
                    "(command, exit code, duration, output, host, git state), capture the "
                    "software environment, and write one zstd-compressed, checksummed "
                    ".studypack bundle plus its .sha256 file. Environment variables that look "
                    "like secrets are dropped and listed.")
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
    p.add_argument("--level", type=int, default=3, metavar="N",
                   help="zstd level, 1 (fast) to 19 (small); default 3")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    options = CreateOptions(
        allow_failure=args.allow_failure, trace=not args.no_trace,
        build_image=False if args.no_image else None, save_image=args.save_image,
        base_image=args.base_image, level=args.level, overwrite=args.force)
    with progress_bar(quiet=args.quiet or args.json) as (report, cancel):
        result = create_bundle(args.spec, args.output, options, report, cancel)
    if args.json:
        out_console.print_json(json.dumps({
            "bundle": str(result.path), "sha256": result.sha256, "size": result.size,
            "files": result.files, "payload_bytes": result.payload_bytes,
            "secrets_dropped": result.secrets_dropped, "warnings": result.warnings,
            "messages": result.messages, "environment": result.environment}))
        return 0
    for line in result.messages:
        err_console.print(f"  · {line}", markup=False)
    for line in result.warnings:
        err_console.print(f"  [yellow]warning:[/] {escape(printable(line))}")
    out_console.print(f"Wrote {result.path} ({human_size(result.size)}, {result.files} files, "
                      f"{human_size(result.payload_bytes)} uncompressed)")
    out_console.print(f"sha256 {result.sha256}  (also in {Path(str(result.path) + '.sha256').name})")
    return 0
