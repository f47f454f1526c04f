"""studypack export --rpz BUNDLE: the bundle as a ReproZip pack, for reprounzip users."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ._console import err_console, out_console, progress_bar


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="write a bundle as a ReproZip pack (.rpz)",
        description="Write the traced files, runs and trace of a bundle as a ReproZip pack "
                    "that reprounzip opens (info, showfiles, directory setup/run, …).")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--rpz", action="store_true", required=True,
                   help="write a ReproZip pack (the only export format)")
    p.add_argument("-o", "--output", metavar="OUT.rpz",
                   help="where to write it (default: BUNDLE's name with .rpz)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..rpz import export_rpz

    bundle = Path(args.bundle)
    if not bundle.is_file():
        raise UsageError(f"{bundle} does not exist.")
    out = Path(args.output) if args.output else Path.cwd() / (bundle.stem + ".rpz")
    with progress_bar(quiet=args.quiet) as (report, cancel):
        result = export_rpz(bundle, out, overwrite=args.force, report=report, cancel=cancel)
    for note in result.notes:
        err_console.print(f"  · {note}", markup=False)
    out_console.print(f"Wrote {result.path} ({result.files} files and folders); open it with "
                      f"`reprounzip info {result.path.name}`")
    return 0
