"""studypack import STUDY.rpz -o STUDY.studypack: a bundle from a ReproZip pack."""

from __future__ import annotations

import sys
from pathlib import Path

from ..fsutil import human_size
from ._console import err_console, out_console, progress_bar


def register(sub) -> None:
    p = sub.add_parser(
        "import", help="make a bundle from a ReproZip pack (.rpz)",
        description="Make a .studypack bundle from a pack made by `reprozip pack`: its "
                    "runs, trace and files (secrets scrubbed), with the metadata given here "
                    "(asked for at a terminal when not given). "
                    "The bundle then verifies, replays (trace and directory modes) and "
                    "deposits like any other.")
    p.add_argument("rpz", metavar="STUDY.rpz")
    p.add_argument("-o", "--output", metavar="OUT.studypack",
                   help="where to write the bundle (default: ./STUDY.studypack)")
    p.add_argument("--name", default="", help="the study's short name (default: from the file)")
    p.add_argument("--title", default="", help="the study's title")
    p.add_argument("--author", action="append", default=[], metavar="NAME",
                   help="an author (repeat for several)")
    p.add_argument("--description", default="", help="what the study does")
    p.add_argument("--license", default="", help="an SPDX license id, e.g. CC-BY-4.0")
    p.add_argument("--output-path", action="append", dest="outputs", metavar="PATH",
                   help="an output of the run, relative to its working folder (default: the "
                        "files the pack says the run wrote)")
    p.add_argument("--level", type=int, default=3, metavar="N", help="zstd level (default 3)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def _ask_missing(args) -> None:
    """At a terminal, what the flags did not give is asked for (Enter keeps the default)."""
    if not sys.stdin.isatty():
        return
    if not args.title:
        args.title = input(f"Title of the study [{Path(args.rpz).stem}]: ").strip()
    if not args.author:
        names = input("Authors (Family, Given; separated by ';') []: ").strip()
        args.author = [n.strip() for n in names.split(";") if n.strip()]
    if not args.license:
        args.license = input("License (SPDX id, e.g. CC-BY-4.0) []: ").strip()


def run(args) -> int:
    from ..rpz import import_rpz

    _ask_missing(args)
    rpz = Path(args.rpz)
    out = Path(args.output) if args.output else Path.cwd() / (rpz.stem + ".studypack")
    with progress_bar(quiet=args.quiet) as (report, cancel):
        result = import_rpz(rpz, out, name=args.name, title=args.title, authors=args.author,
                            description=args.description, license=args.license,
                            outputs=args.outputs, overwrite=args.force, level=args.level,
                            report=report, cancel=cancel)
    for line in result.messages:
        err_console.print(f"  · {line}", markup=False)
    out_console.print(f"Wrote {result.path} ({human_size(result.size)}, {result.files} files)")
    out_console.print(f"sha256 {result.sha256}")
    return 0
